import warnings

import numpy as np
import pytest
import xarray as xr

import bayesdecide as bd


@pytest.fixture(scope="session")
def retention():
    return bd.simulate_retention()


@pytest.fixture(scope="session")
def retention_table(retention):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = bd.cell_stats(retention.data, retention.spec, single_arm_cells="keep")
    return bd.cell_effects(cells)


def synthetic_table(seed: int = 0, n_outcomes: int = 2) -> xr.Dataset:
    """A small EffectTable: 2 factors (3 x 2 levels), effect ~ MvNormal(true, cov)."""
    rng = np.random.default_rng(seed)
    a_levels, b_levels = ["a1", "a2", "a3"], ["b1", "b2"]
    cells, fa, fb = [], [], []
    for a in a_levels:
        for b in b_levels:
            cells.append(f"{a} | {b}")
            fa.append(a)
            fb.append(b)
    c, k = len(cells), n_outcomes
    true = rng.normal(1.0, 0.5, size=(c, k))
    n = rng.integers(200, 2000, size=c).astype(float)
    corr = np.full((k, k), 0.3) + 0.7 * np.eye(k)
    cov = np.array([corr * 4.0 / ni for ni in n])
    eff = np.array([rng.multivariate_normal(true[i], cov[i]) for i in range(c)])
    outcomes = [f"y{j}" for j in range(k)]
    return xr.Dataset(
        {
            "effect": (("cell", "outcome"), eff),
            "effect_cov": (("cell", "outcome", "outcome_b"), cov),
            "control_mean": (("cell", "outcome"), rng.normal(10, 1, size=(c, k))),
            "control_se": (("cell", "outcome"), np.full((c, k), 0.1)),
            "n_control": (("cell",), n / 2),
            "n_treatment": (("cell",), n / 2),
        },
        coords={
            "cell": cells,
            "outcome": outcomes,
            "outcome_b": outcomes,
            "fa": ("cell", fa),
            "fb": ("cell", fb),
        },
        attrs={"factors": ["fa", "fb"]},
    )


@pytest.fixture(scope="session")
def make_table():
    return synthetic_table


@pytest.fixture(scope="session")
def small_table():
    return synthetic_table()


@pytest.fixture(scope="session")
def retention_fit(retention_table):
    from bayesdecide.model.fitting import fit
    from bayesdecide.model.priors import Prior

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # typed prior overrides (one per outcome and one for all), so the save/load round trip
        # covers Prior objects in options
        return fit(
            retention_table,
            interactions=[("segment", "risk_band")],
            draws=300,
            tune=300,
            chains=2,
            seed=7,
            progressbar=False,
            priors={
                "sigma_region": {"gross_margin": Prior("HalfNormal", sigma=10.0)},
                "sigma_cell": {"renewed": Prior("Gamma", alpha=2.0, beta=100.0)},
            },
        )
