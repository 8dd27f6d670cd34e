"""The one aggregation query behind :func:`bayesdecide.cell_stats`, written as portable SQL.

The same query text runs on DuckDB (pandas/polars frames, relations, Parquet/CSV files) and on
Spark SQL; only identifier quoting differs. One pass over the rows computes, per cell x arm, the
sufficient statistics and the counts that validation needs (missing/non-finite values, values
outside an outcome's support), so validating big data costs no second scan.
"""

from __future__ import annotations

from dataclasses import dataclass

from bayesdecide.data.spec import ExperimentSpec, OutcomeKind

_FINITE_BOUND = "1.7976931348623157e308"


@dataclass(frozen=True)
class Dialect:
    """How one SQL engine quotes identifiers."""

    name: str
    quote_char: str

    def quote(self, name: str) -> str:
        q = self.quote_char
        return q + name.replace(q, q + q) + q


DUCKDB = Dialect("duckdb", '"')
SPARK = Dialect("spark", "`")


def _nonfinite(expr: str) -> str:
    """1 when expr is NULL, NaN or +-inf, else 0 (NaN compares above every number in both engines)."""
    return (
        f"CASE WHEN {expr} IS NULL OR NOT ({expr} BETWEEN -{_FINITE_BOUND} AND {_FINITE_BOUND})"
        " THEN 1 ELSE 0 END"
    )


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


def aggregation_sql(
    spec: ExperimentSpec,
    table: str,
    dialect: Dialect,
    *,
    drop_missing_outcomes: bool = False,
) -> str:
    """SQL computing every per cell x arm statistic in one GROUP BY.

    Output columns: the group columns (cast to strings, as ``g_0 ...``), the treatment value
    (``arm_value``), ``n`` (rows), ``n_used`` (rows entering the sums), then the sums named by
    :func:`stat_names`. With ``drop_missing_outcomes`` the sums run over rows whose outcomes are all
    finite and ``n_used`` counts them; otherwise every row enters and validation rejects missing values.
    """
    q = dialect.quote
    ys = [f"CAST({q(c)} AS DOUBLE)" for c in spec.outcome_names]
    xs = [f"CAST({q(c)} AS DOUBLE)" for c in spec.covariates]
    names = stat_names(spec)
    complete = " AND ".join(f"NOT ({_nonfinite(y)} = 1)" for y in ys)

    def total(expr: str) -> str:
        if drop_missing_outcomes:
            return f"SUM(CASE WHEN {complete} THEN {expr} END)"
        return f"SUM({expr})"

    select = [f"CAST({q(g)} AS STRING) AS g_{i}" for i, g in enumerate(spec.groups)]
    select.append(f"{q(spec.treatment)} AS arm_value")
    select.append("COUNT(*) AS n")
    select.append(
        f"SUM(CASE WHEN {complete} THEN 1 ELSE 0 END) AS n_used"
        if drop_missing_outcomes
        else "COUNT(*) AS n_used"
    )
    k, p = len(ys), len(xs)
    it = iter(names["sum_yy"])
    exprs = [f"{total(ys[i])} AS {names['sum_y'][i]}" for i in range(k)]
    exprs += [f"{total(f'{ys[i]} * {ys[j]}')} AS {next(it)}" for i in range(k) for j in range(i, k)]
    exprs += [f"{total(xs[i])} AS {names['sum_x'][i]}" for i in range(p)]
    it = iter(names["sum_xx"])
    exprs += [f"{total(f'{xs[i]} * {xs[j]}')} AS {next(it)}" for i in range(p) for j in range(i, p)]
    it = iter(names["sum_xy"])
    exprs += [f"{total(f'{xs[i]} * {ys[j]}')} AS {next(it)}" for i in range(p) for j in range(k)]
    exprs += [f"SUM({_nonfinite(ys[i])}) AS {names['bad_y'][i]}" for i in range(k)]
    exprs += [f"SUM({_nonfinite(xs[i])}) AS {names['bad_x'][i]}" for i in range(p)]
    for i, outcome in enumerate(spec.outcomes):
        y = ys[i]
        if outcome.kind is OutcomeKind.BINARY:
            cond = f"{y} <> 0 AND {y} <> 1"
        elif outcome.kind is OutcomeKind.COUNT:
            cond = f"{y} < 0 OR {y} <> FLOOR({y})"
        else:
            cond = "1 = 0"
        exprs.append(
            f"SUM(CASE WHEN {_nonfinite(y)} = 0 AND ({cond}) THEN 1 ELSE 0 END)"
            f" AS {names['off_support'][i]}"
        )
    keys = ", ".join([*(q(g) for g in spec.groups), q(spec.treatment)])
    return f"SELECT {', '.join(select + exprs)} FROM {table} GROUP BY {keys}"
