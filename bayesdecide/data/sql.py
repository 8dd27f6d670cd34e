"""The queries behind :func:`bayesdecide.cell_stats`, written as portable SQL.

The same query text runs on DuckDB (pandas/polars frames, relations, Parquet/CSV files) and on
Spark SQL; only identifier quoting and the row hash differ. The work is one GROUP BY over the rows
(:func:`aggregation_sql`): per cell x arm it computes the sufficient statistics, the counts that
validation needs (missing/non-finite values, values outside an outcome's support) and the data
fingerprint. Before it, :func:`profile_sql` reads each numeric column's count, minimum and maximum
(answered from Parquet metadata where the file has statistics), which fix the integer grids that
make the sums independent of the order of the rows (:mod:`bayesdecide.data.summation`). Duplicate
unit ids are counted in SQL too (:func:`distinct_ids_sql`, :func:`duplicate_ids_sql`), so nothing
but small tables reaches Python.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from bayesdecide.data.spec import ExperimentSpec, OutcomeKind
from bayesdecide.data.summation import scale_constant

_FINITE_BOUND = "1.7976931348623157e308"
_INTEGER_TYPES = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "INT",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "BYTE",
        "SHORT",
        "LONG",
        "BOOLEAN",
        "BOOL",
    }
)


@dataclass(frozen=True)
class Dialect:
    """How one SQL engine quotes identifiers and hashes a row."""

    name: str
    quote_char: str
    hash_function: str

    def quote(self, name: str) -> str:
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def row_hash(self, exprs: list[str]) -> str:
        """A 64-bit hash of the row's values (DuckDB ``hash``, Spark ``xxhash64``)."""
        return f"{self.hash_function}({', '.join(exprs)})"

    def to_integer(self, expr: str) -> str:
        """A double rounded to the nearest BIGINT, ties to even, in both engines."""
        if self.name == "spark":  # Spark's cast truncates; rint rounds half to even
            return f"CAST(rint({expr}) AS BIGINT)"
        return f"CAST({expr} AS BIGINT)"  # DuckDB's cast rounds half to even

    def integer_sum(self, expr: str) -> str:
        """Exact sum of a 64-bit integer expression, as a decimal string (order-independent)."""
        if self.name == "spark":  # Spark's BIGINT sum overflows; DECIMAL(38, 0) is exact
            return f"CAST(SUM(CAST({expr} AS DECIMAL(38, 0))) AS STRING)"
        return f"CAST(SUM({expr}) AS VARCHAR)"  # DuckDB sums 64-bit integers into a HUGEINT


DUCKDB = Dialect("duckdb", '"', "hash")
SPARK = Dialect("spark", "`", "xxhash64")


def _nonfinite(expr: str) -> str:
    """1 when expr is NULL, NaN or +-inf, else 0 (NaN compares above every number in both engines)."""
    return (
        f"CASE WHEN {expr} IS NULL OR NOT ({expr} BETWEEN -{_FINITE_BOUND} AND {_FINITE_BOUND})"
        " THEN 1 ELSE 0 END"
    )


def is_integer_type(sql_type: str) -> bool:
    """Whether a column of this SQL type holds whole numbers only (integers and booleans)."""
    return sql_type.upper().strip() in _INTEGER_TYPES


def numeric_columns(spec: ExperimentSpec) -> list[str]:
    """Outcomes then covariates: the columns whose values are summed."""
    return [*spec.outcome_names, *spec.covariates]


def stat_names(spec: ExperimentSpec) -> dict[str, list[str]]:
    """Output column names of the aggregation, by statistic."""
    ys = spec.outcome_names
    xs = list(spec.covariates)
    k, p = len(ys), len(xs)
    return {
        "sum_y": [f"sy_{i}" for i in range(k)],
        "sum_yy": [f"syy_{i}_{j}" for i in range(k) for j in range(i, k)],
        "sum_x": [f"sx_{i}" for i in range(p)],
        "sum_xx": [f"sxx_{i}_{j}" for i in range(p) for j in range(i, p)],
        "sum_xy": [f"sxy_{i}_{j}" for i in range(p) for j in range(k)],
        "bad_y": [f"bady_{i}" for i in range(k)],
        "bad_x": [f"badx_{i}" for i in range(p)],
        "off_support": [f"offs_{i}" for i in range(k)],
    }


