"""The marginal engine equals the model it integrates: density, gradient and conditional draws
against dense reference computations and PyMC's own log density."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest

from bayesdecide.model.engine import MarginalModel
from bayesdecide.model.fitting import fit
from bayesdecide.model.inputs import build_inputs
from bayesdecide.model.priors import Prior, resolve_priors

FAMILIES = [
    Prior("HalfNormal", sigma=0.7),
    Prior("HalfCauchy", beta=0.5),
    Prior("Exponential", lam=2.0),
    Prior("HalfStudentT", nu=3.0, sigma=0.8),
    Prior("Gamma", alpha=2.0, beta=3.0),
]


def _model(table, priors=None, interactions=(), drop=None):
    table = table.copy(deep=True)
    if drop is not None:  # an outcome missing in some cells
        cell, outcome = drop
        table["effect"].loc[dict(cell=cell, outcome=outcome)] = np.nan
    inp = build_inputs(table, interactions=interactions)
    return MarginalModel(inp, resolve_priors(inp.hierarchy, inp.independent, inp.unit, priors))


def _dense_covariance(m: MarginalModel, x: np.ndarray):
    """The marginal covariance of the observed entries, built densely (the definition)."""
    from bayesdecide.model.marginal import _variances

    kp, inp = m.kp, m.inputs
    var, vcell = _variances(x, kp.pidx, kp.fixed_var, kp.pidx_cell, kp.fixed_var_cell)
    lam = np.exp(x[m._cell_w]) if kp.nu > 0 else np.ones(len(inp.obs_cells))
    level_lam = _level_weights(m, x)
    codes = inp.hierarchy.codes[inp.obs_cells]
    entries = [
        (r, k)
        for r in range(len(inp.obs_cells))
        for k in range(len(inp.independent))
        if inp.mask[r, k]
    ]
    cov = np.zeros((len(entries), len(entries)))
    for a, (r, k) in enumerate(entries):
        for b, (r2, k2) in enumerate(entries):
            v = 0.0
            if r == r2:
                v += inp.cov[r, k, k2] + (lam[r] * vcell[k] if k == k2 else 0.0)
            if k == k2:
                v += sum(
                    var[t, k] * level_lam[t][codes[r, t]]
                    for t in range(var.shape[0])
                    if codes[r, t] == codes[r2, t]
                )
            cov[a, b] = v
    y = np.array([m._y[k, r] for r, k in entries])
    return cov, y, entries


def _level_weights(m: MarginalModel, x: np.ndarray) -> list[np.ndarray]:
    """Each term's levels' scale-mixture weights (1 for mu and for normal level effects)."""
    positions = m.level_weight_positions()
    return [
        np.exp(x[positions[t]]) if t in positions else np.ones(len(term.levels))
        for t, term in enumerate(m.inputs.hierarchy.terms)
    ]


def _pymc_marginal_logp(m: MarginalModel):
    """PyMC's log density and gradient of the marginal model, as a function of the log spreads:
    spreads with their priors on the log scale, the observed entries MvNormal with the dense
    covariance."""
    from bayesdecide.model.marginal import _variances

    kp, inp = m.kp, m.inputs
    _, y, entries = _dense_covariance(m, np.zeros(m.n_free))
    codes = inp.hierarchy.codes[inp.obs_cells]
    rows = np.array([r for r, _ in entries])
    ks = np.array([kk for _, kk in entries])
    same_k = ks[:, None] == ks[None, :]
    same_cell = rows[:, None] == rows[None, :]
    base = np.where(same_cell, inp.cov[rows[:, None], ks[:, None], ks[None, :]], 0.0)
    var_fixed, vcell_fixed = _variances(
        np.zeros(kp.n_free), kp.pidx, kp.fixed_var, kp.pidx_cell, kp.fixed_var_cell
    )
    with pm.Model() as model:
        sig = []
        for p, name in enumerate(kp.names):
            group, _, outcome = name.partition("[")
            j = inp.independent.index(outcome.rstrip("]"))
            prior = m.priors[group][j].scaled(1.0 / inp.unit[j])
            sig.append(getattr(pm, prior.family)(f"s{p}", **prior.kwargs))
        sig = pt.stack(sig)
        if kp.nu > 0:
            lam = pt.stack(
                [
                    pm.InverseGamma(f"lam{r}", 0.5 * kp.nu, 0.5 * kp.nu)
                    for r in range(len(inp.obs_cells))
                ]
            )
        else:
            lam = pt.ones(len(inp.obs_cells))
        level_lam = []
        for t, term in enumerate(inp.hierarchy.terms):
            if term.is_intercept or not kp.level_nu > 0:
                level_lam.append(pt.ones(len(term.levels)))
                continue
            nu = 0.5 * kp.level_nu
            level_lam.append(pm.InverseGamma(f"w{t}", nu, nu, shape=len(term.levels)))

        def variance(index: np.ndarray, fixed: np.ndarray) -> pt.TensorVariable:
            return pt.switch(index >= 0, sig[np.maximum(index, 0)] ** 2, fixed)

        cov = pt.as_tensor_variable(base)
        vcell = variance(kp.pidx_cell, vcell_fixed)
        cov = cov + pt.switch(same_cell & same_k, (lam[rows] * vcell[ks])[None, :], 0.0)
        for t in range(kp.pidx.shape[0]):
            same_level = codes[rows, t][:, None] == codes[rows, t][None, :]
            vt = variance(kp.pidx[t], var_fixed[t])
            weight = level_lam[t][codes[rows, t]]
            cov = cov + pt.switch(same_level & same_k, (vt[ks] * weight)[None, :], 0.0)
        pm.MvNormal("y", mu=np.zeros(len(y)), cov=cov, observed=y)
    logp = model.compile_logp(mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(mode="FAST_COMPILE")

    def evaluate(x: np.ndarray) -> tuple[float, np.ndarray]:
        point = {f"s{p}_log__": x[p] for p in range(kp.n_free)}
        if kp.nu > 0:
            for r, p in enumerate(m._cell_w):
                point[f"lam{r}_log__"] = x[p]
        for t, positions in m.level_weight_positions().items():
            point[f"w{t}_log__"] = x[positions]
        return float(logp(point)), np.asarray(dlogp(point))

    return evaluate


@pytest.mark.parametrize(
    "case",
    [
        "plain",
        "interaction",
        "missing",
        "families",
        "student_t",
        "student_t_levels",
        "student_t_interaction",
    ],
)
def test_density_and_gradient_equal_pymc(make_table, case):
    table = make_table(seed=3, n_outcomes=2)
    priors = None
    interactions = ()
    drop = None
    if case == "interaction":
        interactions = [("fa", "fb")]
    if case == "missing":
        drop = ("a2 | b1", "y1")
    if case == "student_t":
        priors = {"cell_nu": Prior("Fixed", value=4.0)}
        drop = ("a1 | b1", "y0")
    if case == "student_t_levels":  # both tails, with a missing outcome
        priors = {"cell_nu": Prior("Fixed", value=4.0), "level_nu": Prior("Fixed", value=3.0)}
        drop = ("a1 | b1", "y0")
    if case == "student_t_interaction":  # Student-t levels of the factors and the interaction
        priors = {"level_nu": Prior("Fixed", value=5.0)}
        interactions = [("fa", "fb")]
    if case == "families":
        priors = {
            "sigma_fa": {"y0": FAMILIES[0], "y1": FAMILIES[1]},
            "sigma_fb": {"y0": FAMILIES[2], "y1": FAMILIES[3]},
            "sigma_cell": {"y0": FAMILIES[4], "y1": Prior("Fixed", value=0.3)},
            "mu": Prior("Normal", mu=0.4, sigma=1.3),
        }
    m = _model(table, priors, interactions, drop)
    rng = np.random.default_rng(0)
    reference = _pymc_marginal_logp(m)
    # the saturated interaction (one level per cell, no cell deviation) with small level weights
    # is the worst-conditioned covariance here: PyMC's dense Cholesky agrees to ~1e-8
    rtol = 1e-7 if case == "student_t_interaction" else 1e-9
    for _ in range(3):
        x = rng.normal(-0.5, 0.7, m.n_free)
        lp, grad = m.logp(x)
        ref, dref = reference(x)
        np.testing.assert_allclose(lp, ref, rtol=rtol, atol=1e-8)
        np.testing.assert_allclose(grad, dref, rtol=100 * rtol, atol=10 * rtol)


@pytest.mark.parametrize("cell_prior", ["HalfNormal", "HalfCauchy", "HalfStudentT", "Gamma"])
def test_sampler_coordinates_carry_the_same_posterior(make_table, cell_prior):
    """NUTS moves a cell spread with a mirrored prior as a signed ``z`` (``|z|`` the spread), a
    level spread likewise where its moment estimate is zero, every other spread as its log. The
    sampler's density is the log spreads' density times the
    Jacobian of ``x = log|z|`` halved over the two signs, so ``|z|`` has the spreads' posterior;
    its gradient is the density's own (finite differences), and the sign does not matter."""
    family = {
        "HalfNormal": Prior("HalfNormal", sigma=0.7),
        "HalfCauchy": Prior("HalfCauchy", beta=0.5),
        "HalfStudentT": Prior("HalfStudentT", nu=3.0, sigma=0.8),
        "Gamma": Prior("Gamma", alpha=2.0, beta=3.0),  # not mirrored: zero density at zero
    }[cell_prior]
    m = _model(make_table(seed=3, n_outcomes=2), {"sigma_cell": family})
    signed = m.signed
    cells = [i for i, n in enumerate(m.param_names) if n.startswith("sigma_cell")]
    assert len(cells) == 2
    assert list(signed[cells]) == [cell_prior != "Gamma"] * 2
    for i, name in enumerate(m.param_names):  # level spreads: signed where the data show none
        group, _, outcome = name.rstrip("]").partition("[")
        if group != "sigma_cell":
            guess = m.inputs.spread_guess[group][m.inputs.independent.index(outcome)]
            assert signed[i] == (guess == 0.0), name
    rng = np.random.default_rng(4)
    for _ in range(3):
        z = rng.normal(-0.5, 0.7, m.n_free)
        z[signed] = rng.normal(0.0, 0.4, signed.sum())
        x = m.log_spreads(z)
        np.testing.assert_array_equal(x[~signed], z[~signed])
        lp, grad = m.sampler_logp(z)
        expected = m.logp(x)[0] - x[signed].sum() - signed.sum() * np.log(2.0)
        np.testing.assert_allclose(lp, expected, rtol=1e-12)
        flipped = z.copy()
        flipped[signed] *= -1.0
        np.testing.assert_allclose(m.sampler_logp(flipped)[0], lp, rtol=1e-12)
        step = 1e-6
        numeric = [
            (m.sampler_logp(z + step * e)[0] - m.sampler_logp(z - step * e)[0]) / (2 * step)
            for e in np.eye(m.n_free)
        ]
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)
    start = m.initial_point(7)
    assert (start[signed] > 0).all()
    np.testing.assert_array_equal(m.log_spreads(start)[signed], np.log(start[signed]))


