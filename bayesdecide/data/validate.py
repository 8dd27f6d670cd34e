"""Validation of experiment data against its spec. Every error names the column and the fix.

Checks happen in two places: the schema (columns present, types usable) before any row is read, and
the per cell x arm aggregate (missing values, supports, arms, empty cells) after the single pass of
:func:`bayesdecide.data.sql.aggregation_sql`. Nothing is dropped unless the caller opts in.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayesdecide.data.spec import ExperimentSpec, OutcomeKind
from bayesdecide.data.sql import stat_names
from bayesdecide.errors import DataValidationError

_NUMERIC_PREFIXES = (
    "DOUBLE",
    "FLOAT",
    "REAL",
    "DECIMAL",
    "NUMERIC",
    "INT",
    "BIGINT",
    "SMALLINT",
    "TINYINT",
    "HUGEINT",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
    "UHUGEINT",
    "INTEGER",
    "LONG",
    "SHORT",
    "BYTE",
    "BOOLEAN",
)
_NESTED_PREFIXES = ("STRUCT", "MAP", "ARRAY", "LIST", "UNION", "BLOB", "BINARY")
_NONFINITE_LABELS = {"nan", "inf", "-inf", "infinity", "-infinity"}


def _is_numeric(sql_type: str) -> bool:
    return sql_type.upper().startswith(_NUMERIC_PREFIXES) and not sql_type.upper().endswith("[]")


def _is_nested(sql_type: str) -> bool:
    t = sql_type.upper()
    return t.startswith(_NESTED_PREFIXES) or t.endswith("[]")


def check_schema(spec: ExperimentSpec, column_types: dict[str, str]) -> None:
    """Raise if a spec column is missing or has a type its role cannot use."""
    available = list(column_types)
    missing = [c for c in spec.columns if c not in column_types]
    if missing:
        hints = []
        for col in missing:
            close = difflib.get_close_matches(col, available, n=1)
            hints.append(f"{col!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise DataValidationError(
            f"missing column(s) {', '.join(hints)}; the data has {available}. Rename the data "
            "columns or change the spec to match."
        )
    for role, cols in (("outcome", spec.outcome_names), ("covariate", list(spec.covariates))):
        for col in cols:
            if not _is_numeric(column_types[col]):
                raise DataValidationError(
                    f"{role} column {col!r} has type {column_types[col]}, not a number; convert it "
                    f"to a numeric type (e.g. pandas: df[{col!r}] = pd.to_numeric(df[{col!r}]))"
                )
    for col in [spec.treatment, *spec.groups]:
        if _is_nested(column_types[col]):
            raise DataValidationError(
                f"column {col!r} has type {column_types[col]}; treatment and group columns must "
                "hold scalar labels (strings or integers)"
            )


def check_empty_levels(empty: dict[str, list[str]], groups: Iterable[str]) -> None:
    """Raise if a categorical group column declares levels that have no rows."""
    for col in groups:
        if col in empty:
            raise DataValidationError(
                f"group column {col!r} declares level(s) {empty[col]} with no rows; remove the "
                f"unused categories (pandas: df[{col!r}] = df[{col!r}].cat.remove_unused_categories()) "
                "or supply data for them"
            )


def match_arm(value: Any, arms: Sequence[Any]) -> int | None:
    """Index of the arm that ``value`` equals (0 control, 1 treatment), or None."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    for i, arm in enumerate(arms):
        if isinstance(arm, str) or isinstance(value, str):
            if str(value) == str(arm):
                return i
        else:
            try:
                if float(value) == float(arm):
                    return i
            except (TypeError, ValueError):
                continue
    return None


