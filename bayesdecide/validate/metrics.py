"""Per-replicate calibration records: every estimand's truth, posterior and no-pooling estimate.

Estimands (each in the outcome's unit per assigned unit, e.g. dollars per customer):

- a **cell**'s effect: the expected effect of assignment for a unit drawn from the cell's
  population, where the process states it, else the mean of the true per-unit effects of the
  cell's own units (:meth:`~bayesdecide.simulate.Simulation.true_cell_effects`; the two differ by
  the luck of which units a small cell drew, and the cell estimate's standard error is for the
  population effect); its posterior is the cell's ``tau``;
- a **factor level**'s effect: the experiment-mix average of its cells' effects, weights = units
  per cell in that replicate (``n_control + n_treatment``); its posterior is the same weighted
  average of the ``tau`` draws;
- the **overall** (all-unit) effect: the same average over every cell.

The no-pooling (unpooled) comparison is the same weighted average of the raw cell estimates
(``effect`` of the EffectTable) over the *observed* cells, weights renormalised, with standard error
``sqrt(sum w_c^2 var_c)`` (cells are independent samples; ``var_c`` from ``effect_cov``). Cells
with one arm only (NaN estimate) have a posterior and a truth, so they count in every pooled
metric; they have no estimate, so they are left out of the unpooled ones, and the unpooled
estimate of a level is compared with the truth averaged over the same observed cells
(``raw_truth``). Posterior intervals are equal-tailed (quantiles of the draws, linear
interpolation); unpooled intervals are normal, ``estimate +/- z * se``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import norm

from bayesdecide.validate.oracle import oracle_posterior

SAMPLE_DIMS = ("chain", "draw")
ALL_LEVEL = "all units"  # the level label of the overall estimand
RECORD_COLUMNS = (
    "outcome",
    "kind",
    "factor",
    "level",
    "units",
    "n_cells",
    "n_observed",
    "truth",
    "post_mean",
    "post_sd",
    "lo90",
    "hi90",
    "lo95",
    "hi95",
    "raw_truth",
    "raw_estimate",
    "raw_se",
    "oracle_mean",
    "oracle_sd",
)


def estimand_weights(
    effect_table: xr.Dataset, groups: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The estimands of one replicate and their weights over the table's cells.

    Parameters
    ----------
    effect_table:
        An EffectTable (:func:`bayesdecide.cell_effects`) with ``n_control``, ``n_treatment`` and
        the factor labels as coords along ``cell``.
    groups:
        Grouping factors whose levels are estimands (usually every grouping factor of the spec).

    Returns
    -------
    (labels, weights)
        ``labels``: one row per estimand with ``kind`` (``"cell"``, ``"level"``, ``"overall"``),
        ``factor`` (``"cell"`` for cells, ``"all"`` for the overall effect), ``level`` (the cell
        label, the level, or ``"all units"``) and ``units`` (units in its cells, both arms).
        ``weights``: (estimands, cells), every row non-negative and summing to 1 (units per cell
        within the estimand).
    """
    n = np.asarray(effect_table["n_control"].values + effect_table["n_treatment"].values, float)
    cells = [str(c) for c in effect_table["cell"].values]
    rows: list[tuple[str, str, str]] = [("cell", "cell", c) for c in cells]
    masks: list[np.ndarray] = [np.arange(len(cells)) == i for i in range(len(cells))]
    for f in groups:
        labels = np.asarray(effect_table[f].values).astype(str)
        for level in _ordered_unique(labels):
            rows.append(("level", f, level))
            masks.append(labels == level)
    rows.append(("overall", "all", ALL_LEVEL))
    masks.append(np.ones(len(cells), dtype=bool))
    mask = np.array(masks, dtype=float)
    units = mask @ n
    if np.any(units <= 0):
        empty = [r for r, u in zip(rows, units, strict=True) if u <= 0]
        raise ValueError(f"estimands with no units in the effect table: {empty}")
    weights = mask * n / units[:, None]
    labels = pd.DataFrame(rows, columns=["kind", "factor", "level"])
    labels["units"] = units
    return labels, weights


def _ordered_unique(values: np.ndarray) -> list[str]:
    return list(dict.fromkeys(values.tolist()))


