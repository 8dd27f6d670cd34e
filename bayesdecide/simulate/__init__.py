"""Simulators of randomized experiments with known truth, and the retention experiment's rollout
(a launch population with a randomized holdout and a known transport factor)."""

from bayesdecide.simulate.markets import (
    MarketsParquet,
    markets_spec,
    simulate_markets,
    write_markets_parquet,
)
from bayesdecide.simulate.retention import simulate_retention
from bayesdecide.simulate.rollout import RolloutSimulation, simulate_retention_rollout
from bayesdecide.simulate.simulation import Simulation

__all__ = [
    "MarketsParquet",
    "RolloutSimulation",
    "Simulation",
    "markets_spec",
    "simulate_markets",
    "simulate_retention",
    "simulate_retention_rollout",
    "write_markets_parquet",
]
