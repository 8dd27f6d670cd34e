"""Property tests (hypothesis) on random hand-built draws."""

from __future__ import annotations

import numpy as np
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesdecide.decide import (
    EffectBound,
    LaunchDraws,
    Policy,
    Population,
    ValueModel,
    optimal_policy,
    policy_values,
    sensitivity,
    treat_all,
    treat_none,
)

SETTINGS = settings(max_examples=30, deadline=None)


def _draws(seed: int, n_cells: int, n_draws: int = 200):
    rng = np.random.default_rng(seed)
    mean = rng.normal(0, 5, (n_cells, 2))
    mean[:, 1] = np.abs(mean[:, 1]) / 100  # tickets
    x = mean + rng.normal(0, 2, (1, n_draws, n_cells, 2)) * [1.0, 0.01]
    cells = [f"c{i}" for i in range(n_cells)]
    tau = xr.DataArray(
        x,
        dims=("chain", "draw", "cell", "outcome"),
        coords={
            "cell": cells,
            "outcome": ["net", "tickets"],
            "region": ("cell", [f"r{i % 3}" for i in range(n_cells)]),
        },
    )
    share = xr.DataArray(rng.dirichlet(np.ones(n_cells)), dims="cell", coords={"cell": cells})
    masks = rng.integers(0, 2, (3, n_cells))
    pols = [
        Policy(f"p{i}", cells=[c for c, m in zip(cells, row, strict=True) if m])
        for i, row in enumerate(masks)
    ]
    return tau, share, pols


VM = ValueModel({"net": 1.0})
seeds = st.integers(0, 2**31)
cells_n = st.integers(1, 8)
scalings = st.sampled_from(["constant", "treated_share"])


@SETTINGS
@given(seeds, cells_n, st.floats(1, 1e6), st.floats(0.1, 10))
def test_value_linear_in_n(seed, n_cells, n, k):
    tau, share, pols = _draws(seed, n_cells)
    v1 = policy_values(tau, share, [treat_all(), *pols], VM, Population(n))
    vk = policy_values(tau, share, [treat_all(), *pols], VM, Population(n * k))
    np.testing.assert_allclose(vk, k * v1, rtol=1e-9, atol=1e-6)


@SETTINGS
@given(seeds, cells_n, st.floats(0, 1e6), st.floats(0, 1e6), scalings)
def test_prob_positive_non_increasing_in_fixed_cost(seed, n_cells, f1, df, scaling):
    tau, share, pols = _draws(seed, n_cells)
    pols = [treat_all(), *pols]
    grid = [f1, f1 + df]
    pop = Population(10_000, fixed_cost_scaling=scaling)
    tab = sensitivity(tau, share, "fixed_cost", grid, VM, pop, pols)
    for p in tab["policy"].unique():
        pp = tab[tab["policy"] == p]["prob_positive"].to_numpy()
        assert pp[1] <= pp[0]


@SETTINGS
@given(seeds, cells_n, st.floats(0, 1e6), st.floats(0, 1e6), scalings)
def test_treat_none_zero_and_treat_all_weighted_mean(seed, n_cells, n, fixed, scaling):
    tau, share, _ = _draws(seed, n_cells)
    pop = Population(n, fixed_cost=fixed, fixed_cost_scaling=scaling)
    v = policy_values(tau, share, [treat_none(), treat_all()], VM, pop)
    assert (v.sel(policy="treat_none").values == 0.0).all()
    cell_v = tau.sel(outcome="net")
    hand = n * (cell_v * share).sum("cell") - fixed
    np.testing.assert_allclose(v.sel(policy="treat_all"), hand, rtol=1e-9, atol=1e-6 * max(n, 1))


@SETTINGS
@given(seeds, st.integers(1, 14), st.floats(1e3, 1e6), st.floats(0, 1e6), scalings, st.booleans())
def test_optimal_dominates_named(seed, n_cells, n, fixed, scaling, constrained):
    tau, share, pols = _draws(seed, n_cells)
    pop = Population(n, fixed_cost=fixed, fixed_cost_scaling=scaling)
    launch = LaunchDraws(tau, share, VM, pop)
    named = [treat_none(), treat_all(), *pols]
    masks = launch.masks(named)
    g = [EffectBound("tickets", upper=0.03, min_prob=0.8)] if constrained else []
    res = optimal_policy(launch, g, candidates=masks)
    ev = launch.expected_values(masks)
    if g:  # compare with the named policies that pass the constraint
        from bayesdecide.decide.guardrails import guardrail_probabilities

        _, ok = guardrail_probabilities(g, launch.evaluate(masks))
        ev = ev[ok.all(axis=0) | (masks.sum(axis=1) == 0)]
    assert res.expected_value >= ev.max() - 1e-6 * max(1.0, abs(ev).max())
    assert res.expected_value >= 0.0