def cell_truth(
    effect_table: xr.Dataset, true_cells: pd.DataFrame, groups: Sequence[str], outcome: str
) -> np.ndarray:
    """True effect of every cell of ``effect_table`` (in its order), from ``true_cells``.

    ``true_cells`` is indexed by the grouping factors ``groups`` (every one of them, as
    :meth:`Simulation.true_cell_effects` returns it); labels are matched as strings. Raises
    ``KeyError`` naming the cells without a truth.
    """
    index = true_cells.index
    if not isinstance(index, pd.MultiIndex):
        index = pd.MultiIndex.from_arrays([index])
    keyed = true_cells[outcome].copy()
    keyed.index = pd.MultiIndex.from_arrays(
        [index.get_level_values(i).astype(str) for i in range(index.nlevels)],
        names=index.names,
    )
    keyed = keyed.reorder_levels(list(groups)) if index.nlevels > 1 else keyed
    keys = pd.MultiIndex.from_arrays(
        [np.asarray(effect_table[g].values).astype(str) for g in groups], names=list(groups)
    )
    values = keyed.reindex(keys).to_numpy(dtype=float)
    missing = [str(k) for k, v in zip(keys, values, strict=True) if not np.isfinite(v)]
    if missing:
        raise KeyError(f"no true effect of {outcome!r} for cells {missing}")
    return values


def replicate_records(
    tau: xr.DataArray,
    effect_table: xr.Dataset,
    true_cells: pd.DataFrame,
    outcomes: Sequence[str],
    groups: Sequence[str],
) -> pd.DataFrame:
    """One replicate's calibration records: truth, posterior and unpooled estimate per estimand.

    Parameters
    ----------
    tau:
        Posterior draws of the cell effects with dims ``chain``, ``draw``, ``cell``, ``outcome``
        (``cell`` labels those of ``effect_table``; extra cells are ignored, missing ones raise).
    effect_table:
        The EffectTable the posterior was fitted on (or, for a held-out check, the full table).
    true_cells:
        True cell effects indexed by the grouping factors, one column per outcome.
    outcomes:
        Outcomes to record (each must be in ``tau`` and ``true_cells``).
    groups:
        Every grouping factor of the spec: they identify the cells in ``true_cells``, and each of
        their levels is an estimand (whatever factors the model pools over).

    Returns
    -------
    pandas.DataFrame
        One row per outcome x estimand with :data:`RECORD_COLUMNS`: ``units`` (both arms),
        ``n_cells`` and ``n_observed`` (cells with both arms), ``truth``, posterior ``post_mean``,
        ``post_sd`` and equal-tailed 90% and 95% intervals ``lo90``/``hi90``/``lo95``/``hi95``;
        ``raw_truth``, ``raw_estimate`` and ``raw_se`` for the unpooled estimate over observed
        cells (NaN when the estimand has none). All in the outcome's unit per assigned unit.
    """
    cells = [str(c) for c in effect_table["cell"].values]
    tau_cells = [str(c) for c in tau["cell"].values]
    missing = sorted(set(cells) - set(tau_cells))
    if missing:
        raise KeyError(f"the posterior has no draws for cells {missing}")
    tau = tau.assign_coords(cell=tau_cells).sel(cell=cells)
    labels, weights = estimand_weights(effect_table, groups)
    observed = np.asarray(effect_table["observed"].values, dtype=bool)
    raw_mask = weights * observed[None, :]
    raw_total = raw_mask.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw_weights = raw_mask / raw_total[:, None]
    raw_weights[raw_total <= 0] = np.nan
    n_cells = (weights > 0).sum(axis=1)
    n_observed = ((weights > 0) & observed[None, :]).sum(axis=1)
    frames = []
    for outcome in outcomes:
        if outcome not in tau["outcome"].values:
            raise KeyError(f"the posterior has no outcome {outcome!r}")
        draws = (
            tau.sel(outcome=outcome).transpose(*SAMPLE_DIMS, "cell").values.reshape(-1, len(cells))
        )
        est_draws = draws @ weights.T  # (draws, estimands)
        q = np.quantile(est_draws, [0.05, 0.95, 0.025, 0.975], axis=0)
        truth = cell_truth(effect_table, true_cells, groups, outcome)
        effect = np.asarray(effect_table["effect"].sel(outcome=outcome).values, dtype=float)
        var = np.asarray(
            effect_table["effect_cov"].sel(outcome=outcome, outcome_b=outcome).values, dtype=float
        )
        effect0 = np.where(observed, effect, 0.0)
        var0 = np.where(observed, var, 0.0)
        frame = labels.copy()
        frame.insert(0, "outcome", outcome)
        frame["n_cells"] = n_cells
        frame["n_observed"] = n_observed
        frame["truth"] = weights @ truth
        frame["post_mean"] = est_draws.mean(axis=0)
        frame["post_sd"] = est_draws.std(axis=0, ddof=1)
        frame["lo90"], frame["hi90"], frame["lo95"], frame["hi95"] = q
        frame["raw_truth"] = np.nansum(raw_weights * truth[None, :], axis=1)
        frame["raw_estimate"] = np.nansum(raw_weights * effect0[None, :], axis=1)
        frame["raw_se"] = np.sqrt(np.nansum(raw_weights**2 * var0[None, :], axis=1))
        none = raw_total <= 0
        frame.loc[none, ["raw_truth", "raw_estimate", "raw_se"]] = np.nan
        frame["oracle_mean"], frame["oracle_sd"] = np.nan, np.nan
        for _, rows in frame[frame["kind"] == "level"].groupby("factor", sort=False):
            mean, sd = oracle_posterior(
                rows["truth"].to_numpy(), rows["raw_estimate"].to_numpy(), rows["raw_se"].to_numpy()
            )
            frame.loc[rows.index, "oracle_mean"] = mean
            frame.loc[rows.index, "oracle_sd"] = sd
        frames.append(frame)
    return pd.DataFrame(pd.concat(frames, ignore_index=True), columns=list(RECORD_COLUMNS))


