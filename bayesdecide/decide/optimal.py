"""The Bayes-optimal targeting policy: maximise expected launch value under guardrail constraints.

Expected launch value is linear in the posterior mean cell values ``m[c]``::

    E[V(treat)] = N * sum_c mix[c] * treat[c] * m[c] - fixed_cost(treat)

Several treatment arms
----------------------
With k treatment arms a policy gives each cell one arm or none: the decision per cell has k + 1
choices, and ``treat`` becomes a 0/1 mask over the (cell, arm) *options* with at most one option
per cell (:mod:`.evaluate`); ``m[c, a]`` is the posterior mean net value of giving arm ``a`` in
cell ``c``. The search below runs on those masks with every step read per cell:

* closed form: each cell gets its arm with the highest ``m[c, a]`` when that is positive, else
  none (exact: without rules the expected value is a sum over cells of the chosen option's value);
* exact: every one of the ``(k + 1)^C`` assignments while that is at most ``2^exact_max_cells``;
* prefixes: the options sorted best first, each cell taking its first (best) option only, so a
  prefix is a set of cells each with its best arm (and the same per upper-bounded outcome);
  treat-all becomes each arm to everyone; the Lagrangian sweep gives each cell its arm with the
  best priced score when that is positive;
* flips become single-cell moves: a cell switched to any of its other k choices (none or another
  arm); level blocks enumerate the ``(k + 1)^|B|`` assignments of a level's cells while that is at
  most ``2^level_max_cells``.

With one treatment arm every step is exactly the binary search described next. Quality with two
arms: on 40 random 9-cell problems (3^9 = 19,683 assignments; a group rule, a rule on totals, a
value rule and the share-scaled cost; tests/decide/test_arms.py's generator, seeds 1000-1039) it
found the exact optimum in 33, 99.3% of its expected value on average and 88% at worst, in about
0.06 s each.

Search (documented, deterministic). Every policy returned passes every rule, checked on the draws;
treating nobody is always admissible (status quo; value exactly 0), so the optimum is never worse in
expectation than treat-none, and it is treat-none when no candidate passes the rules.

1. **No rules, constant fixed cost**: closed form. Treat exactly the cells with ``m[c] > 0``; if
   that set's expected value is not positive, treat nobody.
2. **At most** ``exact_max_cells`` **cells**: every subset of cells is a candidate (exact).
3. **Otherwise** the candidates are the prefixes of the cells sorted by ``m[c]`` (best first),
   prefixes of the cells sorted by value per unit of each upper-bounded outcome's mean effect, the
   named policies passed as ``candidates``, treat-all, a Lagrangian sweep (each effect bound's
   outcome priced into the cell values at a grid of prices: the cells with a positive priced
   value, so a lower bound pulls in cells that raise the outcome and an upper bound pushes out
   cells that raise it) and (with group rules) the level-block candidates below; then improvement
   rounds try single-cell flips and block moves from the best feasible candidate (at most
   ``max_rounds`` rounds).

Candidates are checked in order of expected value, in chunks, and the first that passes every rule
wins. With the share-scaled cost ``fixed_cost * max(share, floor)`` each cell's marginal cost is
``fixed_cost * mix[c]`` above the floor, so the value ordering is exact except near the floor,
where the flips repair it.

Group rules: level blocks
-------------------------
A group rule (``for_each``; :mod:`.guardrails`) couples the cells of a level: a level's effect
is an average over its cells, so a harmful cell may be treatable only together with others of
its level, and single-cell flips cannot find such moves. For every factor ``f`` of a *levelwise*
rule (:attr:`~bayesdecide.decide.guardrails.Guardrail.levelwise`: a group ``effect_bound``
without ``relative_to``, or a ``fairness_floor``) and every level ``l`` with cells ``B``:

a. **Options**: all ``2^|B|`` subsets of ``B`` when ``|B| <= level_max_cells``, else the prefixes
   of ``B`` by ``m[c]`` and by value per unit of each upper-bounded outcome, the named policies
   restricted to ``B``, none and all.
b. **Level screen**: each option is evaluated on the level's cells alone
   (:meth:`~bayesdecide.decide.evaluate.LaunchDraws.restrict`) against ``f``'s levelwise rules:
   one ``(S, |B|) x (|B|, Q)`` product per rule; options that fail are dropped. A level's
   probability depends on its own cells only, so this is exact for group effect bounds and a
   necessary condition for fairness floors (joint over levels).
c. **Separable value** of an option: ``ev_l(q) = N * sum_{c in B} mix[c] q[c] m[c]``, minus
   ``fixed_cost * sum mix[c] q[c]`` under the share-scaled cost.
d. **Relaxed optimum**: the best screened option of every level, combined. The rules it ignores
   (totals, ``relative_to`` rules, other factors, the joint part of a floor) only remove
   policies, so when every level's options were enumerated in full its separable value (minus
   the fixed cost once under the constant cost) bounds the optimum's expected value from above
   (:attr:`OptimalResult.upper_bound`; under the share-scaled cost the bound is attained when the
   treated share is at least the floor). If that bound is not positive, treating nobody is
   optimal; if the relaxed optimum attains it and passes every rule, it is the optimum
   (``method="level_exact"``; it costs ``sum_l 2^|B_l|`` option checks instead of ``2^C``).
e. Otherwise the relaxed optimum joins the candidates, with every other candidate **projected**
   on the screened options: in each level, the best screened option inside the candidate's
   cells (dropping cells, never adding; the best option when none fits inside).
f. The improvement rounds add **block moves**: the incumbent with one level's cells replaced by
   one of that level's ``top_k`` best screened options, or one of the ``top_k`` screened options
   nearest (Hamming distance) its current cells there.
g. **Repair**: the highest-value candidate (the relaxed optimum, which failed) is also repaired
   by single flips that most reduce the rules' summed probability shortfall (ties: higher
   expected value) until it passes; the rounds then climb from it too, and the better end point
   wins. (Also done without group rules when no candidate passes.)

Cost, for S draws, C cells, G rules and levels of ``B_l`` cells with ``Q_l <= 2^level_max_cells``
options: the screen is ``O(S * sum_l B_l * Q_l)`` per levelwise rule, once; checking a candidate is
``O(S * C * G)``, in chunks of ``chunk`` candidates best expected value first, stopping at the
first chunk with a feasible one; the sweep adds ``25 * (E + 1)`` candidates for E effect bounds; a
round has at most ``C + 2 * top_k * sum_f L_f`` candidates; the repair at most ``C`` steps of ``C``
candidates. Everything is a matrix product over the draws; no loop over draws. On the retention
card (27 cells, 8,000 draws, a region rule) the search takes about a second.

Quality: with group rules alone (levelwise, one factor) the search is exact whenever the relaxed
optimum passes (``level_exact``), which a region-level harm bound usually allows. With rules on
totals and joint floors as well it is a heuristic: on 115 random 12-cell problems with a group
rule, a rule on totals and a joint floor (tests/decide/test_group_rules.py's generator, seeds
0-59, both cost rules, a positive optimum), it found the exact optimum in 107, 99% of its expected
value on average and 66% at worst (the exact search runs up to ``exact_max_cells`` cells).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesdecide.decide.evaluate import LaunchDraws
from bayesdecide.decide.guardrails import EffectBound, Guardrail, guardrail_probabilities


@dataclass(frozen=True)
class OptimalResult:
    """The optimal mask over options (cells; (cell, arm) pairs, cell-major, with several arms),
    its expected value (dollars) and how it was found.

    ``method`` is ``"closed_form"``, ``"exact"``, ``"level_exact"`` or ``"heuristic"``;
    ``n_candidates`` the number of policies evaluated; ``upper_bound`` an upper bound on the
    optimum's expected value from the level relaxation (dollars; ``None`` when not available).
    """

    mask: np.ndarray
    expected_value: float
    method: str
    n_candidates: int
    upper_bound: float | None = None


@dataclass(frozen=True)
class LevelBlock:
    """One level of a group rule's factor: its cells and their screened options.

    ``cells`` are the level's option positions (its cells; its (cell, arm) pairs with several
    arms); ``options`` (Q, B) 0/1 over them, the assignments that pass the factor's levelwise
    rules on the level's own cells, best separable expected value first (``ev``, dollars);
    ``complete`` whether every assignment was enumerated.
    """

    factor: str
    level: Any
    cells: np.ndarray
    options: np.ndarray
    ev: np.ndarray
    complete: bool


def _feasible(
    launch: LaunchDraws, guardrails: Sequence[Guardrail], masks: np.ndarray
) -> np.ndarray:
    if not guardrails or len(masks) == 0:
        return np.ones(len(masks), dtype=bool)
    _, passes = guardrail_probabilities(guardrails, launch.evaluate(masks))
    return passes.all(axis=0)


def _best_feasible(
    launch: LaunchDraws,
    guardrails: Sequence[Guardrail],
    masks: np.ndarray,
    floor: float,
    chunk: int,
) -> tuple[np.ndarray | None, float]:
    """Highest expected value candidate above ``floor`` that passes all guardrails."""
    ev = launch.expected_values(masks)
    order = np.argsort(-ev, kind="stable")
    order = order[ev[order] > floor]
    for start in range(0, len(order), chunk):
        idx = order[start : start + chunk]
        ok = _feasible(launch, guardrails, masks[idx])
        if ok.any():
            i = idx[int(np.argmax(ok))]
            return masks[i], float(ev[i])
    return None, floor


def _shortfall(
    launch: LaunchDraws, guardrails: Sequence[Guardrail], masks: np.ndarray
) -> np.ndarray:
    """(M,) summed probability shortfall of ``masks`` below what each rule needs (0: feasible)."""
    probs, _ = guardrail_probabilities(guardrails, launch.evaluate(masks))
    thr = np.array([g.threshold for g in guardrails])[:, None]
    sign = np.array([1.0 if g.comparison == ">=" else -1.0 for g in guardrails])[:, None]
    return np.maximum(sign * (thr - probs), 0.0).sum(axis=0)


def _moves(best: np.ndarray, n_arms: int) -> np.ndarray:
    """Single-cell moves from mask ``best`` (O,): every cell switched to each of its other choices
    (none or another arm), cells in order; with one arm these are the single-cell flips."""
    if n_arms == 1:
        return np.abs(best[None] - np.eye(len(best)))
    n_cells = len(best) // n_arms
    blocks = best.reshape(n_cells, n_arms)
    current = np.where(blocks.max(axis=1) > 0, blocks.argmax(axis=1) + 1, 0)  # 0: none
    moves = np.repeat(blocks[None], n_cells * (n_arms + 1), axis=0)
    moves = moves.reshape(n_cells, n_arms + 1, n_cells, n_arms)
    cells = np.arange(n_cells)
    moves[cells, :, cells, :] = np.eye(n_arms + 1)[:, 1:]  # choice j: none (0) or arm j - 1
    keep = np.arange(n_arms + 1)[None, :] != current[:, None]  # (C, k + 1)
    return moves[keep].reshape(-1, n_cells * n_arms)


def _repair(
    launch: LaunchDraws, guardrails: Sequence[Guardrail], start: np.ndarray, max_steps: int
) -> np.ndarray | None:
    """Single-cell moves from ``start`` that most reduce the rules' shortfall (ties: higher
    expected value) until every rule passes; ``None`` when stuck."""
    best = start.copy()
    short = float(_shortfall(launch, guardrails, best[None])[0])
    for _ in range(max_steps):
        if short <= 0:
            return best
        flips = _moves(best, launch.n_arms)
        s_ = _shortfall(launch, guardrails, flips)
        i = int(np.lexsort((-launch.expected_values(flips), s_))[0])
        if s_[i] >= short:
            return None
        best, short = flips[i], float(s_[i])
    return best if short <= 0 else None


def _climb(
    launch: LaunchDraws,
    guardrails: Sequence[Guardrail],
    best: np.ndarray,
    ev: float,
    blocks: Sequence[LevelBlock],
    top_k: int,
    max_rounds: int,
    chunk: int,
) -> tuple[np.ndarray, float, int]:
    """Improvement rounds from a feasible ``best``: single-cell moves and block moves."""
    n_tried = 0
    for _ in range(max_rounds):
        flips = _moves(best, launch.n_arms)
        moves = np.unique(np.concatenate([flips, _block_moves(best, blocks, top_k)]), axis=0)
        n_tried += len(moves)
        cand, cand_ev = _best_feasible(launch, guardrails, moves, ev + 1e-9, chunk)
        if cand is None:
            break
        best, ev = cand, cand_ev
    return best, ev, n_tried


def _prefixes(order: np.ndarray, n_options: int, n_arms: int = 1) -> np.ndarray:
    """Masks treating the first 1, 2, ... options of ``order`` (best first), each cell taking
    only its first option in the order (one arm per cell)."""
    if n_arms > 1:
        _, first = np.unique(order // n_arms, return_index=True)
        order = order[np.sort(first)]
    tri = np.tril(np.ones((len(order), len(order))))
    masks = np.zeros((len(order), n_options))
    masks[:, order] = tri
    return masks


def _all_assignments(n_cells: int, n_arms: int = 1) -> np.ndarray:
    """Every assignment of none or one of ``n_arms`` arms to each of ``n_cells`` cells, as masks
    ``((n_arms + 1)^n_cells, n_cells * n_arms)``: digit ``i`` of the code in base ``n_arms + 1``
    is cell ``i``'s choice (0 none, ``j`` arm ``j - 1``); with one arm, every subset of cells."""
    base = n_arms + 1
    codes = np.arange(base**n_cells)[:, None]
    digits = (codes // base ** np.arange(n_cells)[None]) % base  # (Q, C)
    out = np.zeros((len(codes), n_cells, n_arms))
    rows, cells = np.nonzero(digits)
    out[rows, cells, digits[rows, cells] - 1] = 1.0
    return out.reshape(len(codes), n_cells * n_arms)


def _within_budget(n_cells: int, n_arms: int, max_binary_cells: int) -> bool:
    """Whether ``(n_arms + 1)^n_cells <= 2^max_binary_cells`` (an enumeration is affordable)."""
    return n_cells * np.log2(n_arms + 1) <= max_binary_cells + 1e-9


def _best_options(scores: np.ndarray, n_arms: int) -> np.ndarray:
    """Masks (M, O) giving each cell its option with the highest score (M, O) when that score is
    positive, else none."""
    if n_arms == 1:
        return (scores > 0).astype(float)
    s_ = scores.reshape(len(scores), -1, n_arms)
    best = s_.argmax(axis=2)
    out = (np.arange(n_arms)[None, None] == best[..., None]) & (s_.max(axis=2) > 0)[..., None]
    return out.reshape(len(scores), -1).astype(float)


def _use_orders(launch: LaunchDraws, guardrails: Sequence[Guardrail]) -> list[np.ndarray]:
    """(C,) mean effect per cell of each upper-bounded outcome (value per unit orders)."""
    uses = []
    for g in guardrails:
        if isinstance(g, EffectBound) and g.upper is not None and g.outcome is not None:
            k = launch.outcome_index(g.outcome)
            uses.append(np.maximum(launch.x[:, :, k].mean(axis=0), 1e-12))
    return uses


def _lagrangian(
    launch: LaunchDraws, guardrails: Sequence[Guardrail], n_grid: int = 25
) -> np.ndarray:
    """Candidates that price each effect bound's outcome into the cell values (module docstring).

    For an ``effect_bound`` on outcome ``k`` the cell score is ``v[c] + lam * d * x_k[c]`` with
    ``v`` the separable value per customer (dollars), ``x_k`` the posterior mean effect, ``d = +1``
    for a lower bound (more is better) and ``-1`` for an upper bound; a candidate treats the cells
    with a positive score (with several arms: each cell its arm with the best score, when
    positive). ``lam`` runs over a geometric grid spanning the ratio of the typical value to the
    typical effect, for each rule alone and for all of them together.
    """
    pop = launch.population
    v = launch.mean_value.copy()
    if pop.fixed_cost_scaling == "treated_share":
        v = v - pop.fixed_cost / pop.n_eligible
    terms = []
    for g in guardrails:
        if not isinstance(g, EffectBound) or g.outcome is None:
            continue
        x = launch.x[:, :, launch.outcome_index(g.outcome)].mean(axis=0)
        for sign, bound in ((1.0, g.lower), (-1.0, g.upper)):
            if bound is not None:
                terms.append(sign * x / max(float(np.median(np.abs(x))), 1e-12))
    if not terms:
        return np.zeros((0, len(v)))
    scale = max(float(np.median(np.abs(v))), 1e-12)
    lams = scale * np.geomspace(1e-2, 1e2, n_grid)
    out = []
    for t in [*terms, np.sum(terms, axis=0)]:
        out.append(_best_options(v[None] + lams[:, None] * t[None], launch.n_arms))
    return np.concatenate(out)


def separable_values(launch: LaunchDraws, cells: np.ndarray, options: np.ndarray) -> np.ndarray:
    """(Q,) expected value in dollars of 0/1 ``options`` over ``cells``, the fixed cost left out
    under the constant rule and charged at its marginal rate ``fixed_cost * mix[c]`` under the
    share-scaled one (exact above the floor)."""
    pop = launch.population
    mix = launch.mix[cells]
    per_cell = pop.n_eligible * mix * launch.mean_value[cells]
    if pop.fixed_cost_scaling == "treated_share":
        per_cell = per_cell - pop.fixed_cost * mix
    return options @ per_cell


def _screen(
    launch: LaunchDraws,
    cells: np.ndarray,
    options: np.ndarray,
    rules: Sequence[Guardrail],
    chunk: int = 256,
) -> np.ndarray:
    """(Q,) whether each option over the level's ``cells`` passes the levelwise ``rules``."""
    ok = np.ones(len(options), dtype=bool)
    if not rules:
        return ok
    sub = launch.restrict(np.unique(launch.option_cell[cells]))
    for start in range(0, len(options), chunk):
        pd_ = sub.evaluate(options[start : start + chunk])
        for g in rules:
            lp = g.level_probabilities(pd_)
            assert lp is not None  # levelwise rules are group rules
            p = lp.probability[:, 0]  # the sub-launch holds one level of the rule's factor
            held = ~np.isnan(p)
            ok[start : start + chunk] &= ~held | g.passes(np.where(held, p, 1.0))
    return ok


def level_blocks(
    launch: LaunchDraws,
    guardrails: Sequence[Guardrail],
    extra: np.ndarray,
    level_max_cells: int = 10,
) -> dict[str, list[LevelBlock]]:
    """Screened options per level of each factor with levelwise rules (module docstring, a-c)."""
    factors: dict[str, list[Guardrail]] = {}
    for g in guardrails:
        if g.levelwise and g.group_factor is not None:
            factors.setdefault(g.group_factor, []).append(g)
    uses = _use_orders(launch, guardrails)
    out: dict[str, list[LevelBlock]] = {}
    for factor, rules in factors.items():
        levels, codes = launch.level_codes(factor)
        blocks = []
        n_arms = launch.n_arms
        for j, level in enumerate(levels):
            cells = np.flatnonzero(codes == j)  # the level's options
            b = len(cells)
            if _within_budget(b // n_arms, n_arms, level_max_cells):
                options, complete = _all_assignments(b // n_arms, n_arms), True
            else:
                m = launch.mean_value[cells]
                pools = [_prefixes(np.argsort(-m, kind="stable"), b, n_arms), np.zeros((1, b))]
                pools += [
                    _prefixes(np.argsort(-(m / u[cells]), kind="stable"), b, n_arms) for u in uses
                ]
                pools.append(extra[:, cells])
                options, complete = np.unique(np.concatenate(pools), axis=0), False
            options = options[_screen(launch, cells, options, rules)]
            ev = separable_values(launch, cells, options)
            order = np.argsort(-ev, kind="stable")
            blocks.append(LevelBlock(factor, level, cells, options[order], ev[order], complete))
        out[factor] = blocks
    return out


def _relaxed(
    launch: LaunchDraws, blocks: Sequence[LevelBlock]
) -> tuple[np.ndarray | None, float | None]:
    """The relaxed optimum over one factor's blocks and its upper bound (``None`` when the
    options were not all enumerated). Mask ``None``: some level has no screened option, so no
    policy passes the factor's rules."""
    complete = all(b.complete for b in blocks)
    if any(len(b.options) == 0 for b in blocks):
        return None, (0.0 if complete else None)
    mask = np.zeros(len(launch.mix))
    bound = 0.0
    for b in blocks:
        mask[b.cells] = b.options[0]
        bound += float(b.ev[0])
    pop = launch.population
    if pop.fixed_cost_scaling == "constant" and mask.any():
        bound -= pop.fixed_cost
    return mask, (max(bound, 0.0) if complete else None)


def _project(masks: np.ndarray, blocks: Sequence[LevelBlock]) -> np.ndarray:
    """Each mask with every level's cells replaced by the best screened option inside them."""
    out = masks.copy()
    for b in blocks:
        if len(b.options) == 0:
            continue
        sub = out[:, b.cells]
        inside = (b.options[None] <= sub[:, None] + 1e-12).all(axis=2)  # (M, Q)
        pick = np.where(inside.any(axis=1), inside.argmax(axis=1), 0)
        out[:, b.cells] = b.options[pick]
    return out


def _block_moves(best: np.ndarray, blocks: Sequence[LevelBlock], top_k: int) -> np.ndarray:
    """The incumbent with one level's cells replaced by a top or a nearby screened option."""
    moves = [np.zeros((0, len(best)))]
    for b in blocks:
        if len(b.options) == 0:
            continue
        near = np.abs(b.options - best[b.cells][None]).sum(axis=1)
        idx = np.unique(
            np.concatenate([np.arange(min(top_k, len(b.options))), np.argsort(near)[:top_k]])
        )
        mv = np.repeat(best[None], len(idx), axis=0)
        mv[:, b.cells] = b.options[idx]
        moves.append(mv)
    return np.concatenate(moves)


def optimal_policy(
    launch: LaunchDraws,
    guardrails: Sequence[Guardrail] = (),
    candidates: np.ndarray | None = None,
    exact_max_cells: int = 12,
    max_rounds: int = 25,
    chunk: int = 64,
    level_max_cells: int = 10,
    top_k: int = 8,
) -> OptimalResult:
    """Bayes-optimal targeting over cells (see the module docstring for the search).

    Parameters
    ----------
    launch:
        Prepared draws (:class:`LaunchDraws`).
    guardrails:
        Chance constraints every treated policy must pass (treat-none is always admissible),
        group rules included.
    candidates:
        Extra 0/1 masks ``(Q, C)`` to consider (e.g. the named policies), so the optimum is never
        worse than a named policy that passes the guardrails.
    exact_max_cells:
        Enumerate all ``2**C`` subsets up to this many cells.
    max_rounds:
        Improvement rounds (single flips and block moves) in the heuristic search.
    chunk:
        Candidates checked against the guardrails per batch.
    level_max_cells:
        Enumerate all subsets of a group rule's level up to this many cells.
    top_k:
        Screened options per level tried in each block move (best and nearest).
    """
    n_cells = len(launch.cells)
    n_arms = launch.n_arms
    n_options = n_cells * n_arms
    m = launch.mean_value
    pop = launch.population
    none = np.zeros(n_options)
    if not guardrails and pop.fixed_cost_scaling == "constant":
        mask = _best_options(m[None], n_arms)[0]
        ev = float(launch.expected_values(mask[None])[0])
        if ev <= 0:
            return OptimalResult(none, 0.0, "closed_form", 1)
        return OptimalResult(mask, ev, "closed_form", 1)

    extra = np.zeros((0, n_options)) if candidates is None else np.atleast_2d(candidates)
    if _within_budget(n_cells, n_arms, exact_max_cells):
        masks = _all_assignments(n_cells, n_arms)
        best, ev = _best_feasible(launch, guardrails, masks, 0.0, chunk)
        if best is None:
            return OptimalResult(none, 0.0, "exact", len(masks))
        return OptimalResult(best, ev, "exact", len(masks))

    pools = [_prefixes(np.argsort(-m, kind="stable"), n_options, n_arms)]
    pools += [
        _prefixes(np.argsort(-(m / u), kind="stable"), n_options, n_arms)
        for u in _use_orders(launch, guardrails)
    ]
    everyone = launch.masks_from(np.arange(n_arms)[:, None] * np.ones((1, n_cells), dtype=int))
    pools.extend([extra, everyone, _lagrangian(launch, guardrails)])
    blocks = level_blocks(launch, guardrails, extra, level_max_cells)
    all_blocks = [b for bs in blocks.values() for b in bs]
    n_tried = sum(len(b.options) for b in all_blocks)
    bound: float | None = None
    for factor_blocks in blocks.values():
        relaxed, b_f = _relaxed(launch, factor_blocks)
        if b_f is not None:
            bound = b_f if bound is None else min(bound, b_f)
        if bound is not None and bound <= 0:
            return OptimalResult(none, 0.0, "level_exact", n_tried, 0.0)
        if relaxed is None:
            continue
        if b_f is not None and _feasible(launch, guardrails, relaxed[None])[0]:
            ev = float(launch.expected_values(relaxed[None])[0])
            if ev >= b_f - 1e-9 * max(1.0, abs(b_f)):
                return OptimalResult(relaxed, ev, "level_exact", n_tried + 1, b_f)
        pools.append(relaxed[None])
    if blocks:
        base = np.concatenate(pools)
        pools += [_project(base, bs) for bs in blocks.values()]
    masks = np.unique(np.concatenate(pools), axis=0)
    n_tried += len(masks)
    best, ev = _best_feasible(launch, guardrails, masks, 0.0, chunk)
    if best is None:
        best, ev = none, 0.0  # treating nobody is admissible: climb from the status quo
    starts = [(best, ev)]
    ev_all = launch.expected_values(masks)
    if (blocks or not best.any()) and ev_all.max() > ev:
        # repair the highest-value candidate, which fails (the relaxed optimum when there is one)
        fixed = _repair(launch, guardrails, masks[int(np.argmax(ev_all))], n_cells)
        n_tried += n_cells * n_cells * n_arms
        if fixed is not None and fixed.any():
            starts.append((fixed, float(launch.expected_values(fixed[None])[0])))
    result, result_ev = none, 0.0
    for start, start_ev in starts:
        cand, cand_ev, tried = _climb(
            launch, guardrails, start, start_ev, all_blocks, top_k, max_rounds, chunk
        )
        n_tried += tried
        if cand_ev > result_ev:
            result, result_ev = cand, cand_ev
    return OptimalResult(result, result_ev, "heuristic", n_tried, bound)
