"""Leave one level out: fit without a level's cells, predict the level, compare with its truth.

The check the scaling chapter calls cross-validation by region: a level (a region, a product) is
removed from the EffectTable, the model is fitted on the rest, and the level's effect is predicted
as a new level with ``fit.predict_new({factor: level})`` (a fresh level effect drawn from the
factor's spread, fresh interaction and cell deviations). The held-out level's predicted effect is
the average of the predicted cells weighted by the held-out cells' units (the experiment's mix);
its truth is the same average of the true cell effects
(:meth:`~bayesdecide.simulate.Simulation.true_cell_effects`). PIT is the predictive probability of
an effect at or below the truth: near 0 or 1 when the truth is in a tail of the prediction.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from bayesdecide.validate.harness import SEED_ATTR, FitFunction, HierarchicalFit
from bayesdecide.validate.metrics import SAMPLE_DIMS, cell_truth
from bayesdecide.validate.processes import Process


@dataclass(frozen=True)
class HoldoutResult:
    """A held-out level's predictive distribution against its true effect.

    Money and effects are in the outcome's unit per assigned unit (e.g. dollars per shopper).

    Attributes
    ----------
    process, factor, level, seed, outcome:
        What was held out, in which replicate, for which outcome.
    cells, units:
        Held-out cells and their units (both arms).
    truth:
        True effect of the level: mean of its units' true expected effects.
    mean, sd, lower, upper, prob:
        Predictive mean, sd and equal-tailed ``prob`` interval of the level's effect.
    covered:
        Whether ``lower <= truth <= upper``.
    width:
        ``upper - lower``.
    pit:
        Predictive probability that the level's effect is at or below the truth.
    raw_estimate, raw_se:
        The level's own unpooled estimate from its held-out data (for comparison; not used by
        the prediction) and its standard error.
    fit_seconds:
        Wall time of the fit without the level.
    """

    process: str
    factor: str
    level: str
    seed: int
    outcome: str
    cells: int
    units: float
    truth: float
    mean: float
    sd: float
    lower: float
    upper: float
    prob: float
    covered: bool
    width: float
    pit: float
    raw_estimate: float
    raw_se: float
    fit_seconds: float

    def as_series(self) -> pd.Series:
        return pd.Series(asdict(self), name=f"{self.process}: {self.factor}={self.level}")


def leave_level_out(
    process: Process,
    factor: str,
    level: str,
    *,
    seed: int | None = None,
    fit_fn: FitFunction | None = None,
    outcome: str | None = None,
    prob: float = 0.9,
) -> HoldoutResult:
    """Fit ``process``'s replicate ``seed`` without ``factor == level`` and predict that level.

    Parameters
    ----------
    process:
        The process; ``factor`` must be one of the factors its model pools over.
    factor, level:
        The level held out, e.g. ``"region"``, ``"Metro"``.
    seed:
        Replicate seed (default: ``process.first_seed``); also seeds the fit and the prediction.
    fit_fn:
        As in :func:`~bayesdecide.validate.run_calibration`; the object it returns must also have
        ``predict_new(level_mapping, seed=...)`` (as :class:`bayesdecide.Fit` does).
    outcome:
        Outcome to check (default: the process's primary outcome).
    prob:
        Probability of the predictive interval.

    Returns
    -------
    HoldoutResult
    """
    if factor not in process.factors:
        raise ValueError(
            f"{factor!r} is not a factor the {process.name!r} model pools over "
            f"({list(process.factors)}); a new level can only be predicted for one of them"
        )
    seed = process.first_seed if seed is None else int(seed)
    outcome = process.primary if outcome is None else outcome
    fit_fn = HierarchicalFit() if fit_fn is None else fit_fn
    sim = process.simulate(seed)
    table = process.effect_table(sim)
    labels = np.asarray(table[factor].values).astype(str)
    held = labels == str(level)
    if not held.any():
        raise ValueError(f"no cells with {factor} = {level!r}; levels are {sorted(set(labels))}")
    train = table.isel(cell=np.flatnonzero(~held))
    train.attrs[SEED_ATTR] = seed
    started = time.perf_counter()
    fitted = fit_fn(train, process)
    fit_seconds = time.perf_counter() - started
    pred = fitted.predict_new({factor: str(level)}, seed=seed)

    test = table.isel(cell=np.flatnonzero(held))
    units = np.asarray(test["n_control"].values + test["n_treatment"].values, dtype=float)
    truth_cells = cell_truth(test, sim.true_cell_effects(), sim.spec.groups, outcome)
    keys = list(zip(*(np.asarray(pred[f].values).astype(str) for f in process.factors)))
    position = {k: j for j, k in enumerate(keys)}
    weights = np.zeros(len(keys))
    for i, key in enumerate(
        zip(*(np.asarray(test[f].values).astype(str) for f in process.factors))
    ):
        if key not in position:
            raise KeyError(f"the prediction has no cell {key} of the held-out level")
        weights[position[key]] += units[i]
    weights /= weights.sum()
    draws = pred.sel(outcome=outcome).transpose(*SAMPLE_DIMS, "cell").values
    level_draws = draws.reshape(-1, len(keys)) @ weights
    truth = float(units @ truth_cells / units.sum())
    lower, upper = np.quantile(level_draws, [(1 - prob) / 2, (1 + prob) / 2])

    observed = np.asarray(test["observed"].values, dtype=bool)
    w_raw = np.where(observed, units, 0.0)
    w_raw = w_raw / w_raw.sum()
    effect = np.where(observed, test["effect"].sel(outcome=outcome).values, 0.0)
    var = np.where(observed, test["effect_cov"].sel(outcome=outcome, outcome_b=outcome).values, 0.0)
    return HoldoutResult(
        process=process.name,
        factor=factor,
        level=str(level),
        seed=seed,
        outcome=outcome,
        cells=int(held.sum()),
        units=float(units.sum()),
        truth=truth,
        mean=float(level_draws.mean()),
        sd=float(level_draws.std(ddof=1)),
        lower=float(lower),
        upper=float(upper),
        prob=float(prob),
        covered=bool(lower <= truth <= upper),
        width=float(upper - lower),
        pit=float(np.mean(level_draws <= truth)),
        raw_estimate=float(w_raw @ effect),
        raw_se=float(np.sqrt(w_raw**2 @ var)),
        fit_seconds=fit_seconds,
    )


__all__ = ["HoldoutResult", "leave_level_out"]