def stat_terms(spec: ExperimentSpec) -> dict[str, tuple[int, ...]]:
    """Each statistic's factors, as indices into :func:`numeric_columns` (one for a plain sum,
    two for a sum of products)."""
    k, p = len(spec.outcomes), len(spec.covariates)
    names = stat_names(spec)
    factors: list[tuple[int, ...]] = [(i,) for i in range(k)]
    factors += [(i, j) for i in range(k) for j in range(i, k)]
    factors += [(k + i,) for i in range(p)]
    factors += [(k + i, k + j) for i in range(p) for j in range(i, p)]
    factors += [(k + i, j) for i in range(p) for j in range(k)]
    stats = [*names["sum_y"], *names["sum_yy"], *names["sum_x"], *names["sum_xx"], *names["sum_xy"]]
    return dict(zip(stats, factors, strict=True))


def profile_sql(
    spec: ExperimentSpec,
    table: str,
    dialect: Dialect,
    *,
    complete_only: bool = False,
) -> str:
    """Rows (``n``), and per numeric column ``i`` its count, minimum and maximum; unit id stats.

    Plain aggregates of the stored values, so DuckDB answers them from Parquet statistics without
    reading the rows. With ``complete_only`` the per-column figures cover only the rows whose
    outcomes are all finite (the rows ``drop_missing_outcomes`` keeps, counted as ``n_complete``)
    and only finite values.
    """
    q = dialect.quote
    cols = numeric_columns(spec)
    select = ["COUNT(*) AS n"]
    complete = " AND ".join(
        f"{_nonfinite(f'CAST({q(c)} AS DOUBLE)')} = 0" for c in spec.outcome_names
    )
    if complete_only:
        select.append(f"SUM(CASE WHEN {complete} THEN 1 ELSE 0 END) AS n_complete")
    for i, c in enumerate(cols):
        v = q(c)
        if complete_only:
            finite = f"{_nonfinite(f'CAST({q(c)} AS DOUBLE)')} = 0"
            v = f"CASE WHEN {complete} AND {finite} THEN {q(c)} END"
        select += [f"COUNT({v}) AS cnt_{i}", f"MIN({v}) AS min_{i}", f"MAX({v}) AS max_{i}"]
    if spec.unit_id:
        select.append(f"COUNT({q(spec.unit_id)}) AS id_count")
        select += [f"MIN({q(spec.unit_id)}) AS id_min", f"MAX({q(spec.unit_id)}) AS id_max"]
    return f"SELECT {', '.join(select)} FROM {table}"


def _canonical_id(spec: ExperimentSpec, dialect: Dialect, column_types: Mapping[str, str]) -> str:
    """The unit id as hashed: integers as BIGINT, anything else as its text."""
    assert spec.unit_id is not None
    col = dialect.quote(spec.unit_id)
    sql_type = column_types.get(spec.unit_id, "").upper().strip()
    if sql_type in _INTEGER_TYPES - {"HUGEINT", "UBIGINT", "UHUGEINT", "BOOLEAN", "BOOL"}:
        return f"CAST({col} AS BIGINT)"
    return f"CAST({col} AS STRING)"


def _rows_sql(
    spec: ExperimentSpec, table: str, dialect: Dialect, column_types: Mapping[str, str]
) -> str:
    """The rows as the aggregation reads them: keys, ``_bd_v{i}`` (DOUBLE) and ``_bd_hash``."""
    q = dialect.quote
    keys = [q(g) for g in spec.groups] + [q(spec.treatment)]
    values = [f"CAST({q(c)} AS DOUBLE) AS _bd_v{i}" for i, c in enumerate(numeric_columns(spec))]
    hashed = [f"_bd_v{i}" for i in range(len(values))]
    if spec.unit_id:
        values.append(f"{_canonical_id(spec, dialect, column_types)} AS _bd_id")
        hashed.insert(0, "_bd_id")
    inner = f"SELECT {', '.join(keys + values)} FROM {table}"
    return f"SELECT *, {dialect.row_hash(hashed)} AS _bd_hash FROM ({inner}) AS _bd_rows"


