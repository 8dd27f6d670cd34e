"""Per cell x arm sufficient statistics: the only thing the model needs from the rows.

A *cell* is one combination of the spec's grouping factors (e.g. segment x region x risk band).
For every cell and arm, one GROUP BY computes the count, the sums and sums of squares and
cross-products of the outcomes, and the sums that covariate adjustment needs (covariate sums, their
cross-products, and covariate x outcome products). Rows can be billions; cells are hundreds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.data.fingerprint import fingerprint_from_aggregate
from bayesdecide.data.sources import open_source
from bayesdecide.data.spec import ExperimentSpec
from bayesdecide.data.sql import aggregation_sql, profile_sql, stat_names, stat_terms
from bayesdecide.data.summation import exponents_for, from_integer_sum
from bayesdecide.data.validate import (
    Profile,
    check_aggregate,
    check_empty_levels,
    check_frame_columns,
    check_profile,
    check_rows,
    check_schema,
    check_unit_ids,
)
from bayesdecide.errors import DataValidationError

ARMS = ("control", "treatment")  # the arm labels of a two-arm experiment
CELL_SEPARATOR = " | "


@dataclass(frozen=True)
class CellStats:
    """Sufficient statistics per cell x arm, as an :class:`xarray.Dataset` plus the spec.

    ``ds`` has dims ``cell``, ``arm`` (``control``, ``treatment`` for a two-arm experiment; the
    control then each treatment arm, labelled by :attr:`ExperimentSpec.arm_labels
    <bayesdecide.data.spec.ExperimentSpec.arm_labels>`, for a multi-arm one), ``outcome``,
    ``outcome_b``, ``covariate``, ``covariate_b`` and variables

    - ``n`` (cell, arm): units entering the sums;
    - ``sum_y`` (cell, arm, outcome), ``sum_yy`` (cell, arm, outcome, outcome_b);
    - ``sum_x`` (cell, arm, covariate), ``sum_xx`` (cell, arm, covariate, covariate_b);
    - ``sum_xy`` (cell, arm, covariate, outcome).

    Sums are in the data's units (e.g. dollars, dollars squared). Grouping-factor labels are coords
    along ``cell``. ``dropped`` counts rows dropped per arm for missing outcomes (only when the
    caller opted in with ``drop_missing_outcomes=True``; otherwise empty). ``fingerprint`` is the
    SHA-256 of the rows that were read (:func:`bayesdecide.data.fingerprint.data_fingerprint`;
    empty when the statistics were built another way).

    The sums do not depend on the order of the rows or on the engine's thread count: the same
    rows give bit-identical statistics (:mod:`bayesdecide.data.summation`).
    """

    ds: xr.Dataset
    spec: ExperimentSpec
    dropped: dict[str, int] = field(default_factory=dict)
    fingerprint: str = ""

    @property
    def factors(self) -> list[str]:
        return list(self.spec.groups)

    @property
    def n_units(self) -> int:
        """Units entering the statistics, every arm."""
        return int(self.ds["n"].sum())

    def means(self) -> xr.DataArray:
        """Outcome means per cell x arm, in the outcome's units (NaN in an arm without units)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.ds["sum_y"] / self.ds["n"]

    def covariance(self) -> xr.DataArray:
        """Sample covariance between outcomes per cell x arm (divisor n - 1; NaN below 2 units)."""
        n = self.ds["n"]
        mean = self.means()
        with np.errstate(invalid="ignore", divide="ignore"):
            outer = mean * mean.rename(outcome="outcome_b")
            return (self.ds["sum_yy"] - n * outer) / (n - 1)

    def to_frame(self) -> pd.DataFrame:
        """One row per cell x arm with n and the outcome means (a table a person reads)."""
        means = self.means().to_dataframe(name="mean")["mean"].unstack("outcome")
        n = self.ds["n"].to_dataframe(name="n")["n"]
        return pd.concat([n, means], axis=1)


