"""Simulators of randomized experiments with known truth."""

from bayesdecide.simulate.markets import (
    MarketsParquet,
    markets_spec,
    simulate_markets,
    write_markets_parquet,
)
from bayesdecide.simulate.retention import simulate_retention
from bayesdecide.simulate.simulation import Simulation

__all__ = [
    "MarketsParquet",
    "Simulation",
    "markets_spec",
    "simulate_markets",
    "simulate_retention",
    "write_markets_parquet",
]