def _group_select(spec: ExperimentSpec, dialect: Dialect) -> tuple[list[str], str]:
    q = dialect.quote
    select = [f"CAST({q(g)} AS STRING) AS g_{i}" for i, g in enumerate(spec.groups)]
    select.append(f"{q(spec.treatment)} AS arm_value")
    select.append("COUNT(*) AS n")
    keys = ", ".join([*(q(g) for g in spec.groups), q(spec.treatment)])
    return select, keys


def fingerprint_sql(
    spec: ExperimentSpec, table: str, dialect: Dialect, column_types: Mapping[str, str]
) -> str:
    """Per cell x arm: the labels, ``n`` and ``fp_hash``, the exact sum of the rows' hashes."""
    select, keys = _group_select(spec, dialect)
    select.append(f"{dialect.integer_sum('_bd_hash')} AS fp_hash")
    rows = _rows_sql(spec, table, dialect, column_types)
    return f"SELECT {', '.join(select)} FROM ({rows}) AS _bd_hashed GROUP BY {keys}"


def aggregation_sql(
    spec: ExperimentSpec,
    table: str,
    dialect: Dialect,
    *,
    drop_missing_outcomes: bool = False,
    exponents: Mapping[str, int | None] | None = None,
    column_types: Mapping[str, str] | None = None,
    finite_checks: Collection[int] | None = None,
    support_checks: Collection[int] | None = None,
) -> str:
    """SQL computing every per cell x arm statistic in one GROUP BY.

    Output columns: the group columns (cast to strings, as ``g_0 ...``), the treatment value
    (``arm_value``), ``n`` (rows), ``n_used`` (rows entering the sums), the sums named by
    :func:`stat_names`, the validation counts, and ``fp_hash`` (see :func:`fingerprint_sql`).
    A statistic with an exponent ``e`` in ``exponents``
    (:func:`~bayesdecide.data.summation.exponents_for`) is the exact integer sum of its terms in
    units of ``2**e``, as a decimal string (independent of the order of the rows); without one it
    is a plain ``SUM``. With ``drop_missing_outcomes`` the sums run over rows whose outcomes are
    all finite and ``n_used`` counts them; otherwise every row enters and validation rejects
    missing values.

    ``finite_checks`` (indices into :func:`numeric_columns`) and ``support_checks`` (outcome
    indices) limit the validation counts to the columns that the profile could not clear; the
    others are returned as constant zeros. By default every column is counted.
    """
    exponents = exponents or {}
    names = stat_names(spec)
    terms = stat_terms(spec)
    k, p = len(spec.outcomes), len(spec.covariates)
    rows = _rows_sql(spec, table, dialect, column_types or {})

    finite = set(range(k + p)) if finite_checks is None else set(finite_checks)
    support = set(range(k)) if support_checks is None else set(support_checks)
    support = {i for i in support if spec.outcomes[i].kind is not OutcomeKind.CONTINUOUS}

    # per row: validation flags, the values entering the sums (NULL in a dropped row), the terms
    flags = [f"{_nonfinite(f'_bd_v{i}')} AS _bd_bad{i}" for i in sorted(finite)]
    for i in sorted(support):
        y = f"_bd_v{i}"
        if spec.outcomes[i].kind is OutcomeKind.BINARY:
            cond = f"{y} <> 0 AND {y} <> 1"
        else:
            cond = f"{y} < 0 OR {y} <> FLOOR({y})"
        flags.append(f"CASE WHEN {_nonfinite(y)} = 0 AND ({cond}) THEN 1 ELSE 0 END AS _bd_off{i}")
    complete = " AND ".join(f"{_nonfinite(f'_bd_v{i}')} = 0" for i in range(k))
    if drop_missing_outcomes:
        flags.append(f"CASE WHEN {complete} THEN 1 ELSE 0 END AS _bd_keep")
        used = [f"CASE WHEN {complete} THEN _bd_v{i} END AS _bd_u{i}" for i in range(k + p)]
    else:
        used = [f"_bd_v{i} AS _bd_u{i}" for i in range(k + p)]
    checked = f"SELECT *, {', '.join(flags + used)} FROM ({rows}) AS _bd_values"
    products = [
        f"{' * '.join(f'_bd_u{c}' for c in cols)} AS _bd_t_{name}" for name, cols in terms.items()
    ]
    termed = f"SELECT *, {', '.join(products)} FROM ({checked}) AS _bd_checked"

    select, keys = _group_select(spec, dialect)
    select.append("SUM(_bd_keep) AS n_used" if drop_missing_outcomes else "COUNT(*) AS n_used")
    for name in terms:
        exponent = exponents.get(name)
        if exponent is None:
            select.append(f"SUM(_bd_t_{name}) AS {name}")
        else:
            scaled = dialect.to_integer(f"_bd_t_{name} * {scale_constant(exponent)}")
            select.append(f"{dialect.integer_sum(scaled)} AS {name}")
    bad = [*names["bad_y"], *names["bad_x"]]
    select += [
        f"SUM(_bd_bad{i}) AS {bad[i]}" if i in finite else f"0 AS {bad[i]}" for i in range(k + p)
    ]
    off = names["off_support"]
    select += [
        f"SUM(_bd_off{i}) AS {off[i]}" if i in support else f"0 AS {off[i]}" for i in range(k)
    ]
    select.append(f"{dialect.integer_sum('_bd_hash')} AS fp_hash")
    return f"SELECT {', '.join(select)} FROM ({termed}) AS _bd_terms GROUP BY {keys}"


