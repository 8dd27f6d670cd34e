"""Comparison across the levels of one factor (region first).

For each level ``l`` the effect is population-weighted over the level's cells with the launch mix::

    effect[s, l] = sum_{c in l} mix[c] * x[s, c] / sum_{c in l} mix[c]

where ``x`` is net value per customer (dollars; default) or one outcome's effect. From these draws:
a summary, the pairwise P(A > B) matrix, rank probabilities (rank 1 = highest), the best policy
per level, and a shrinkage table of raw (no pooling, from an EffectTable) against pooled estimates.

Best policy per level: the level is treated as its own launch with ``N * share_l`` customers and
the fixed cost allocated pro rata (``fixed_cost * share_l``, scaled by the treated share within
the level under the ``"treated_share"`` rule); candidates are treat none, treat all of the level
and the level's optimal targeting (cells sorted by posterior mean value, best prefix; exact for a
constant fixed cost). Guardrails are not applied within a level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.decide._draws import summarize
from bayesdecide.decide.defaults import DECISION_DEFAULTS
from bayesdecide.decide.evaluate import LaunchDraws
from bayesdecide.errors import SpecError


@dataclass(frozen=True)
class LevelComparison:
    """Comparison of the levels of ``factor``; every table is a pandas DataFrame."""

    factor: str
    quantity: str
    effects: xr.DataArray
    summary: pd.DataFrame
    pairwise: pd.DataFrame
    ranks: pd.DataFrame
    best_policy: pd.DataFrame
    shrinkage: pd.DataFrame | None


def _level_codes(launch: LaunchDraws, factor: str) -> tuple[list, np.ndarray]:
    labels = launch.labels(factor)
    levels = list(pd.unique(pd.Series(labels)))
    return levels, pd.Index(levels).get_indexer(labels)


def _level_draws(
    launch: LaunchDraws, factor: str, outcome: str | None = None
) -> tuple[np.ndarray, list, np.ndarray]:
    """``(effects (S, L), levels, shares (L,))`` population-weighted over each level's cells."""
    levels, codes = _level_codes(launch, factor)
    onehot = np.eye(len(levels))[codes] * launch.mix[:, None]  # (C, L)
    shares = onehot.sum(axis=0)
    x = launch.value if outcome is None else launch.x[:, :, launch.outcome_index(outcome)]
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = (x @ onehot) / np.where(shares > 0, shares, np.nan)
    return eff, levels, shares


def _best_policy(launch: LaunchDraws, factor: str) -> pd.DataFrame:
    levels, codes = _level_codes(launch, factor)
    pop = launch.population
    n, mix, m, v = pop.n_eligible, launch.mix, launch.mean_value, launch.value
    rows = []
    for j, level in enumerate(levels):
        idx = np.flatnonzero(codes == j)
        share = mix[idx].sum()
        if share <= 0:
            rows.append({"level": level, "share": 0.0, "best_policy": "treat_none"})
            continue
        order = idx[np.argsort(-m[idx], kind="stable")]
        tri = np.tril(np.ones((len(order), len(order))))  # prefix k treats the first k+1 cells
        ev_cells = n * mix[order] * m[order]
        prefix_share = (tri * (mix[order] / share)[None]).sum(axis=1)
        ev = tri @ ev_cells - pop.fixed_cost * share * pop.share_scale(prefix_share)
        k = int(np.argmax(ev))
        opt_cells = order[: k + 1] if ev[k] > 0 else order[:0]
        v_all = n * (v[:, idx] @ mix[idx]) - pop.fixed_cost * share  # treated share 1
        if len(opt_cells):
            s_opt = mix[opt_cells].sum() / share
            scale_opt = float(pop.share_scale(s_opt))
            v_opt = n * (v[:, opt_cells] @ mix[opt_cells]) - pop.fixed_cost * share * scale_opt
        else:
            s_opt, v_opt = 0.0, np.zeros(v.shape[0])
        values = {"treat_none": np.zeros(v.shape[0]), "treat_all": v_all, "optimal": v_opt}
        evs = {k_: float(val.mean()) for k_, val in values.items()}
        best = max(evs, key=lambda k_: (evs[k_], k_ == "treat_none"))
        rows.append(
            {
                "level": level,
                "share": float(share),
                "best_policy": best,
                "expected_value": evs[best],
                "prob_positive": float((values[best] > 0).mean()),
                "value_treat_all": evs["treat_all"],
                "value_optimal": evs["optimal"],
                "optimal_treated_share": float(s_opt),
                "optimal_cells": [str(c) for c in launch.cells[opt_cells]],
            }
        )
    return pd.DataFrame(rows)


