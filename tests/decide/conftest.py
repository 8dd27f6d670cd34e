"""Hand-built draws for decision tests (no sampling)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr

RETENTION_OUTCOMES = [
    "net_margin",
    "renewed",
    "gross_margin",
    "contact_cost",
    "discount_cost",
    "support_tickets",
    "annoyance",
]
SEGMENTS = ["SMB", "Mid-market", "Enterprise"]
REGIONS = ["Americas", "EMEA", "APAC"]
RISK_BANDS = ["Low risk", "Medium risk", "High risk"]


def _build_tau(
    mean: np.ndarray,
    sd: np.ndarray | float,
    outcomes: list[str],
    factors: dict[str, list[str]],
    n_draws: int = 2000,
    n_chains: int = 2,
    seed: int = 0,
    exact_mean: bool = True,
) -> xr.DataArray:
    """Normal draws with dims (chain, draw, cell, outcome).

    ``mean`` and ``sd`` are (C, K). With ``exact_mean`` the draws are centred and scaled so their
    sample mean and sd equal ``mean`` and ``sd`` exactly (reproducible hand-checks).
    """
    mean = np.asarray(mean, dtype=float)
    c, k = mean.shape
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_chains * n_draws, c, k))
    if exact_mean:
        z = (z - z.mean(axis=0)) / z.std(axis=0)
    draws = (mean + np.asarray(sd) * z).reshape(n_chains, n_draws, c, k)
    labels = [" | ".join(str(v[i]) for v in factors.values()) for i in range(c)]
    coords = {"cell": labels, "outcome": outcomes}
    coords.update({f: ("cell", list(v)) for f, v in factors.items()})
    return xr.DataArray(draws, dims=("chain", "draw", "cell", "outcome"), coords=coords)


def _share_da(tau: xr.DataArray, share) -> xr.DataArray:
    share = np.asarray(share, dtype=float)
    return xr.DataArray(share / share.sum(), dims="cell", coords={"cell": tau["cell"].values})


@pytest.fixture(scope="session")
def build_tau():
    """The draws builder (a function) for tests."""
    return _build_tau


@pytest.fixture(scope="session")
def share_da():
    """Cell share DataArray builder (a function) for tests."""
    return _share_da


@pytest.fixture
def retention_cells():
    """27 cells (segment x region x risk band) with retention-like effects; (tau, cell_share)."""
    cells = list(itertools.product(SEGMENTS, REGIONS, RISK_BANDS))
    base = {
        "Low risk": [-9.0, 0.0, 5.0, 8.0, 1.0, 0.05, 0.03],
        "Medium risk": [14.0, 0.1, 25.0, 8.0, 1.5, 0.03, 0.01],
        "High risk": [25.0, 0.28, 40.0, 8.0, 2.0, 0.03, 0.01],
    }
    mean = np.array([base[c[2]] for c in cells])
    sd = np.abs(mean) * 0.2 + 0.005
    factors = {
        "segment": [c[0] for c in cells],
        "region": [c[1] for c in cells],
        "risk_band": [c[2] for c in cells],
    }
    tau = _build_tau(mean, sd, RETENTION_OUTCOMES, factors, n_draws=500, seed=1)
    share = np.random.default_rng(2).dirichlet(np.full(27, 5.0))
    return tau, _share_da(tau, share)


@pytest.fixture
def tiny():
    """2 cells x 1 outcome 'v', 4 draws in one chain, by hand."""
    v = np.array([[1.0, -2.0], [3.0, 0.0], [-1.0, 4.0], [5.0, 2.0]])
    tau = xr.DataArray(
        v[None, :, :, None],
        dims=("chain", "draw", "cell", "outcome"),
        coords={"cell": ["a", "b"], "outcome": ["v"], "region": ("cell", ["North", "South"])},
    )
    share = xr.DataArray([0.25, 0.75], dims="cell", coords={"cell": ["a", "b"]})
    return tau, share


def _build_arm_tau(
    mean: np.ndarray,
    sd: np.ndarray | float,
    arms: list[str],
    outcomes: list[str],
    factors: dict[str, list[str]],
    n_draws: int = 1000,
    n_chains: int = 2,
    seed: int = 0,
) -> xr.DataArray:
    """Normal draws with dims (chain, draw, cell, treatment_arm, outcome); ``mean``/``sd`` are
    (C, A, K), each arm's effect against the control."""
    mean = np.asarray(mean, dtype=float)
    c, a, k = mean.shape
    z = np.random.default_rng(seed).standard_normal((n_chains * n_draws, c, a, k))
    draws = (mean + np.asarray(sd) * z).reshape(n_chains, n_draws, c, a, k)
    labels = [" | ".join(str(v[i]) for v in factors.values()) for i in range(c)]
    coords = {"cell": labels, "treatment_arm": arms, "outcome": outcomes}
    coords.update({f: ("cell", list(v)) for f, v in factors.items()})
    return xr.DataArray(
        draws, dims=("chain", "draw", "cell", "treatment_arm", "outcome"), coords=coords
    )


