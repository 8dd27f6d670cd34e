"""Break-even values of decision assumptions, as posterior draws.

Launch value is linear in each assumption ``theta`` with the others held at their settings, so per
draw ``V(theta) = a + b * theta`` and the break-even value is ``theta* = -a / b``:

``transport_multiplier``
    ``a = N * rest - cost``, ``b = N * benefit`` (benefit outcomes scaled by the multiplier).
``weight:<outcome>`` / ``penalty:<outcome>`` / a named cost assumption
    A value weight (dollars per unit of the outcome's effect); the penalty is the negated weight,
    e.g. ``penalty:annoyance`` (dollars per annoyed customer). A value model's named assumption
    (``annoyance_penalty`` when its ``assumptions`` map that name to ``annoyance``) is the same
    penalty under its own name.
``fixed_cost``
    ``a = N * value``, ``b = -cost scale`` (1, or the treated share with its floor).
``n_eligible``
    ``a = -cost``, ``b = value per eligible customer``.

Draws where ``b == 0`` have no break-even (NaN). :func:`break_even_threshold` gives the value of the
assumption at which P(V > 0) crosses a decision threshold (e.g. 0.5 or 0.8).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.decide._draws import DEFAULT_SAMPLE_DIMS, interval_probs
from bayesdecide.decide.evaluate import LaunchDraws
from bayesdecide.decide.policies import Policy, as_policy
from bayesdecide.decide.population import Population
from bayesdecide.decide.value import ValueModel
from bayesdecide.errors import SpecError

_GLOBAL = ("transport_multiplier", "fixed_cost", "n_eligible")


@dataclass(frozen=True)
class Assumption:
    """A resolved assumption: ``kind`` in transport_multiplier, fixed_cost, n_eligible, weight,
    penalty; ``outcome`` for weights and penalties; ``label`` is the name it was asked by."""

    kind: str
    outcome: str | None = None
    label: str = ""


def assumption_names(value_model: ValueModel) -> list[str]:
    """Every assumption name :func:`parse_assumption` accepts besides ``weight:``/``penalty:``."""
    return [*_GLOBAL, *value_model.assumptions]


def parse_assumption(name: str, value_model: ValueModel, outcomes: Sequence[str]) -> Assumption:
    """Resolve an assumption name: ``transport_multiplier``, ``fixed_cost``, ``n_eligible``, a
    named cost assumption of the value model (e.g. ``annoyance_penalty``, whose outcome the value
    model names), or the explicit ``weight:<outcome>`` / ``penalty:<outcome>``."""
    outcomes = [str(o) for o in outcomes]
    if name in _GLOBAL:
        return Assumption(name, label=name)
    if name in value_model.assumptions:
        return Assumption("penalty", value_model.assumptions[name], label=name)
    kind, _, outcome = name.partition(":")
    if kind in ("weight", "penalty") and outcome in outcomes:
        return Assumption(kind, outcome, label=name)
    raise SpecError(
        f"unknown assumption {name!r}; use one of {assumption_names(value_model)}, "
        f"'weight:<outcome>' or 'penalty:<outcome>' with an outcome in {outcomes}"
    )


def linear_coefficients(
    launch: LaunchDraws, masks: np.ndarray, assumption: str | Assumption
) -> tuple[np.ndarray, np.ndarray, float, Assumption]:
    """``(a, b, current, assumption)`` with launch value ``V = a + b * theta`` per draw and policy.

    ``a`` and ``b`` have shape (S, P); ``current`` is the assumption's present setting.
    """
    asm = (
        assumption
        if isinstance(assumption, Assumption)
        else parse_assumption(assumption, launch.value_model, launch.outcomes)
    )
    pop = launch.population
    n = pop.n_eligible
    w = np.atleast_2d(masks) * launch.mix  # (P, C)
    scale = pop.cost_scale(np.atleast_2d(masks), launch.mix)  # (P,)
    cost = pop.fixed_cost * scale
    if asm.kind == "transport_multiplier":
        benefit = launch.parts[..., 0] @ w.T
        rest = launch.parts[..., 1] @ w.T
        return n * rest - cost, n * benefit, pop.transport_multiplier, asm
    value = launch.value @ w.T  # (S, P) per eligible customer
    if asm.kind == "fixed_cost":
        return n * value, np.broadcast_to(-scale, value.shape).copy(), pop.fixed_cost, asm
    if asm.kind == "n_eligible":
        return np.broadcast_to(-cost, value.shape).copy(), value, n, asm
    assert asm.outcome is not None
    k = launch.outcome_index(asm.outcome)
    weight = launch.value_model.weights.get(asm.outcome, 0.0)
    mult = pop.transport_multiplier if asm.outcome in launch.value_model.benefit_outcomes else 1.0
    b = n * mult * (launch.x[:, :, k] @ w.T)
    a = n * value - cost - b * weight
    if asm.kind == "penalty":
        return a, -b, -weight, asm
    return a, b, weight, asm


def solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-draw root of ``a + b * theta = 0`` (NaN where ``b == 0``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b != 0, -a / np.where(b != 0, b, 1.0), np.nan)


def threshold_crossing(a: np.ndarray, b: np.ndarray, q: float) -> float:
    """The assumption value where P(a + b * theta > 0) crosses ``q`` (1-D arrays over draws).

    When value rises with theta on average (mean b > 0) it is the smallest theta with P >= q
    (``-inf`` if P >= q everywhere); when it falls, the largest (``+inf``). NaN if P never
    reaches q.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    roots = solve(a, b)
    const = float(np.mean((b == 0) & (a > 0)))
    pos = np.sort(roots[b > 0])
    neg = np.sort(roots[b < 0])
    s = len(a)
    bp = np.unique(np.concatenate([pos, neg]))
    if len(bp) == 0:
        return -np.inf if const >= q else np.nan
    mids = np.concatenate([[bp[0] - 1.0], (bp[:-1] + bp[1:]) / 2, [bp[-1] + 1.0]])
    f = (
        np.searchsorted(pos, mids, side="left")
        + (len(neg) - np.searchsorted(neg, mids, side="right"))
    ) / s + const
    ok = f >= q - 1e-12
    if not ok.any():
        return np.nan
    if b.mean() >= 0:
        j = int(np.argmax(ok))
        return -np.inf if j == 0 else float(bp[j - 1])
    j = len(ok) - 1 - int(np.argmax(ok[::-1]))
    return np.inf if j == len(bp) else float(bp[j])