def _shrinkage(
    launch: LaunchDraws,
    factor: str,
    outcome: str | None,
    effects: xr.Dataset,
    pooled: np.ndarray,
    levels: list,
) -> pd.DataFrame:
    for var in ("effect", "effect_cov"):
        if var not in effects:
            raise SpecError(f"effects Dataset has no {var!r}; pass an EffectTable (cell_effects)")
    eff = effects["effect"].reindex(cell=launch.cells)
    cov = effects["effect_cov"].reindex(cell=launch.cells)
    eff_outcomes = [str(o) for o in eff["outcome"].values]
    if outcome is None:
        wb, wr = launch.value_model.weight_vectors(eff_outcomes)
        w = launch.population.transport_multiplier * wb + wr
    else:
        if outcome not in eff_outcomes:
            raise SpecError(f"effects have no outcome {outcome!r}; outcomes are {eff_outcomes}")
        w = np.zeros(len(eff_outcomes))
        w[eff_outcomes.index(outcome)] = 1.0
    e = eff.transpose("cell", "outcome").values
    c = cov.transpose("cell", "outcome", "outcome_b").values
    raw = np.nansum(e * w, axis=1)
    raw[np.isnan(e @ np.where(w != 0, 1.0, 0.0))] = np.nan
    var = np.einsum("k,ckl,l->c", w, c, w)
    _, codes = _level_codes(launch, factor)
    mix = launch.mix
    ok = np.isfinite(raw) & np.isfinite(var)
    grand_w = np.where(ok, mix, 0)
    raw_overall = np.sum(grand_w * np.where(ok, raw, 0)) / grand_w.sum()
    pooled_mean = np.nanmean(pooled, axis=0)
    shares = np.array([mix[codes == j].sum() for j in range(len(levels))])
    pooled_overall = np.nansum(pooled_mean * shares) / shares[np.isfinite(pooled_mean)].sum()
    rows = []
    for j, level in enumerate(levels):
        sel = (codes == j) & ok
        wsum = mix[sel].sum()
        if wsum > 0:
            est = float(np.sum(mix[sel] * raw[sel]) / wsum)
            se = float(np.sqrt(np.sum(mix[sel] ** 2 * var[sel])) / wsum)
        else:
            est = se = np.nan
        denom = est - raw_overall
        shrink = 1 - (pooled_mean[j] - pooled_overall) / denom if abs(denom) > 1e-12 else np.nan
        rows.append(
            {
                "level": level,
                "raw_estimate": est,
                "raw_se": se,
                "pooled_mean": float(pooled_mean[j]),
                "pooled_sd": float(np.nanstd(pooled[:, j], ddof=1)),
                "difference": float(pooled_mean[j] - est),
                "shrinkage": float(shrink),
                "cells_raw": int(sel.sum()),
                "cells": int((codes == j).sum()),
            }
        )
    return pd.DataFrame(rows)


def compare_levels(
    launch: LaunchDraws,
    factor: str = "region",
    outcome: str | None = None,
    effects: xr.Dataset | None = None,
    ci_prob: float = DECISION_DEFAULTS["ci_prob"],
) -> LevelComparison:
    """Compare the levels of ``factor`` on net value per customer (``outcome=None``, dollars) or
    one outcome's effect (its unit). ``effects`` (an EffectTable with ``effect`` and
    ``effect_cov``) adds the raw-vs-pooled shrinkage table. ``summary`` has the equal-tailed
    ``ci_prob`` interval in ``lower``/``upper``; ``pairwise`` holds P(row > column) with NaN on
    the diagonal (a level is not compared with itself). With several treatment arms, compare one
    arm at a time: ``compare_levels(launch.arm_view(arm), ...)`` with that arm's effects
    (:func:`bayesdecide.data.effects.arm_effects`)."""
    if launch.arms is not None:
        raise SpecError(
            f"compare_levels compares one treatment arm at a time; pass launch.arm_view(arm) for "
            f"one of {launch.arms} (Decision.compare(factor, arm=...) does)"
        )
    eff, levels, shares = _level_draws(launch, factor, outcome)
    s = summarize(eff, ci_prob)
    summary = pd.DataFrame(
        {
            "level": levels,
            "share": shares,
            "mean": s["mean"],
            "sd": s["sd"],
            "lower": s["lower"],
            "upper": s["upper"],
            "prob_positive": (eff > 0).mean(axis=0),
        }
    )
    pair = (eff[:, :, None] > eff[:, None, :]).mean(axis=0)
    np.fill_diagonal(pair, np.nan)
    pairwise = pd.DataFrame(
        pair, index=pd.Index(levels, name="A"), columns=pd.Index(levels, name="B")
    )
    order = np.argsort(np.argsort(-eff, axis=1, kind="stable"), axis=1)  # 0 = highest
    rank_p = np.stack([(order == r).mean(axis=0) for r in range(len(levels))], axis=1)
    ranks = pd.DataFrame(
        rank_p,
        index=pd.Index(levels, name="level"),
        columns=pd.Index(range(1, len(levels) + 1), name="rank"),
    )
    da = launch.layout.wrap(eff, (factor,), {factor: levels}, name=outcome or "net_value")
    shrink = None if effects is None else _shrinkage(launch, factor, outcome, effects, eff, levels)
    return LevelComparison(
        factor=factor,
        quantity=outcome or launch.value_model.name,
        effects=da,
        summary=summary,
        pairwise=pairwise,
        ranks=ranks,
        best_policy=_best_policy(launch, factor),
        shrinkage=shrink,
    )
