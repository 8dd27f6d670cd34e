"""Validation of experiment data against its spec. Every error names the column and the fix.

Checks happen in four places, each where it is cheapest:

- the schema (columns present, types usable) before any row is read; a pandas object column that
  mixes text into numbers is found in the frame itself;
- the column profile of :func:`bayesdecide.data.sql.profile_sql` (rows, minimum and maximum of
  every outcome and covariate): no rows, outcomes or covariates that are constant, values too large
  (or too small) for sums of squares, spreads lost to rounding;
- the unit ids, in SQL: missing ids and ids on more than one row;
- the per cell x arm aggregate of :func:`bayesdecide.data.sql.aggregation_sql` (treatment arms,
  missing values, supports, declared group levels, cells with one arm).

Nothing is dropped unless the caller opts in.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesdecide.data.spec import ExperimentSpec, OutcomeKind
from bayesdecide.data.sql import (
    DUCKDB,
    distinct_ids_sql,
    duplicate_examples_sql,
    duplicate_ids_sql,
    extreme_values_sql,
    is_integer_type,
    numeric_columns,
    stat_names,
    text_counts_sql,
    text_values_sql,
)
from bayesdecide.data.summation import MAX_ABS_VALUE, MIN_ABS_VALUE
from bayesdecide.errors import DataValidationError

if TYPE_CHECKING:
    from bayesdecide.data.sources import Source

#: Relative spread below which a column's variance is lost to rounding in sums of squares.
MIN_RELATIVE_SPREAD = 1e-8
#: How many offending values or ids an error message lists.
EXAMPLES = 5
# Largest id range (max - min + 1) checked for duplicates with a bitmap (32 MiB) instead of a
# hash table of the ids.
_BITMAP_IDS = 2**28

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


def check_schema(
    spec: ExperimentSpec, column_types: dict[str, str], source: Source | None = None
) -> None:
    """Raise if a spec column is missing or has a type its role cannot use.

    With ``source``, a numeric column read as text is explained: no rows at all (a CSV file with
    only its header reads every column as text), or how many values are not numbers, and which.
    """
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
                if source is not None and not source.has_rows():
                    raise DataValidationError(_no_rows(source))
                detail = _text_detail(source, col) if source is not None else ""
                raise DataValidationError(
                    f"{role} column {col!r} has type {column_types[col]}, not a number{detail}; "
                    f"convert it to a numeric type (e.g. pandas: df[{col!r}] = "
                    f"pd.to_numeric(df[{col!r}]))"
                )
    for col in [spec.treatment, *spec.groups]:
        if _is_nested(column_types[col]):
            raise DataValidationError(
                f"column {col!r} has type {column_types[col]}; treatment and group columns must "
                "hold scalar labels (strings or integers)"
            )


def _no_rows(source: Source) -> str:
    return (
        f"the data has no rows ({source.description}); check the filter or the file path (a CSV "
        "file with only its header has no rows)"
    )


def _text_detail(source: Source, col: str) -> str:
    """``: 3 of 400 values are not numbers, e.g. 'abc' (2 rows)`` (empty if it cannot be told)."""
    try:
        counts = source.run(text_counts_sql(col, "{table}", source.dialect)).iloc[0]
        n_text = int(counts["n_text"] or 0)
        if int(counts["non_null"]) == 0:
            return f": every one of its {int(counts['n']):,} values is missing"
        if n_text == 0:
            return ""
        examples = source.run(text_values_sql(col, "{table}", source.dialect, EXAMPLES))
    except Exception:  # noqa: BLE001 - a column the probe cannot read: the short message will do
        return ""
    listed = ", ".join(
        f"{v!r} ({_rows(int(r))})" for v, r in zip(examples["example"], examples["n_rows"])
    )
    non_null = int(counts["non_null"])
    return f": {_not_numbers(n_text, non_null)}, e.g. {listed}"


def check_frame_columns(frame: Any, spec: ExperimentSpec) -> None:
    """Raise if a pandas object column of an outcome or covariate holds values that are not numbers.

    DuckDB guesses an object column's type from a sample of its values and then fails on the first
    value that does not fit, without naming the column; this finds those values first.
    """
    if not isinstance(frame, pd.DataFrame):
        return
    for role, cols in (("outcome", spec.outcome_names), ("covariate", list(spec.covariates))):
        for col in cols:
            if col not in frame.columns or frame[col].dtype != object:
                continue
            values = frame[col]
            numbers = pd.to_numeric(values, errors="coerce")
            bad = values[numbers.isna() & values.notna()]
            if bad.empty:
                continue
            counts = bad.astype(str).value_counts()
            listed = ", ".join(f"{v!r} ({_rows(int(r))})" for v, r in counts.head(EXAMPLES).items())
            raise DataValidationError(
                f"{role} column {col!r} holds text: "
                f"{_not_numbers(len(bad), int(values.notna().sum()))}, e.g. {listed}; fix them at "
                "the source, or "
                f"convert explicitly: df[{col!r}] = pd.to_numeric(df[{col!r}], errors='coerce') "
                "turns them into missing values, which are then reported (or dropped with "
                "drop_missing_outcomes=True)"
            )


@dataclass(frozen=True)
class ColumnProfile:
    """Count and range of one numeric column (from :func:`bayesdecide.data.sql.profile_sql`)."""

    name: str
    role: str
    count: int
    low: float
    high: float
    integer: bool

    @property
    def max_abs(self) -> float:
        """Largest magnitude (NaN when unknown, inf when a value is infinite)."""
        return max(abs(self.low), abs(self.high)) if self.count else 0.0


@dataclass(frozen=True)
class Profile:
    """Rows and numeric column ranges of the data, read before the aggregation."""

    n: int
    n_complete: int
    columns: tuple[ColumnProfile, ...]
    id_count: int | None
    id_low: Any
    id_high: Any

    @classmethod
    def from_frame(
        cls, spec: ExperimentSpec, row: pd.DataFrame, column_types: dict[str, str]
    ) -> Profile:
        r = row.iloc[0]
        roles = ["outcome"] * len(spec.outcomes) + ["covariate"] * len(spec.covariates)
        columns = []
        for i, (col, role) in enumerate(zip(numeric_columns(spec), roles, strict=True)):
            columns.append(
                ColumnProfile(
                    name=col,
                    role=role,
                    count=int(r[f"cnt_{i}"]),
                    low=_as_float(r[f"min_{i}"]),
                    high=_as_float(r[f"max_{i}"]),
                    integer=is_integer_type(column_types.get(col, "")),
                )
            )
        n = int(r["n"])
        return cls(
            n=n,
            n_complete=int(r["n_complete"]) if "n_complete" in r.index else n,
            columns=tuple(columns),
            id_count=int(r["id_count"]) if "id_count" in r.index else None,
            id_low=r.get("id_min"),
            id_high=r.get("id_max"),
        )

    def magnitudes(self) -> list[float]:
        """Largest magnitude of each numeric column over the rows that are summed; NaN for a
        column with missing or non-finite values there (it is summed plainly, and rejected)."""
        return [
            c.max_abs
            if c.count == self.n_complete and math.isfinite(c.low) and math.isfinite(c.high)
            else math.nan
            for c in self.columns
        ]

    def checks_needed(self, spec: ExperimentSpec) -> tuple[set[int], set[int]]:
        """Numeric columns (indices) whose non-finite values, and outcomes whose values outside
        their support, the aggregation must still count: those the profile cannot clear.

        A column with as many values as rows and a finite minimum and maximum has no missing or
        non-finite value (a NaN is the largest value in DuckDB and Spark); an integer column
        within [0, 1] (binary) or >= 0 (count) is within its support.
        """
        finite = {
            i
            for i, c in enumerate(self.columns)
            if not (c.count == self.n and math.isfinite(c.low) and math.isfinite(c.high))
        }
        support = set()
        for i, outcome in enumerate(spec.outcomes):
            c = self.columns[i]
            if outcome.kind is OutcomeKind.BINARY:
                proven = c.integer and i not in finite and c.low >= 0 and c.high <= 1
            elif outcome.kind is OutcomeKind.COUNT:
                proven = c.integer and i not in finite and c.low >= 0
            else:
                proven = True
            if not proven:
                support.add(i)
        return finite, support


def _as_float(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _not_numbers(bad: int, total: int) -> str:
    verb = "is not a number" if bad == 1 else "are not numbers"
    return f"{bad:,} of its {total:,} values {verb}"


def _value(value: Any) -> str:
    """An id or label as a person reads it: integers bare, anything else quoted."""
    if isinstance(value, bool | np.bool_):
        return repr(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return repr(str(value))


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"


def check_rows(profile: Profile, source: Source, *, drop_missing_outcomes: bool) -> None:
    """Raise if the data (or, dropping missing outcomes, what is left of it) has no rows."""
    if profile.n == 0:
        raise DataValidationError(_no_rows(source))
    if drop_missing_outcomes and profile.n_complete == 0:
        raise DataValidationError(
            f"every one of the {profile.n:,} rows has a missing or non-finite outcome, so "
            "drop_missing_outcomes=True leaves no rows; fix the outcomes at the source"
        )


def check_profile(profile: Profile, source: Source) -> None:
    """Raise for an outcome or covariate whose values carry no usable information.

    - a value beyond ``MAX_ABS_VALUE`` (1e15) in magnitude: its square (1e30) would overflow or
      swamp the sums of squares of every ordinary value (sentinels such as 1e300 or unit errors);
    - a column whose largest magnitude is below ``MIN_ABS_VALUE`` (1e-100) but not zero;
    - a constant column (every row of both arms holds the same value): an outcome carries no
      information about the effect, a covariate adjusts nothing (and makes the adjustment singular);
    - a spread below ``MIN_RELATIVE_SPREAD`` (1e-8) of the magnitude: sums of squares lose it all to
      rounding.

    Columns with missing values are left to the missing-value checks (with
    ``drop_missing_outcomes`` the profile covers the rows that are kept).
    """
    for col in profile.columns:
        if col.count != profile.n_complete or not (
            math.isfinite(col.low) and math.isfinite(col.high)
        ):
            continue  # missing or non-finite values: reported by check_aggregate
        name, role, m = col.name, col.role, col.max_abs
        if m > MAX_ABS_VALUE:
            ext = source.run(extreme_values_sql(name, "{table}", source.dialect, MAX_ABS_VALUE))
            rows = int(ext["n_rows"].iloc[0])
            low, high = _as_float(ext["low"].iloc[0]), _as_float(ext["high"].iloc[0])
            extreme = high if abs(high) >= abs(low) else low
            raise DataValidationError(
                f"{role} column {name!r} has {_rows(rows)} with a value larger than "
                f"{MAX_ABS_VALUE:.0e} in magnitude (the most extreme: {extreme:.6g}); values this "
                "large are sentinels or unit errors, and their squares overflow or swamp the sums "
                "of squares that the effects' variances come from. Fix or remove those rows, or "
                "rescale the column (e.g. to thousands)"
            )
        if 0 < m < MIN_ABS_VALUE:
            raise DataValidationError(
                f"{role} column {name!r} has no value larger than {MIN_ABS_VALUE:g} in magnitude "
                f"(the largest is {m:.3g}); rescale it (e.g. multiply it by 1e6) so that its "
                "products do not underflow"
            )
        if col.low == col.high:
            if role == "outcome":
                raise DataValidationError(
                    f"outcome column {name!r} is constant ({_fmt(col.low)}) in every row of both "
                    "arms: it carries no information about the effect; remove it from the spec's "
                    "outcomes"
                )
            raise DataValidationError(
                f"covariate column {name!r} is constant ({_fmt(col.low)}) in every row: it cannot "
                "adjust anything; remove it from the spec's covariates"
            )
        if col.high - col.low <= MIN_RELATIVE_SPREAD * m:
            raise DataValidationError(
                f"{role} column {name!r} only varies between {col.low!r} and {col.high!r}, less "
                f"than {MIN_RELATIVE_SPREAD:g} of its magnitude: sums of squares lose that spread "
                f"to rounding. Subtract a reference value first (e.g. df[{name!r}] - "
                f"{_fmt(col.low)}) or remove the column from the spec"
            )


def check_unit_ids(spec: ExperimentSpec, profile: Profile, source: Source, id_type: str) -> None:
    """Raise if a unit id is missing or occurs on more than one row (counted in SQL)."""
    if not spec.unit_id or profile.id_count is None:
        return
    col = spec.unit_id
    missing = profile.n - profile.id_count
    if missing:
        raise DataValidationError(
            f"unit_id column {col!r} has {missing:,} missing values; every row needs the id of "
            "its randomized unit: fix them at the source, or remove unit_id from the spec"
        )
    low, high = profile.id_low, profile.id_high
    bitmap = (
        source.dialect == DUCKDB
        and is_integer_type(id_type)
        and id_type.upper() not in ("HUGEINT", "UHUGEINT", "UBIGINT", "BOOLEAN", "BOOL")
        and low is not None
        and high is not None
        and not (isinstance(low, float) and math.isnan(low))
        and int(high) - int(low) + 1 <= min(_BITMAP_IDS, max(2**16, 64 * profile.n))
    )
    if bitmap:
        distinct = source.run(distinct_ids_sql(spec, "{table}", int(low), int(high)))
        if int(distinct["distinct_ids"].iloc[0]) == profile.id_count:
            return
    dups = source.run(duplicate_ids_sql(spec, "{table}", source.dialect)).iloc[0]
    n_ids = int(dups["n_ids"])
    if n_ids == 0:
        return
    n_rows = int(dups["n_rows"])
    examples = source.run(duplicate_examples_sql(spec, "{table}", source.dialect, EXAMPLES))
    listed = ", ".join(
        f"{_value(i)} ({_rows(int(r))})" for i, r in zip(examples["id"], examples["n_rows"])
    )
    distinct_ids = profile.id_count - n_rows + n_ids
    raise DataValidationError(
        f"unit_id column {col!r} has {n_ids:,} id(s) on more than one row: the data has "
        f"{profile.n:,} rows but {distinct_ids:,} distinct ids ({n_rows:,} rows share an id), "
        f"e.g. {listed}. Each randomized unit must appear once: remove the duplicated rows (e.g. "
        f"pandas: df.drop_duplicates({col!r})), aggregate them to one row per unit, or check the "
        "join that produced the data"
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
    """Index of the arm that ``value`` equals (0 control, then the treatment arms in the spec's
    order), or None."""
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
    partial_levels: bool = False,
) -> pd.Series:
    """Check the per cell x arm aggregate; return the arm index of each row (0 control, then the
    treatment arms in the spec's order).

    Raises :class:`DataValidationError` for no rows, missing or unknown treatment values, an arm
    without rows, missing group labels, missing or non-finite outcomes
    (unless ``drop_missing_outcomes``) or covariates, binary outcomes outside {0, 1}, negative or
    fractional counts, group labels outside the spec's declared levels (and declared levels
    without rows), and cells without units in some arm.
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
            per_arm = bad.groupby(arm_index.map(dict(enumerate(spec.arm_labels)))).sum().to_dict()
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
    check_levels(spec, agg, partial=partial_levels)
    _check_both_arms(spec, agg, arm_index, single_arm_cells)
    return arm_index


