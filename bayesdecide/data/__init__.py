"""Data stage: read any engine's data, validate it against the spec, aggregate to cell statistics."""

from bayesdecide.data.cells import CellStats, cell_stats

__all__ = ["CellStats", "cell_stats"]