def cell_stats(
    data: Any,
    spec: ExperimentSpec,
    *,
    drop_missing_outcomes: bool = False,
    single_arm_cells: str = "error",
    partial_levels: bool = False,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> CellStats:
    """Validate ``data`` against ``spec`` and aggregate it to per cell x arm statistics.

    Parameters
    ----------
    data:
        A pandas or polars DataFrame, a pyarrow Table, a DuckDB relation, a path or glob of Parquet
        or CSV files (read by DuckDB, out of core), or a Spark DataFrame (aggregated by Spark SQL).
    spec:
        The experiment spec naming treatment, outcomes, grouping factors and covariates.
    drop_missing_outcomes:
        Opt in to dropping rows whose outcomes are missing or non-finite; the count dropped per arm
        is recorded in ``CellStats.dropped`` and warned about. By default such rows are an error.
    single_arm_cells:
        ``"error"`` (default) rejects cells where an arm has no units; ``"keep"`` keeps them
        (with a warning) so they inform baselines and population shares while the effects they
        lack are predicted from the hierarchy.
    partial_levels:
        ``True``: a declared level (``spec.levels``) may have no rows, e.g. the rollout of a
        policy that treats some risk bands only; labels outside the declared levels are still
        errors. By default every declared level needs rows.
    connection:
        DuckDB connection to use (default: a fresh in-memory one).

    Raises
    ------
    DataValidationError
        For missing or mistyped columns and bad values; the message names the column and the fix.
        Checked: missing or mistyped columns, no rows, treatment values outside the spec's arms
        (or an arm without rows),
        missing or non-finite values, binary outcomes outside {0, 1}, negative or fractional
        counts, constant outcomes or covariates, magnitudes beyond 1e15, missing or duplicated
        unit ids, group labels outside the spec's declared levels, declared levels without rows,
        and cells without units in some arm.

    Notes
    -----
    The data are read where they live in at most three passes: a profile of the numeric columns
    (answered from Parquet metadata when the file has statistics), a count of distinct unit ids
    (when the spec has ``unit_id``; a bitmap for integer ids in DuckDB), and the one GROUP BY.
    Every sum is an exact integer sum on a fixed binary grid (:mod:`bayesdecide.data.summation`),
    so the same rows give bit-identical statistics and the same :attr:`CellStats.fingerprint` in
    any order and under any thread count.
    """
    source = open_source(data, connection)
    check_frame_columns(getattr(source, "frame", None), spec)
    column_types = source.column_types()
    check_schema(spec, column_types, source)
    check_empty_levels(source.empty_categories(), spec.groups)
    profile = Profile.from_frame(
        spec,
        source.run(
            profile_sql(spec, "{table}", source.dialect, complete_only=drop_missing_outcomes)
        ),
        column_types,
    )
    check_rows(profile, source, drop_missing_outcomes=drop_missing_outcomes)
    check_profile(profile, source)
    if spec.unit_id:
        check_unit_ids(spec, profile, source, column_types[spec.unit_id])
    exponents = exponents_for(
        stat_terms(spec),
        profile.n,
        profile.magnitudes(),
        [c.integer for c in profile.columns],
    )
    # count missing and off-support values only where the profile cannot rule them out (all of
    # them when rows may be dropped: the rows dropped are counted per cell and arm)
    finite_checks, support_checks = (
        (None, None) if drop_missing_outcomes else profile.checks_needed(spec)
    )
    sql = aggregation_sql(
        spec,
        "{table}",
        source.dialect,
        drop_missing_outcomes=drop_missing_outcomes,
        exponents=exponents,
        column_types=column_types,
        finite_checks=finite_checks,
        support_checks=support_checks,
    )
    agg = source.run(sql)
    arm_index = check_aggregate(
        spec,
        agg,
        column_types,
        drop_missing_outcomes=drop_missing_outcomes,
        single_arm_cells=single_arm_cells,
        partial_levels=partial_levels,
    )
    agg = agg.assign(_arm=arm_index.astype(int).to_numpy())
    dropped: dict[str, int] = {}
    if drop_missing_outcomes:
        lost = (agg["n"] - agg["n_used"]).groupby(agg["_arm"]).sum()
        labels = spec.arm_labels
        dropped = {labels[i]: int(lost.get(i, 0)) for i in range(len(labels))}
        if sum(dropped.values()):
            warnings.warn(f"dropped rows with missing outcomes, by arm: {dropped}", stacklevel=2)
    ds = _to_dataset(spec, agg, exponents)
    _check_finite_sums(ds)
    ds.attrs["source"] = source.description
    fingerprint = fingerprint_from_aggregate(spec, agg, source.dialect)
    return CellStats(ds=ds, spec=spec, dropped=dropped, fingerprint=fingerprint)


def _check_finite_sums(ds: xr.Dataset) -> None:
    """Raise if a sum overflowed (the magnitude checks should make this impossible)."""
    columns = {
        "sum_y": ("outcome",),
        "sum_yy": ("outcome", "outcome_b"),
        "sum_x": ("covariate",),
        "sum_xx": ("covariate", "covariate_b"),
        "sum_xy": ("covariate", "outcome"),
    }
    for var, dims in columns.items():
        bad = ~np.isfinite(ds[var].values)
        if bad.any():
            index = np.argwhere(bad)[0]
            names = [str(ds[d].values[index[2 + j]]) for j, d in enumerate(dims)]
            raise DataValidationError(
                f"the sums of {' x '.join(repr(n) for n in names)} overflowed in cell "
                f"{ds['cell'].values[index[0]]!r}; the column(s) hold values too large for sums of "
                "squares: rescale them (e.g. to thousands)"
            )


def _to_dataset(
    spec: ExperimentSpec, agg: pd.DataFrame, exponents: dict[str, int | None] | None = None
) -> xr.Dataset:
    keys = [f"g_{i}" for i in range(len(spec.groups))]
    if keys:
        agg = agg.sort_values([*keys, "_arm"], kind="stable")
        labels = agg[keys].astype(str).drop_duplicates()
        cell_labels = labels.agg(CELL_SEPARATOR.join, axis=1).tolist()
        position = {tuple(row): i for i, row in enumerate(labels.itertuples(index=False))}
        cell_idx = np.array(
            [position[tuple(r)] for r in agg[keys].astype(str).itertuples(index=False)]
        )
    else:
        labels = pd.DataFrame(index=[0])
        cell_labels = ["all"]
        cell_idx = np.zeros(len(agg), dtype=int)
    arm_idx = agg["_arm"].to_numpy()
    n_cells, k, p = len(cell_labels), len(spec.outcomes), len(spec.covariates)
    n_arms = len(spec.arms)
    names = stat_names(spec)

    exponents = exponents or {}

    def block(cols: list[str], shape: tuple[int, ...]) -> np.ndarray:
        out = np.zeros((n_cells, n_arms, len(cols)))
        for j, col in enumerate(cols):
            exponent = exponents.get(col)
            if exponent is None:  # a plain sum (exact for integer terms)
                values = pd.to_numeric(agg[col]).astype(np.float64).fillna(0.0).to_numpy()
                np.add.at(out[..., j], (cell_idx, arm_idx), values)
                continue
            # exact integer sums in units of 2**exponent, added exactly, rounded once
            totals: dict[tuple[int, int], int] = {}
            for c, a, v in zip(cell_idx, arm_idx, agg[col], strict=True):
                if v is not None and not (isinstance(v, float) and np.isnan(v)):
                    totals[(c, a)] = totals.get((c, a), 0) + int(v)
            for (c, a), total in totals.items():
                out[c, a, j] = from_integer_sum(total, exponent)
        return out.reshape(n_cells, n_arms, *shape)

    def symmetric(cols: list[str], size: int) -> np.ndarray:
        packed = block(cols, (len(cols),))
        out = np.zeros((n_cells, n_arms, size, size))
        iu = np.triu_indices(size)
        out[..., iu[0], iu[1]] = packed
        out[..., iu[1], iu[0]] = packed
        return out

    n = np.zeros((n_cells, n_arms))
    np.add.at(n, (cell_idx, arm_idx), agg["n_used"].to_numpy(dtype=np.float64))
    outcomes, covariates = spec.outcome_names, list(spec.covariates)
    coords: dict[str, Any] = {
        "cell": cell_labels,
        "arm": list(spec.arm_labels),
        "outcome": outcomes,
        "outcome_b": outcomes,
        "covariate": covariates,
        "covariate_b": covariates,
        "kind": ("outcome", [o.kind.value for o in spec.outcomes]),
    }
    for i, g in enumerate(spec.groups):
        coords[g] = ("cell", labels[f"g_{i}"].astype(str).to_numpy())
    ds = xr.Dataset(
        {
            "n": (("cell", "arm"), n),
            "sum_y": (("cell", "arm", "outcome"), block(names["sum_y"], (k,))),
            "sum_yy": (("cell", "arm", "outcome", "outcome_b"), symmetric(names["sum_yy"], k)),
            "sum_x": (("cell", "arm", "covariate"), block(names["sum_x"], (p,))),
            "sum_xx": (("cell", "arm", "covariate", "covariate_b"), symmetric(names["sum_xx"], p)),
            "sum_xy": (("cell", "arm", "covariate", "outcome"), block(names["sum_xy"], (p, k))),
        },
        coords=coords,
        attrs={"factors": list(spec.groups), "treatment": spec.treatment},
    )
    return ds
