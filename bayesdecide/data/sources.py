"""Where the data lives: one small adapter per engine, each able to describe its columns and run SQL.

Supported inputs: pandas and polars DataFrames (and polars LazyFrames, pyarrow Tables), a DuckDB
relation, a path (or glob) to Parquet or CSV files read by DuckDB, and a Spark DataFrame (Spark SQL
runs the query where the data lives; only the cell table comes back).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pandas as pd

from bayesdecide.data.sql import DUCKDB, SPARK, Dialect
from bayesdecide.errors import DataValidationError

_PARQUET_SUFFIXES = (".parquet", ".pq")
_CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz")


class Source(Protocol):
    """An engine that can report column types and run an aggregation query."""

    dialect: Dialect
    description: str

    def column_types(self) -> dict[str, str]:
        """Column name to an upper-case SQL type name (e.g. ``DOUBLE``, ``VARCHAR``)."""
        ...

    def run(self, sql_template: str) -> pd.DataFrame:
        """Run SQL in which ``{table}`` stands for the data; return the (small) result."""
        ...

    def has_rows(self) -> bool:
        """Whether the data has at least one row (reads at most one)."""
        ...

    def empty_categories(self) -> dict[str, list[str]]:
        """Declared levels of categorical columns that have no rows (pandas/polars categoricals)."""
        ...


@dataclass
class DuckDBSource:
    relation: duckdb.DuckDBPyRelation
    description: str
    frame: Any = None
    dialect: Dialect = DUCKDB

    def column_types(self) -> dict[str, str]:
        return {c: str(t).upper() for c, t in zip(self.relation.columns, self.relation.types)}

    def run(self, sql_template: str) -> pd.DataFrame:
        try:
            result = self.relation.query("bd_data", sql_template.format(table="bd_data"))
            if result is None:  # pragma: no cover - DuckDB returns a relation for a SELECT
                raise DataValidationError("DuckDB returned no result for the aggregation query")
            return result.df()
        except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
            raise DataValidationError(
                f"DuckDB could not read the values of the {self.description}: "
                f"{str(exc).splitlines()[0]}; fix that value at the source or give the column "
                "one type (a pandas object column must hold numbers only, or text only)"
            ) from exc

    def has_rows(self) -> bool:
        return not self.run("SELECT 1 AS one FROM {table} LIMIT 1").empty

    def empty_categories(self) -> dict[str, list[str]]:
        return _empty_categories(self.frame)


@dataclass
class SparkSource:
    frame: Any
    description: str = "Spark DataFrame"
    dialect: Dialect = SPARK

    def column_types(self) -> dict[str, str]:
        return {name: dtype.upper() for name, dtype in self.frame.dtypes}

    def run(self, sql_template: str) -> pd.DataFrame:
        view = "bd_data_" + hashlib.sha1(str(id(self.frame)).encode()).hexdigest()[:12]
        self.frame.createOrReplaceTempView(view)
        try:
            rows = self.frame.sparkSession.sql(sql_template.format(table=view)).collect()
        finally:
            self.frame.sparkSession.catalog.dropTempView(view)
        return pd.DataFrame([r.asDict() for r in rows])

    def has_rows(self) -> bool:
        return not self.run("SELECT 1 AS one FROM {table} LIMIT 1").empty

    def empty_categories(self) -> dict[str, list[str]]:
        return {}


def _empty_categories(frame: Any) -> dict[str, list[str]]:
    if isinstance(frame, pd.DataFrame):
        out = {}
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                used = set(frame[col].dropna().unique())
                unused = [str(c) for c in frame[col].cat.categories if c not in used]
                if unused:
                    out[str(col)] = unused
        return out
    try:
        import polars as pl
    except ImportError:  # pragma: no cover - polars is optional
        return {}
    if isinstance(frame, pl.DataFrame):
        out = {}
        for col, dtype in frame.schema.items():
            if isinstance(dtype, pl.Enum):
                used = set(frame[col].drop_nulls().cast(pl.String).unique().to_list())
                unused = [c for c in dtype.categories.to_list() if c not in used]
                if unused:
                    out[col] = unused
        return out
    return {}


def _is_spark(data: Any) -> bool:
    module = type(data).__module__
    return module.startswith("pyspark.sql") and type(data).__name__ == "DataFrame"


def open_source(data: Any, connection: duckdb.DuckDBPyConnection | None = None) -> Source:
    """Wrap ``data`` in the adapter for its engine; raise a clear error for anything else."""
    if _is_spark(data):
        return SparkSource(data)
    con = connection if connection is not None else duckdb.connect()
    if isinstance(data, duckdb.DuckDBPyRelation):
        return DuckDBSource(data, "DuckDB relation")
    if isinstance(data, str | Path):
        return DuckDBSource(_read_path(con, str(data)), f"file {data}")
    if isinstance(data, pd.DataFrame):
        return DuckDBSource(con.from_df(data), "pandas DataFrame", frame=data)
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        import polars as pl

        if isinstance(data, pl.LazyFrame):
            data = data.collect()
        return DuckDBSource(con.from_arrow(data.to_arrow()), "polars DataFrame", frame=data)
    if module == "pyarrow":
        return DuckDBSource(con.from_arrow(data), "pyarrow Table")
    raise DataValidationError(
        f"cannot read data of type {type(data).__name__}; pass a pandas or polars DataFrame, a "
        "DuckDB relation, a path to Parquet/CSV files, or a Spark DataFrame"
    )


def _read_path(con: duckdb.DuckDBPyConnection, path: str) -> duckdb.DuckDBPyRelation:
    lower = path.lower()
    is_glob = any(ch in path for ch in "*?[")
    if not is_glob and not Path(path).exists():
        raise DataValidationError(f"data file {path!r} does not exist; check the path")
    target = path
    if not is_glob and Path(path).is_dir():
        target = str(Path(path) / "**" / "*.parquet")
        lower = target
    try:
        if lower.endswith(_PARQUET_SUFFIXES):
            return con.read_parquet(target)
        if lower.endswith(_CSV_SUFFIXES):
            return con.read_csv(target)
    except duckdb.Error as exc:
        raise DataValidationError(f"cannot read {path!r} with DuckDB: {exc}") from exc
    raise DataValidationError(
        f"do not know how to read {path!r}; use a .parquet or .csv file, a folder of Parquet "
        "files, or a glob such as 'data/*.parquet'"
    )
