"""Shared fixtures: the seed retention experiment, simulated once per test session."""

from __future__ import annotations

import os
import warnings

import matplotlib
import pytest

from .fakes import FakeFit

matplotlib.use("Agg")
os.environ.setdefault("PYTENSOR_FLAGS", "")


@pytest.fixture(scope="session")
def retention():
    from bayesdecide import simulate_retention

    return simulate_retention()


@pytest.fixture(scope="session")
def retention_cells(retention):
    from bayesdecide import cell_stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cell_stats(retention.data, retention.spec, single_arm_cells="keep")


@pytest.fixture(scope="session")
def fake_fit(retention_cells):
    return FakeFit.from_cells(retention_cells)


@pytest.fixture()
def fake_pipeline(monkeypatch, retention_cells):
    """Patch the run stage's fit and load_fit with FakeFit (no sampling)."""
    from bayesdecide.run import pipeline, rerendering

    def fake_fit_model(cells, card, settings, progressbar):
        return FakeFit.from_cells(cells, draws=settings["draws"], chains=settings["chains"])

    monkeypatch.setattr(pipeline, "fit_model", fake_fit_model)
    monkeypatch.setattr(rerendering, "load_fit", FakeFit.load)
    return pipeline
