"""Shared fixtures: the seed retention experiment, simulated once per test session."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("PYTENSOR_FLAGS", "")


@pytest.fixture(scope="session")
def retention():
    from bayesdecide import simulate_retention

    return simulate_retention()