def break_even_draws(
    launch: LaunchDraws, masks: np.ndarray, names: Sequence[str], assumption: str
) -> xr.DataArray:
    """Break-even draws of ``assumption`` per policy: dims ``(*sample_dims, policy)``."""
    a, b, _, asm = linear_coefficients(launch, masks, assumption)
    return launch.layout.wrap(
        solve(a, b), ("policy",), {"policy": list(names)}, name=f"break_even_{asm.label}"
    )


def break_even_table(
    launch: LaunchDraws,
    masks: np.ndarray,
    names: Sequence[str],
    assumptions: Sequence[str],
    decision_threshold: float,
    ci_prob: float,
) -> pd.DataFrame:
    """Break-even summary per assumption and policy.

    Columns: ``assumption``, ``policy``, ``current`` (setting now), ``median``, ``lower``,
    ``upper`` (equal-tailed ``ci_prob`` interval of the break-even draws, NaN draws ignored),
    ``prob_defined`` (share of draws with a break-even), ``direction`` (``"above"`` when value
    rises with the assumption, so it must stay above the break-even; ``"below"`` otherwise),
    ``threshold`` (the value at which P(value > 0) equals ``decision_threshold``) and
    ``decision_threshold``.
    """
    lo, hi = interval_probs(ci_prob)
    rows = []
    for name in assumptions:
        a, b, current, asm = linear_coefficients(launch, masks, name)
        roots = solve(a, b)
        for p, pname in enumerate(names):
            r = roots[:, p]
            finite = r[np.isfinite(r)]
            if len(finite):
                q = np.quantile(finite, [lo, 0.5, hi])
            else:
                q = np.full(3, np.nan)
            rows.append(
                {
                    "assumption": asm.label,
                    "policy": pname,
                    "current": float(current),
                    "median": float(q[1]),
                    "lower": float(q[0]),
                    "upper": float(q[2]),
                    "prob_defined": float(np.isfinite(r).mean()),
                    "direction": "above" if b[:, p].mean() >= 0 else "below",
                    "threshold": threshold_crossing(a[:, p], b[:, p], decision_threshold),
                    "decision_threshold": float(decision_threshold),
                }
            )
    return pd.DataFrame(rows)


def break_even(
    tau: xr.DataArray,
    cell_share: xr.DataArray,
    assumption: str,
    value_model: ValueModel,
    population: Population,
    policy: Policy | dict | None = None,
    sample_dims: str | Sequence[str] = DEFAULT_SAMPLE_DIMS,
) -> xr.DataArray:
    """Posterior draws of the break-even value of ``assumption`` for one policy (default: treat
    all), dims ``sample_dims``. Units: the assumption's (multiplier, dollars, customers)."""
    from bayesdecide.decide.policies import treat_all

    launch = LaunchDraws(tau, cell_share, value_model, population, sample_dims)
    pol = treat_all() if policy is None else as_policy(policy)
    return break_even_draws(launch, launch.masks([pol]), [pol.name], assumption).isel(
        policy=0, drop=True
    )