def _same_label(label: str, level: Any) -> bool:
    if label == str(level):
        return True
    try:
        return float(label) == float(level)
    except (TypeError, ValueError):
        return False


def _suggest(label: str, levels: Sequence[str]) -> str | None:
    """A declared level that ``label`` probably meant (case, spaces, close spelling)."""
    folded = {" ".join(lv.split()).casefold(): lv for lv in levels}
    key = " ".join(label.split()).casefold()
    if key in folded:
        return folded[key]
    close = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.75)
    return folded[close[0]] if close else None


def check_levels(spec: ExperimentSpec, agg: pd.DataFrame, *, partial: bool = False) -> None:
    """Raise if a group column has labels outside its declared levels, or (unless ``partial``) a
    declared level has no rows (only for factors with ``levels`` in the spec)."""
    for i, col in enumerate(spec.groups):
        declared = spec.declared_levels(col)
        if declared is None:
            continue
        rows = agg.groupby(agg[f"g_{i}"].astype(str))["n"].sum()
        unexpected = {
            label: int(n)
            for label, n in rows.items()
            if not any(_same_label(label, lv) for lv in declared)
        }
        names = [str(lv) for lv in declared]
        if unexpected:
            parts, fixes = [], {}
            for label, n in sorted(unexpected.items(), key=lambda kv: (-kv[1], kv[0])):
                guess = _suggest(label, names)
                hint = f"; did you mean {guess!r}?" if guess else ""
                parts.append(f"{label!r} ({_rows(n)}{hint})")
                if guess:
                    fixes[label] = guess
            recode = f" (e.g. df[{col!r}] = df[{col!r}].replace({fixes!r}))" if fixes else ""
            raise DataValidationError(
                f"group column {col!r} has {len(unexpected)} value(s) that are not among its "
                f"declared levels {names}: {', '.join(parts[:10])}. Recode them to declared "
                f"levels{recode}, or add them to the spec's levels"
            )
        empty = [lv for lv in declared if not any(_same_label(label, lv) for label in rows.index)]
        if empty and not partial:
            raise DataValidationError(
                f"group column {col!r} has no rows for declared level(s) {[str(v) for v in empty]}; "
                "supply data for them or remove them from the spec's levels"
            )


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
        if not spec.multi_arm:
            raise DataValidationError(
                f"treatment column {col!r} has values {others} besides the arms "
                f"{list(spec.arms)}; a two-arm experiment needs exactly two values: recode the "
                "column or set spec.arms (control first, then every treatment arm)"
            )
        raise DataValidationError(
            f"treatment column {col!r} has values {others} besides the arms {list(spec.arms)}; "
            "recode the column, or list every arm in spec.arms (control first)"
        )
    present = set(arm_index.astype(int))
    if present != set(range(len(spec.arms))):
        absent = [spec.arms[i] for i in range(len(spec.arms)) if i not in present]
        needs = "both arms" if not spec.multi_arm else "rows in every arm"
        raise DataValidationError(
            f"treatment column {col!r} has no rows for arm(s) {absent}; the experiment needs "
            f"{needs} {list(spec.arms)}: check the filter, or remove the arm from spec.arms"
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
    n_arms = len(spec.arms)
    frame = agg.assign(_arm=arm_index.astype(int))
    arms_per_cell = frame.groupby(keys)["_arm"].agg(lambda a: frozenset(a.tolist()))
    one_arm = arms_per_cell[arms_per_cell.map(len) < n_arms]
    if not one_arm.empty:
        cells = [" | ".join(map(str, k if isinstance(k, tuple) else (k,))) for k in one_arm.index]
        if spec.multi_arm:
            labels = spec.arm_labels
            lacking = [
                f"{c} (no {', '.join(labels[a] for a in range(n_arms) if a not in present)})"
                for c, present in zip(cells, one_arm, strict=True)
            ]
            if single_arm_cells == "keep":
                warnings.warn(
                    f"kept {len(cells)} cell(s) without units in some arm ({lacking[:10]}): their "
                    "missing arms' effects come from the hierarchy",
                    stacklevel=3,
                )
                return
            raise DataValidationError(
                f"{len(cells)} cell(s) of {list(spec.groups)} have no units in some arm of "
                f"{spec.treatment!r}: {lacking[:10]}; an effect needs the arm and the control in "
                "the cell: merge those levels into a neighbouring level, drop the cells "
                "explicitly, or pass single_arm_cells='keep' to let the hierarchy predict the "
                "missing effects"
            )
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
