"""The data fingerprint: a SHA-256 that identifies the rows an analysis read, in any order.

Every row's values in the spec's columns (the unit id, the outcomes and the covariates as doubles)
are hashed in SQL where the data lives (DuckDB ``hash``, Spark ``xxhash64``), and the hashes are
summed exactly (as 128-bit integers or decimals) per cell x arm. Exact integer sums do not depend
on the order of the rows or on how an engine splits them between threads, so the same rows always
give the same fingerprint; the group labels and arm of each cell x arm, its row count and its hash
sum are then hashed with SHA-256. It is computed in the same pass as the cell statistics
(:attr:`CellStats.fingerprint <bayesdecide.data.cells.CellStats>`), or on its own with
:func:`data_fingerprint`.

The same data read by DuckDB from a pandas or polars frame, a pyarrow table, Parquet or CSV give
the same fingerprint when their columns have the same values (integer columns hash like floats of
the same value; an integer id hashes like a 64-bit integer, any other id as its text). Spark uses
another hash function, so its fingerprints differ from DuckDB's, and a DuckDB release that changes
its ``hash`` changes them too (lineage records the DuckDB version).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import duckdb
import pandas as pd

from bayesdecide.data.sources import open_source
from bayesdecide.data.spec import ExperimentSpec
from bayesdecide.data.sql import Dialect, fingerprint_sql
from bayesdecide.data.validate import check_frame_columns, check_schema, match_arm

_FORMAT = 1


def _label(value: Any) -> str | None:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def fingerprint_from_aggregate(spec: ExperimentSpec, agg: pd.DataFrame, dialect: Dialect) -> str:
    """SHA-256 of the per cell x arm row counts and hash sums (``fp_hash``) of an aggregate."""
    entries = []
    for _, row in agg.iterrows():
        labels = [_label(row[f"g_{i}"]) for i in range(len(spec.groups))]
        arm = match_arm(row["arm_value"], spec.arms)
        arm_key = spec.arm_labels[arm] if arm is not None else f"value {_label(row['arm_value'])}"
        entries.append([*labels, arm_key, int(row["n"]), str(int(row["fp_hash"]))])
    entries.sort(key=lambda e: json.dumps(e))
    payload = {
        "format": _FORMAT,
        "hash": f"{dialect.name}:{dialect.hash_function}",
        "columns": spec.columns,
        "groups": list(spec.groups),
        "treatment": spec.treatment,
        "rows": entries,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def data_fingerprint(
    data: Any, spec: ExperimentSpec, *, connection: duckdb.DuckDBPyConnection | None = None
) -> str:
    """SHA-256 identifying the rows of ``data`` in the spec's columns, whatever their order.

    One pass over the data where it lives (one GROUP BY, as :func:`~bayesdecide.cell_stats`); equal
    to ``cell_stats(data, spec).fingerprint``. Accepts the same inputs as
    :func:`~bayesdecide.cell_stats` and checks that the spec's columns exist with usable types.
    """
    source = open_source(data, connection)
    check_frame_columns(getattr(source, "frame", None), spec)
    column_types = source.column_types()
    check_schema(spec, column_types, source)
    agg = source.run(fingerprint_sql(spec, "{table}", source.dialect, column_types))
    return fingerprint_from_aggregate(spec, agg, source.dialect)


__all__ = ["data_fingerprint", "fingerprint_from_aggregate"]
