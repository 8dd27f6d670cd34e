"""Data stage: read any engine's data, validate it against the spec, aggregate to cell statistics."""

from bayesdecide.data.cells import CellStats, cell_stats
from bayesdecide.data.fingerprint import data_fingerprint

__all__ = ["CellStats", "cell_stats", "data_fingerprint"]