def check_aggregate(
    spec: ExperimentSpec,
    agg: pd.DataFrame,
    column_types: dict[str, str],
    *,
    drop_missing_outcomes: bool,
    single_arm_cells: str = "error",
) -> pd.Series:
    """Check the per cell x arm aggregate; return the arm index of each row (0 or 1).

    Raises :class:`DataValidationError` for no rows, missing or unknown treatment values, a
    treatment that is not exactly two arms, missing group labels, missing or non-finite outcomes
    (unless ``drop_missing_outcomes``) or covariates, binary outcomes outside {0, 1}, negative or
    fractional counts, and cells with only one arm.
    """
    if agg.empty or int(agg["n"].sum()) == 0:
        raise DataValidationError("the data has no rows; check the filter or the file path")
    names = stat_names(spec)
    arm_index = agg["arm_value"].map(lambda v: match_arm(v, spec.arms))
    _check_treatment(spec, agg, arm_index)
    _check_groups(spec, agg, column_types)
    for i, outcome in enumerate(spec.outcomes):
        bad = agg[names["bad_y"][i]].astype(np.int64)
        if bad.sum() > 0 and not drop_missing_outcomes:
            per_arm = bad.groupby(arm_index.map({0: "control", 1: "treatment"})).sum().to_dict()
            raise DataValidationError(
                f"outcome column {outcome.name!r} has {int(bad.sum())} missing or non-finite "
                f"values (NaN, inf or NULL) by arm {per_arm}; fix them at the source, or pass "
                "drop_missing_outcomes=True to drop those rows (the count dropped per arm is "
                "reported)"
            )
        off = int(agg[names["off_support"][i]].sum())
        if off and outcome.kind is OutcomeKind.BINARY:
            raise DataValidationError(
                f"binary outcome column {outcome.name!r} has {off} values outside {{0, 1}}; recode "
                "it to 0/1 or declare its kind as 'continuous'"
            )
        if off and outcome.kind is OutcomeKind.COUNT:
            raise DataValidationError(
                f"count outcome column {outcome.name!r} has {off} negative or non-integer values; "
                "counts must be whole numbers >= 0 (or declare its kind as 'continuous')"
            )
    for i, col in enumerate(spec.covariates):
        bad_x = int(agg[names["bad_x"][i]].sum())
        if bad_x:
            raise DataValidationError(
                f"covariate column {col!r} has {bad_x} missing or non-finite values; impute them "
                "explicitly before the analysis or remove the column from the covariates"
            )
    _check_both_arms(spec, agg, arm_index, single_arm_cells)
    return arm_index


def _check_treatment(spec: ExperimentSpec, agg: pd.DataFrame, arm_index: pd.Series) -> None:
    col = spec.treatment
    unmatched = agg.loc[arm_index.isna()]
    if not unmatched.empty:
        values = unmatched["arm_value"]
        n_missing = int(unmatched.loc[values.map(_is_missing), "n"].sum())
        if n_missing:
            raise DataValidationError(
                f"treatment column {col!r} has {n_missing} missing values; every unit needs an "
                f"assignment in {list(spec.arms)}"
            )
        others = sorted({str(v) for v in values})
        raise DataValidationError(
            f"treatment column {col!r} has values {others} besides the arms {list(spec.arms)}; a "
            "two-arm experiment needs exactly two values: recode the column or set spec.arms"
        )
    present = set(arm_index.astype(int))
    if present != {0, 1}:
        absent = [spec.arms[i] for i in (0, 1) if i not in present]
        raise DataValidationError(
            f"treatment column {col!r} has no rows for arm(s) {absent}; a two-arm experiment "
            f"needs both arms {list(spec.arms)}"
        )


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _check_groups(spec: ExperimentSpec, agg: pd.DataFrame, column_types: dict[str, str]) -> None:
    for i, col in enumerate(spec.groups):
        labels = agg[f"g_{i}"]
        missing = labels.map(_is_missing)
        if column_types[col].upper().startswith(("DOUBLE", "FLOAT", "REAL")):
            missing |= labels.astype(str).str.lower().isin(_NONFINITE_LABELS)
        if missing.any():
            raise DataValidationError(
                f"group column {col!r} has {int(agg.loc[missing, 'n'].sum())} missing (NULL/NaN) "
                "labels; give those rows a level (e.g. 'Unknown') or remove them explicitly "
                "before the analysis"
            )


def _check_both_arms(
    spec: ExperimentSpec, agg: pd.DataFrame, arm_index: pd.Series, single_arm_cells: str
) -> None:
    if single_arm_cells not in ("error", "keep"):
        raise ValueError(f"single_arm_cells={single_arm_cells!r}: use 'error' or 'keep'")
    if not spec.groups:
        return
    keys = [f"g_{i}" for i in range(len(spec.groups))]
    arms_per_cell = agg.assign(_arm=arm_index.astype(int)).groupby(keys)["_arm"].nunique()
    one_arm = arms_per_cell[arms_per_cell < 2]
    if not one_arm.empty:
        cells = [" | ".join(map(str, k if isinstance(k, tuple) else (k,))) for k in one_arm.index]
        if single_arm_cells == "keep":
            warnings.warn(
                f"kept {len(cells)} cell(s) with only one arm ({cells[:10]}): they inform the "
                "control baselines only, and their effects come from the hierarchy",
                stacklevel=3,
            )
            return
        raise DataValidationError(
            f"{len(cells)} cell(s) of {list(spec.groups)} have only one arm of {spec.treatment!r}: "
            f"{cells[:10]}; an effect needs both arms in every cell: merge those levels into a "
            "neighbouring level, drop the cells explicitly, or pass single_arm_cells='keep' to let "
            "the hierarchy predict their effects"
        )
