"""Plain JSON from numpy, pandas and dataclass values: the one converter the package uses.

:func:`to_jsonable` turns numpy scalars and arrays, pandas indexes, tuples, paths and dataclasses
into JSON types; non-finite floats (NaN, inf) become ``null`` so files stay strict JSON.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def to_jsonable(x: Any) -> Any:
    """``x`` as JSON types: dicts with str keys, lists, str, int, float (finite) or None."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: to_jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, Mapping):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | set | frozenset | np.ndarray | pd.Index):
        return [to_jsonable(v) for v in x]
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, Path):
        return str(x)
    return x


def json_default(obj: Any) -> Any:
    """``default=`` hook for :func:`json.dumps`: numpy scalars and arrays, anything else as str."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


__all__ = ["json_default", "to_jsonable"]