def add_checks(records: pd.DataFrame) -> pd.DataFrame:
    """``records`` with coverage indicators, errors, z-scores and interval widths added.

    Added columns (pooled / unpooled): ``cover90``/``raw_cover90`` and ``cover95``/``raw_cover95``
    (the interval contains the truth; unpooled: ``raw_truth``), ``error``/``raw_error`` (estimate
    minus truth, outcome units), ``z``/``raw_z`` (error in posterior sds / standard errors),
    ``width90``/``raw_width90`` (interval width, outcome units); for factor levels the oracle's
    ``oracle_z`` (its error in its own sds) and ``oracle_cover95`` (its normal 95% interval
    contains the truth). Unpooled and oracle columns are NaN where the estimand has no observed
    cell. The truth is covered when ``lower <= truth <= upper``.
    """
    out = records.copy()
    z90, z95 = norm.ppf(0.95), norm.ppf(0.975)
    t = out["truth"]
    out["cover90"] = ((out["lo90"] <= t) & (t <= out["hi90"])).astype(float)
    out["cover95"] = ((out["lo95"] <= t) & (t <= out["hi95"])).astype(float)
    out["error"] = out["post_mean"] - t
    with np.errstate(invalid="ignore", divide="ignore"):
        out["z"] = out["error"] / out["post_sd"]
        raw = out["raw_estimate"]
        rt = out["raw_truth"]
        out["raw_error"] = raw - rt
        out["raw_z"] = out["raw_error"] / out["raw_se"]
    has_raw = raw.notna()
    out["raw_cover90"] = np.where(has_raw, (np.abs(raw - rt) <= z90 * out["raw_se"]), np.nan)
    out["raw_cover95"] = np.where(has_raw, (np.abs(raw - rt) <= z95 * out["raw_se"]), np.nan)
    out["width90"] = out["hi90"] - out["lo90"]
    out["raw_width90"] = 2.0 * z90 * out["raw_se"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["oracle_z"] = (out["oracle_mean"] - t) / out["oracle_sd"]
    has_oracle = out["oracle_z"].notna()
    out["oracle_cover95"] = np.where(has_oracle, np.abs(out["oracle_z"]) <= z95, np.nan)
    return out


__all__ = [
    "ALL_LEVEL",
    "RECORD_COLUMNS",
    "add_checks",
    "cell_truth",
    "estimand_weights",
    "replicate_records",
]