def distinct_ids_sql(spec: ExperimentSpec, table: str, low: int, high: int) -> str:
    """DuckDB: the number of distinct integer unit ids in ``[low, high]``, from a bitmap of the
    range (one bit per possible id; no hash table of the ids)."""
    col = DUCKDB.quote(spec.unit_id or "")
    return (
        f"SELECT bit_count(bitstring_agg(CAST({col} AS BIGINT), {int(low)}, {int(high)})) "
        f"AS distinct_ids FROM {table} WHERE {col} IS NOT NULL"
    )


def duplicate_ids_sql(spec: ExperimentSpec, table: str, dialect: Dialect) -> str:
    """Ids on more than one row: how many (``n_ids``) and the rows they cover (``n_rows``)."""
    col = dialect.quote(spec.unit_id or "")
    inner = (
        f"SELECT {col} AS _bd_id, COUNT(*) AS _bd_rows FROM {table} WHERE {col} IS NOT NULL "
        f"GROUP BY {col} HAVING COUNT(*) > 1"
    )
    return f"SELECT COUNT(*) AS n_ids, SUM(_bd_rows) AS n_rows FROM ({inner}) AS _bd_dups"


def duplicate_examples_sql(spec: ExperimentSpec, table: str, dialect: Dialect, limit: int) -> str:
    """The ids repeated most often (then smallest first), with their row counts."""
    col = dialect.quote(spec.unit_id or "")
    return (
        f"SELECT {col} AS id, COUNT(*) AS n_rows FROM {table} "
        f"WHERE {col} IS NOT NULL GROUP BY {col} HAVING COUNT(*) > 1 "
        f"ORDER BY n_rows DESC, {col} LIMIT {int(limit)}"
    )


def text_values_sql(column: str, table: str, dialect: Dialect, limit: int) -> str:
    """Values of a text column that are not numbers, most frequent first, with counts."""
    col = dialect.quote(column)
    return (
        f"SELECT CAST({col} AS STRING) AS example, COUNT(*) AS n_rows FROM {table} "
        f"WHERE {col} IS NOT NULL AND TRY_CAST({col} AS DOUBLE) IS NULL "
        f"GROUP BY {col} ORDER BY n_rows DESC, example LIMIT {int(limit)}"
    )


def text_counts_sql(column: str, table: str, dialect: Dialect) -> str:
    """Rows, non-missing values and values that are not numbers, of a text column."""
    col = dialect.quote(column)
    return (
        f"SELECT COUNT(*) AS n, COUNT({col}) AS non_null, SUM(CASE WHEN {col} IS NOT NULL AND "
        f"TRY_CAST({col} AS DOUBLE) IS NULL THEN 1 ELSE 0 END) AS n_text FROM {table}"
    )


def extreme_values_sql(column: str, table: str, dialect: Dialect, bound: float) -> str:
    """Rows whose (finite) value exceeds ``bound`` in magnitude, and the smallest and largest."""
    v = f"CAST({dialect.quote(column)} AS DOUBLE)"
    return (
        f"SELECT COUNT(*) AS n_rows, MIN({v}) AS low, MAX({v}) AS high FROM {table} "
        f"WHERE {_nonfinite(v)} = 0 AND ABS({v}) > CAST('{bound!r}' AS DOUBLE)"
    )
