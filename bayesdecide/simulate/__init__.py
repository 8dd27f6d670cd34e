"""Simulators of randomized experiments with known truth."""

from bayesdecide.simulate.retention import simulate_retention
from bayesdecide.simulate.simulation import Simulation

__all__ = ["Simulation", "simulate_retention"]
