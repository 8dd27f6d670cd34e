"""The compiled log density equals the PyMC model's, constants and gradient included."""

import numpy as np
import pytest
from scipy import special

from bayesdecide.model import Prior, build_inputs, build_model
from bayesdecide.model.hierarchical import model_priors
from bayesdecide.model.kernel import compile_density, digamma
from bayesdecide.model.structure import build_structure

PRIOR_CASES = {
    "defaults": {},
    "every family": {
        "mu": Prior("StudentT", nu=5, mu=0.3, sigma=2),
        "sigma_fa": Prior("HalfCauchy", beta=1.0),
        "sigma_fb": Prior("HalfStudentT", nu=3, sigma=0.7),
        "sigma_fa_x_fb": Prior("HalfNormal", sigma=0.5),
        "sigma_cell": Prior("Exponential", lam=2.0),
        "cell_nu": Prior("Gamma", alpha=2, beta=0.1),
    },
    "fixed spreads": {
        "sigma_fb": Prior("Fixed", value=0.8),
        "sigma_cell": Prior("Fixed", value=0.3),
    },
}


def _pymc_value_name(block):
    return block.name + ("_log__" if block.log_transformed else "")


@pytest.mark.parametrize("case", list(PRIOR_CASES))
def test_kernel_matches_pymc_logp_and_gradient(make_table, case):
    table = make_table(seed=5, n_outcomes=3)
    inputs = build_inputs(table, interactions=[("fa", "fb")])
    priors = model_priors(inputs, PRIOR_CASES[case])
    density = compile_density(inputs, priors, build_structure(inputs))
    model = build_model(inputs, priors)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    value_names = [v.name for v in model.value_vars]
    assert sorted(value_names) == sorted(_pymc_value_name(b) for b in density.blocks)
    rng = np.random.default_rng(0)
    start = model.initial_point()
    for _ in range(3):
        point = {k: v + rng.normal(0, 0.7, size=np.shape(v)) for k, v in start.items()}
        x = np.zeros(density.n_dim)
        for b in density.blocks:
            x[b.start : b.stop] = np.ravel(point[_pymc_value_name(b)])
        lp, grad = density.logp_and_grad(x)
        ref_grad = np.zeros(density.n_dim)
        flat, offset = dlogp(point), 0
        for name in value_names:
            size = int(np.size(point[name]))
            block = next(b for b in density.blocks if _pymc_value_name(b) == name)
            ref_grad[block.start : block.stop] = flat[offset : offset + size]
            offset += size
        np.testing.assert_allclose(lp, float(logp(point)), rtol=1e-10)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-7, atol=1e-7)


def test_kernel_gradient_matches_finite_differences(make_table):
    table = make_table(seed=6, n_outcomes=2)
    inputs = build_inputs(table)
    overrides = {k: v for k, v in PRIOR_CASES["every family"].items() if k != "sigma_fa_x_fb"}
    priors = model_priors(inputs, overrides)
    density = compile_density(inputs, priors, build_structure(inputs))
    x = np.random.default_rng(1).normal(0, 0.5, density.n_dim)
    _, grad = density.logp_and_grad(x)
    h = 1e-6
    for i in range(density.n_dim):
        e = np.zeros_like(x)
        e[i] = h
        numeric = (density.logp_and_grad(x + e)[0] - density.logp_and_grad(x - e)[0]) / (2 * h)
        assert numeric == pytest.approx(grad[i], rel=1e-5, abs=1e-5)


def test_digamma():
    x = np.array([0.05, 0.5, 1.0, 2.5, 5.9, 6.0, 17.3, 250.0])
    np.testing.assert_allclose([digamma(v) for v in x], special.digamma(x), rtol=1e-12)


def test_layout_and_constraints(small_table):
    inputs = build_inputs(small_table)
    priors = model_priors(inputs, {"sigma_fb": Prior("Fixed", value=0.5)})
    density = compile_density(inputs, priors, build_structure(inputs))
    names = [b.name for b in density.blocks]
    assert names == ["mu", "sigma_fa", "sigma_cell", "z_levels", "z_cell"]
    assert density.fixed == {"sigma_fb": 0.5, "cell_nu": 4.0}
    trace = {b.name: np.zeros((2, 3, b.stop - b.start)) for b in density.blocks}
    params = density.constrained(trace)
    assert params["sigma_fa"].shape == (2, 3, 2)
    np.testing.assert_array_equal(params["sigma_fa"], 1.0)  # exp(0)
    assert params["z_levels"].shape == (2, 3, 3, 2)  # (2 + 1) contrasts x 2 outcomes
    a, b = density.initial_point(3), density.initial_point(3)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(density.logp_and_grad(a)[1]))
