"""Summary-level input: an EffectTable from per-group estimates and standard errors alone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.errors import DataValidationError


def table_from_summary(
    table: pd.DataFrame,
    *,
    estimate: str,
    std_error: str,
    groups: Sequence[str],
    outcome: str | None = None,
    n: str | None = None,
) -> xr.Dataset:
    """Build an EffectTable (diagonal ``effect_cov``) from one row per group (x outcome).

    Parameters
    ----------
    table:
        One row per cell (and per outcome when ``outcome`` names a column). Rows of past
        experiments can be stacked with new ones: give the experiment as one of the ``groups``.
    estimate, std_error:
        Columns with the effect estimate and its standard error, in the outcome's units.
    groups:
        Columns whose combination identifies a cell; they become the model's factors.
    outcome:
        Column naming the outcome of each row; ``None`` means a single outcome called ``estimate``.
    n:
        Optional column with units per cell (split equally between arms); enables the per-cell
        scaling of the model. Without it every cell has scale 1 (see docs/model.md).
    """
    groups = list(groups)
    cols = [estimate, std_error, *groups] + ([outcome] if outcome else []) + ([n] if n else [])
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise DataValidationError(
            f"summary table has no column(s) {missing}; columns: {list(table.columns)}"
        )
    if not groups:
        raise DataValidationError("give at least one grouping column in groups=")
    frame = table[cols].copy()
    if outcome is None:
        frame["_outcome"] = estimate
        outcome = "_outcome"
    bad = ~np.isfinite(frame[std_error].astype(float)) | (frame[std_error].astype(float) <= 0)
    if bad.any():
        raise DataValidationError(
            f"column {std_error!r} must be positive and finite; {int(bad.sum())} row(s) are not"
        )
    for g in groups:
        frame[g] = frame[g].astype(str)
    frame["_cell"] = frame[groups].agg(" | ".join, axis=1)
    if frame.duplicated(["_cell", outcome]).any():
        dup = frame.loc[frame.duplicated(["_cell", outcome]), "_cell"].iloc[0]
        raise DataValidationError(
            f"more than one row for cell {dup!r}; add the column that distinguishes them to groups"
        )
    cells = sorted(frame["_cell"].unique())
    outcomes = list(dict.fromkeys(frame[outcome].astype(str)))
    est = frame.pivot(index="_cell", columns=outcome, values=estimate).reindex(cells)[outcomes]
    se = frame.pivot(index="_cell", columns=outcome, values=std_error).reindex(cells)[outcomes]
    labels = frame.drop_duplicates("_cell").set_index("_cell").reindex(cells)
    var = se.to_numpy(float) ** 2
    cov = np.zeros((len(cells), len(outcomes), len(outcomes)))
    idx = np.arange(len(outcomes))
    cov[:, idx, idx] = var
    cov[~np.isfinite(cov)] = np.nan
    coords = {"cell": cells, "outcome": outcomes, "outcome_b": outcomes}
    for g in groups:
        coords[g] = ("cell", labels[g].to_numpy(dtype=object))
    data = {
        "effect": (("cell", "outcome"), est.to_numpy(float)),
        "effect_cov": (("cell", "outcome", "outcome_b"), cov),
        "control_mean": (("cell", "outcome"), np.full(est.shape, np.nan)),
        "control_se": (("cell", "outcome"), np.full(est.shape, np.nan)),
    }
    if n:
        units = labels[n].to_numpy(float)
        data["n_control"] = (("cell",), units / 2)
        data["n_treatment"] = (("cell",), units / 2)
    ds = xr.Dataset(data, coords=coords, attrs={"factors": groups, "source": "summary"})
    return ds


__all__ = ["table_from_summary"]