@pytest.fixture(scope="session")
def build_arm_tau():
    """The multi-arm draws builder (a function) for tests."""
    return _build_arm_tau


@pytest.fixture
def tiny_arms():
    """2 cells x 2 arms ('x', 'y') x 1 outcome 'v', 4 draws in one chain, by hand."""
    x = np.array([[1.0, -2.0], [3.0, 0.0], [-1.0, 4.0], [5.0, 2.0]])  # (draw, cell)
    y = np.array([[2.0, -1.0], [0.0, 1.0], [0.0, 1.0], [1.0, -3.0]])
    v = np.stack([x, y], axis=2)  # (draw, cell, arm)
    tau = xr.DataArray(
        v[None, :, :, :, None],
        dims=("chain", "draw", "cell", "treatment_arm", "outcome"),
        coords={
            "cell": ["a", "b"],
            "treatment_arm": ["x", "y"],
            "outcome": ["v"],
            "region": ("cell", ["North", "South"]),
        },
    )
    share = xr.DataArray([0.25, 0.75], dims="cell", coords={"cell": ["a", "b"]})
    return tau, share


@pytest.fixture
def retention_arm_cells():
    """27 retention-like cells x arms ('outreach', 'email'): outreach as in retention_cells; the
    email cheaper, better in low and medium risk, worse in high risk. (tau, cell_share)."""
    cells = list(itertools.product(SEGMENTS, REGIONS, RISK_BANDS))
    outreach = {
        "Low risk": [-9.0, 0.0, 5.0, 8.0, 1.0, 0.05, 0.03],
        "Medium risk": [14.0, 0.1, 25.0, 8.0, 1.5, 0.03, 0.01],
        "High risk": [25.0, 0.28, 40.0, 8.0, 2.0, 0.03, 0.01],
    }
    email = {
        "Low risk": [4.0, 0.03, 8.0, 0.5, 3.0, 0.0, 0.006],
        "Medium risk": [20.0, 0.12, 26.0, 0.5, 4.0, 0.0, 0.004],
        "High risk": [8.0, 0.08, 14.0, 0.5, 5.0, 0.0, 0.004],
    }
    mean = np.array([[outreach[c[2]], email[c[2]]] for c in cells])  # (C, A, K)
    sd = np.abs(mean) * 0.2 + 0.005
    factors = {
        "segment": [c[0] for c in cells],
        "region": [c[1] for c in cells],
        "risk_band": [c[2] for c in cells],
    }
    tau = _build_arm_tau(mean, sd, ["outreach", "email"], RETENTION_OUTCOMES, factors, 400, 2, 3)
    share = np.random.default_rng(2).dirichlet(np.full(27, 5.0))
    return tau, _share_da(tau, share)
