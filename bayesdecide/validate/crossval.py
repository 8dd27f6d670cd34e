"""Cross-validation by level on real data: would the model have predicted each region?

Seed 000's advice is to "use cross-validation by region to guard against overfitting to a single
market". For every level of a factor (each region), the model is refitted without that level's
cells and the level is predicted as a new one (:meth:`bayesdecide.Fit.predict_new`: a fresh level
effect from the factor's spread, fresh interactions and cell deviations). What can be checked
without knowing the truth is the level's *own estimate*: the experiment-mix average of its cells'
effect estimates, in the outcome's unit per assigned unit. Its posterior predictive distribution
is the predicted level effect plus that estimate's sampling error (normal, with the standard error
from the cells' sampling covariance). Reported per held-out level: the predictive mean and
``prob`` interval, whether the estimate fell inside, the interval's width and the PIT (predictive
probability of a value at or below the estimate). A PIT outside [0.025, 0.975] means the level
behaves unlike the others: the hierarchy would have mispredicted it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.errors import SpecError

PIT_BOUNDS = (0.025, 0.975)
FitTable = Callable[[xr.Dataset], Any]


def _level_estimate(table: xr.Dataset, outcome: str) -> tuple[float, float, np.ndarray]:
    """Units-weighted average of the observed cells' estimates, its standard error, the units."""
    units = np.asarray(table["n_control"].values + table["n_treatment"].values, dtype=float)
    observed = np.asarray(table["observed"].values, dtype=bool) if "observed" in table else None
    if observed is None:
        observed = np.isfinite(np.asarray(table["effect"].sel(outcome=outcome).values))
    w = np.where(observed, units, 0.0)
    if w.sum() <= 0:
        return float("nan"), float("nan"), units
    w = w / w.sum()
    effect = np.where(observed, table["effect"].sel(outcome=outcome).values, 0.0)
    var = np.where(
        observed, table["effect_cov"].sel(outcome=outcome, outcome_b=outcome).values, 0.0
    )
    return float(w @ effect), float(np.sqrt(w**2 @ var)), units


def cross_validate_levels(
    table: xr.Dataset,
    factor: str,
    fit_table: FitTable,
    *,
    outcomes: Sequence[str] | None = None,
    levels: Sequence[str] | None = None,
    prob: float = 0.9,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Refit leaving each level of ``factor`` out; predict its own estimate.

    Parameters
    ----------
    table:
        The EffectTable (``bd.cell_effects``), with unit counts.
    factor:
        The factor whose levels are held out in turn (e.g. ``"region"``); it must be one the
        model pools over.
    fit_table:
        ``fit_table(table_without_level) -> Fit`` (e.g. ``card.fit``, or ``lambda t: bd.fit(t,
        factors=[...])``).
    outcomes:
        Outcomes to check (default: every outcome of the table).
    levels:
        Levels to hold out (default: all).
    prob:
        Probability of the predictive interval.
    seed:
        Seed of the predictions' random parts and of the sampling noise added to them.

    Returns
    -------
    pandas.DataFrame
        One row per held-out level and outcome: ``factor``, ``level``, ``outcome``, ``cells``,
        ``units``, ``estimate`` and ``se``
        (the level's own estimate), ``mean``, ``sd``, ``lower``, ``upper`` (predictive), ``covered``,
        ``width``, ``pit``, ``surprising`` (PIT outside :data:`PIT_BOUNDS`), ``fit_seconds``.
        Effects in each outcome's unit per assigned unit.
    """
    if factor not in table.coords or table[factor].dims != ("cell",):
        raise SpecError(f"{factor!r} is not a grouping column of the table")
    if not 0 < prob < 1:
        raise SpecError(f"prob={prob} must be between 0 and 1")
    labels = np.asarray(table[factor].values).astype(str)
    all_levels = list(dict.fromkeys(labels))
    chosen = all_levels if levels is None else [str(v) for v in levels]
    unknown = [v for v in chosen if v not in all_levels]
    if unknown:
        raise SpecError(f"levels {unknown} of {factor!r} are not in the data; levels: {all_levels}")
    if len(all_levels) < 3:
        raise SpecError(
            f"{factor!r} has {len(all_levels)} levels; holding one out leaves too few to learn "
            "their spread from (need at least 3)"
        )
    outcomes = list(table["outcome"].values) if outcomes is None else list(outcomes)
    rows = []
    for i, level in enumerate(chosen):
        held = labels == level
        train = table.isel(cell=np.flatnonzero(~held))
        test = table.isel(cell=np.flatnonzero(held))
        if progress:
            progress(f"holding out {factor} = {level} ({i + 1}/{len(chosen)})")
        started = time.perf_counter()
        fitted = fit_table(train)
        seconds = time.perf_counter() - started
        pred = fitted.predict_new({factor: level}, seed=seed)
        others = [f for f in fitted.inputs.factors if f != factor]
        index = {
            tuple(str(v) for v in key): j
            for j, key in enumerate(zip(*(pred[f].values for f in others), strict=True))
        }
        rng = np.random.default_rng([seed, i])
        for outcome in outcomes:
            estimate, se, units = _level_estimate(test, outcome)
            weights = np.zeros(pred.sizes["cell"])
            for c in range(test.sizes["cell"]):
                key = tuple(str(test[f].values[c]) for f in others)
                weights[index[key]] += units[c]
            weights /= weights.sum()
            draws = pred.sel(outcome=outcome).transpose("chain", "draw", "cell").values
            level_draws = draws.reshape(-1, draws.shape[-1]) @ weights
            predictive = level_draws + se * rng.standard_normal(level_draws.size)
            lower, upper = np.quantile(predictive, [(1 - prob) / 2, (1 + prob) / 2])
            pit = float(np.mean(predictive <= estimate))
            rows.append(
                {
                    "factor": factor,
                    "level": level,
                    "outcome": outcome,
                    "cells": int(held.sum()),
                    "units": float(units.sum()),
                    "estimate": estimate,
                    "se": se,
                    "mean": float(predictive.mean()),
                    "sd": float(predictive.std(ddof=1)),
                    "lower": float(lower),
                    "upper": float(upper),
                    "covered": bool(lower <= estimate <= upper),
                    "width": float(upper - lower),
                    "pit": pit,
                    "surprising": not PIT_BOUNDS[0] <= pit <= PIT_BOUNDS[1],
                    "fit_seconds": seconds,
                }
            )
    frame = pd.DataFrame(rows)
    frame.attrs["prob"] = prob
    return frame


__all__ = ["PIT_BOUNDS", "cross_validate_levels"]