def test_level_spreads_the_data_cannot_tell_from_zero_are_signed():
    """A level spread is sampled signed where its moment estimate is zero (the levels vary no
    more than their standard errors, as in eight schools) and as a log where the data place it
    away from zero."""
    import pandas as pd

    from bayesdecide.model.fitting import inputs_from_options, model_of
    from bayesdecide.model.summary import table_from_summary

    def model(spread: float) -> MarginalModel:
        frame = pd.DataFrame(
            {
                "school": [f"L{i}" for i in range(8)],
                "y": np.linspace(-1.0, 1.0, 8) * spread,
                "sigma": np.full(8, 10.0),
            }
        )
        table = table_from_summary(frame, estimate="y", std_error="sigma", groups=["school"])
        return model_of(inputs_from_options(table, {}), {})

    flat, spread = model(0.0), model(40.0)
    assert flat.inputs.spread_guess["sigma_school"][0] == 0.0 and flat.signed.all()
    assert spread.inputs.spread_guess["sigma_school"][0] > 0.0 and not spread.signed.any()


def test_every_elimination_order_gives_the_same_density(make_table):
    m = _model(make_table(seed=1, n_outcomes=3), interactions=[("fa", "fb")])
    x = np.random.default_rng(2).normal(-0.3, 0.5, m.n_free)
    ref = m.logp(x)
    for sparse in range(len(m.n_levels)):
        other = _model(make_table(seed=1, n_outcomes=3), interactions=[("fa", "fb")])
        other._set_sparse(sparse)
        lp, grad = other.logp(x)
        np.testing.assert_allclose(lp, ref[0], rtol=1e-10)
        np.testing.assert_allclose(grad, ref[1], rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("interaction", [False, True])
def test_param_names_name_the_coordinates_the_density_reads(make_table, interaction):
    """The kernel reads each weight from the position ``level_weight_positions`` and ``_cell_w``
    give; ``param_names`` (the posterior's ``spread`` coordinate) is built by a separate loop, so
    tie the two: every position carries its own cell's or level's name."""
    from bayesdecide.model.engine import level_scale_name

    priors = {"level_nu": Prior("Fixed", value=3.0)}
    if not interaction:  # a saturated interaction leaves no cell deviation to give tails
        priors["cell_nu"] = Prior("Fixed", value=4.0)
    interactions = [("fa", "fb")] if interaction else ()
    m = _model(make_table(seed=1, n_outcomes=2), priors=priors, interactions=interactions)
    names = m.param_names
    assert len(names) == m.n_free == len(set(names))
    assert names[: m.n_spreads] == list(m.kp.names)
    cell_positions = m._cell_w[m._cell_w >= 0]  # -1: normal cells, no weight
    assert len(cell_positions) == (0 if interaction else len(m.inputs.obs_cells))
    for r, position in enumerate(cell_positions):
        assert names[position] == f"cell_scale[{m.inputs.cells[m.inputs.obs_cells[r]]}]"
    positions = m.level_weight_positions()
    terms = m.inputs.hierarchy.terms
    assert sorted(positions) == [t for t, term in enumerate(terms) if not term.is_intercept]
    for t, where in positions.items():
        expected = [level_scale_name(terms[t].name, level) for level in terms[t].levels]
        assert [names[p] for p in where] == expected
    covered = np.concatenate([cell_positions, *positions.values()])
    assert sorted(covered) == list(range(m.n_spreads, m.n_free))


@pytest.mark.parametrize("level_nu", [None, 3.0])
def test_conditional_effect_draws_match_the_dense_posterior(make_table, level_nu):
    """Given the spreads (and the levels' scale-mixture weights of Student-t level effects),
    theta's draws have the mean and covariance of the exact Gaussian posterior computed densely
    over every level effect and cell deviation."""
    priors = {"level_nu": Prior("Fixed", value=level_nu)} if level_nu else None
    m = _model(make_table(seed=6, n_outcomes=2), priors, drop=("a1 | b2", "y0"))
    inp = m.inputs
    x = np.random.default_rng(1).normal(-0.4, 0.3, m.n_free)
    n = 4000
    draws = m.effect_draws(np.broadcast_to(x, (1, n, m.n_free)).copy(), seed=3)
    theta = draws["theta"][0] + 0.0  # (n, C, K)
    cov, y, entries = _dense_covariance(m, x)
    # prior covariance of theta (all cells) and its covariance with the observed entries
    from bayesdecide.model.marginal import _variances

    var, vcell = _variances(x, m.kp.pidx, m.kp.fixed_var, m.kp.pidx_cell, m.kp.fixed_var_cell)
    codes = inp.hierarchy.codes
    level_lam = _level_weights(m, x)
    c, k = codes.shape[0], len(inp.independent)
    idx = [(cc, kk) for cc in range(c) for kk in range(k)]

    def prior_cov(a, b):
        (c1, k1), (c2, k2) = a, b
        if k1 != k2:
            return 0.0
        v = sum(
            var[t, k1] * level_lam[t][codes[c1, t]]
            for t in range(var.shape[0])
            if codes[c1, t] == codes[c2, t]
        )
        return v + (vcell[k1] if c1 == c2 else 0.0)

    s_tt = np.array([[prior_cov(a, b) for b in idx] for a in idx])
    obs_idx = [(inp.obs_cells[r], kk) for r, kk in entries]
    s_ty = np.array([[prior_cov(a, b) for b in obs_idx] for a in idx])
    mean = s_ty @ np.linalg.solve(cov, y) + np.repeat(m.kp.mu_shift[None, :], c, 0).ravel()
    post_cov = s_tt - s_ty @ np.linalg.solve(cov, s_ty.T)
    flat = theta.reshape(n, -1)
    se = np.sqrt(np.diag(post_cov) / n)
    assert np.all(np.abs(flat.mean(0) - mean) < 4.5 * se)
    emp = np.cov(flat.T)
    sd = np.sqrt(np.diag(post_cov))
    np.testing.assert_allclose(np.diag(emp), np.diag(post_cov), rtol=0.12)
    corr_emp = emp / np.outer(np.sqrt(np.diag(emp)), np.sqrt(np.diag(emp)))
    corr = post_cov / np.outer(sd, sd)
    assert np.max(np.abs(corr_emp - corr)) < 0.1


@pytest.mark.slow  # PyMC's NUTS on the full model: compile and sample, minutes on 2 cores
def test_pymc_sampler_agrees_with_the_marginal_engine(make_table):
    table = make_table(seed=8, n_outcomes=2)
    kw = dict(factors=["fa", "fb"], draws=800, tune=800, chains=2, seed=4, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = fit(table, **kw)
        ref = fit(table, sampler="pymc", **kw)
    assert ref.lineage["sampler"] == "pymc"
    for name in ("tau", "mu", "sigma_cell"):  # sigma_fa: fixed (three levels), a constant
        a, b = fast.idata.posterior[name], ref.idata.posterior[name]
        dims = ("chain", "draw")
        diff = np.abs(a.mean(dims) - b.mean(dims)).values
        sd = np.sqrt(a.var(dims).values + b.var(dims).values)
        # Monte Carlo error of a difference of two ~400-ESS means, with room for many elements
        assert np.all(diff <= 0.25 * sd + 1e-12), (name, (diff / sd).max())
