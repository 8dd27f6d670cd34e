"""The Bayes-optimal targeting policy: maximise expected launch value under guardrail constraints.

Expected launch value is linear in the posterior mean cell values ``m[c]``::

    E[V(treat)] = N * sum_c mix[c] * treat[c] * m[c] - fixed_cost(treat)

Search (documented, deterministic):

1. **No constraints, constant fixed cost**: closed form. Treat exactly the cells with ``m[c] > 0``;
   if that set's expected value is not positive, treat nobody.
2. **Otherwise** (share-scaled fixed cost and/or guardrail chance constraints):

   * with at most ``exact_max_cells`` cells, every subset of cells is a candidate (exact);
   * else the candidates are the prefixes of the cells sorted by ``m[c]`` (best first), prefixes of
     the cells sorted by value per unit of each upper-bounded guardrail outcome's mean effect, the
     named policies passed as ``candidates``, treat-all; then single-cell flips from the best
     feasible candidate are tried (hill climbing, at most ``max_rounds`` rounds).

   Candidates are checked in order of expected value, in chunks, and the first that passes every
   guardrail wins. With the share-scaled cost ``fixed_cost * max(share, floor)`` each cell's
   marginal cost is ``fixed_cost * mix[c]`` above the floor, so the value ordering is exact except
   near the floor, where the flips repair it.

Treating nobody is always admissible (status quo; value exactly 0), so the optimum is never worse in
expectation than treat-none, and it is treat-none when no candidate passes the guardrails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bayesdecide.decide.evaluate import LaunchDraws
from bayesdecide.decide.guardrails import EffectBound, Guardrail, guardrail_probabilities


@dataclass(frozen=True)
class OptimalResult:
    """The optimal mask over cells, its expected value and how it was found."""

    mask: np.ndarray
    expected_value: float
    method: str
    n_candidates: int


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


def _prefixes(order: np.ndarray, n_cells: int) -> np.ndarray:
    tri = np.tril(np.ones((len(order), len(order))))
    masks = np.zeros((len(order), n_cells))
    masks[:, order] = tri
    return masks


def optimal_policy(
    launch: LaunchDraws,
    guardrails: Sequence[Guardrail] = (),
    candidates: np.ndarray | None = None,
    exact_max_cells: int = 12,
    max_rounds: int = 25,
    chunk: int = 64,
) -> OptimalResult:
    """Bayes-optimal targeting over cells (see the module docstring for the search).

    Parameters
    ----------
    launch:
        Prepared draws (:class:`LaunchDraws`).
    guardrails:
        Chance constraints every treated policy must pass (treat-none is always admissible).
    candidates:
        Extra 0/1 masks ``(Q, C)`` to consider (e.g. the named policies), so the optimum is never
        worse than a named policy that passes the guardrails.
    exact_max_cells:
        Enumerate all ``2**C`` subsets up to this many cells.
    max_rounds:
        Single-flip improvement rounds in the heuristic search.
    chunk:
        Candidates checked against the guardrails per batch.
    """
    n_cells = len(launch.cells)
    m = launch.mean_value
    pop = launch.population
    none = np.zeros(n_cells)
    if not guardrails and pop.fixed_cost_scaling == "constant":
        mask = (m > 0).astype(float)
        ev = float(launch.expected_values(mask[None])[0])
        if ev <= 0:
            return OptimalResult(none, 0.0, "closed_form", 1)
        return OptimalResult(mask, ev, "closed_form", 1)

    extra = np.zeros((0, n_cells)) if candidates is None else np.atleast_2d(candidates)
    if n_cells <= exact_max_cells:
        codes = np.arange(2**n_cells)[:, None]
        masks = ((codes >> np.arange(n_cells)[None]) & 1).astype(float)
        best, ev = _best_feasible(launch, guardrails, masks, 0.0, chunk)
        if best is None:
            return OptimalResult(none, 0.0, "exact", len(masks))
        return OptimalResult(best, ev, "exact", len(masks))

    pools = [_prefixes(np.argsort(-m, kind="stable"), n_cells)]
    for g in guardrails:
        if isinstance(g, EffectBound) and g.upper is not None:
            k = launch.outcome_index(g.outcome)
            use = np.maximum(launch.x[:, :, k].mean(axis=0), 1e-12)
            pools.append(_prefixes(np.argsort(-(m / use), kind="stable"), n_cells))
    pools.extend([extra, np.ones((1, n_cells))])
    masks = np.unique(np.concatenate(pools), axis=0)
    n_tried = len(masks)
    best, ev = _best_feasible(launch, guardrails, masks, 0.0, chunk)
    if best is None:
        best, ev = none, 0.0
    for _ in range(max_rounds):
        flips = np.abs(best[None] - np.eye(n_cells))
        n_tried += len(flips)
        cand, cand_ev = _best_feasible(launch, guardrails, flips, ev + 1e-9, chunk)
        if cand is None:
            break
        best, ev = cand, cand_ev
    return OptimalResult(best, ev, "heuristic", n_tried)
