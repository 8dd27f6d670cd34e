"""The reference model: the hierarchy of :mod:`bayesdecide.model.terms` written out in PyMC with
every effect a random variable, in the standardised units of :mod:`bayesdecide.model.inputs`.

It is the model the marginal engine integrates analytically; ``sampler="pymc"`` samples it with
PyMC's NUTS (every level effect and cell deviation sampled, non-centred), which checks the engine by
a different route and is the fallback when nutpie cannot be used. Free spreads are named like the
marginal engine's parameters (``"sigma_region[net_margin]"``), so their draws map one to one.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayesdecide.model.engine import MarginalModel, level_scale_name
from bayesdecide.model.priors import Prior


def level_dim(term: str) -> str:
    """Name of the dimension that indexes a term's levels."""
    return f"{term}_level"


def _spread_rv(name: str, prior: Prior, unit: float) -> pt.TensorVariable:
    std = prior.scaled(1.0 / unit)
    return getattr(pm, std.family)(name, **std.kwargs)


def reference_coords(model: MarginalModel) -> dict[str, list[str]]:
    """Coordinates of the reference model: cells, modelled outcomes and every term's levels."""
    h = model.inputs.hierarchy
    coords: dict[str, list[str]] = {
        "cell": list(h.cells),
        "modelled_outcome": list(model.inputs.independent),
    }
    for term in h.terms:
        coords[level_dim(term.name)] = list(term.levels)
    return coords


def _spreads(model: MarginalModel, prior_name: str, fixed: np.ndarray) -> pt.TensorVariable:
    """(K,) spread of one term (or the cell deviations): a random variable per outcome named like
    the marginal engine's free parameter, or the fixed value."""
    inp = model.inputs
    values = []
    for j, o in enumerate(inp.independent):
        prior = model.priors[prior_name][j]
        if prior.family == "Fixed":
            values.append(pt.as_tensor_variable(np.sqrt(fixed[j])))
        else:
            values.append(_spread_rv(f"{prior_name}[{o}]", prior, float(inp.unit[j])))
    return pt.stack(values)


def _hypermean_and_level_means(
    model: MarginalModel, unpooled: list[int]
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """``mu`` and the level means of the unpooled terms, sampled through their sum.

    With iid ``u ~ Normal(0, s^2)`` on ``J`` levels, the mean ``m = mean(u) ~ Normal(0, s^2 / J)``
    and the deviations ``u - m ~ ZeroSumNormal(s)`` are independent. The data see ``mu`` and every
    ``m`` only through their sum ``M``; with wide priors (the fixed spreads of unpooled factors are
    as wide as ``mu``'s prior) sampling them separately leaves NUTS a ridge as long as the prior
    and as narrow as the data, which costs hundreds of leapfrog steps per draw. So ``M`` is sampled
    (``mu_total``, prior ``Normal(mu_shift, var_mu + sum s^2 / J)``) and the parts are placed by
    ``mu_split`` (standard normals, which the data do not see) as the exact conditional draw
    ``e + v / sum(v) (M - sum(e))`` with ``e ~ Normal(prior means, v)``: the same joint distribution.
    Returns ``M`` (K,) and the parts (1 + len(unpooled), K), ``mu`` first.
    """
    kp = model.kp
    terms = model.inputs.hierarchy.terms
    t0 = next(t for t, term in enumerate(terms) if term.is_intercept)
    var = np.stack(
        [kp.fixed_var[t0]] + [kp.fixed_var[t] / len(terms[t].levels) for t in unpooled]
    )  # (parts, K)
    mean = np.zeros_like(var)
    mean[0] = kp.mu_shift
    total = pm.Normal(
        "mu_total", mu=kp.mu_shift, sigma=np.sqrt(var.sum(axis=0)), dims="modelled_outcome"
    )
    split = pm.Normal("mu_split", 0.0, 1.0, shape=var.shape)
    e = mean + np.sqrt(var) * split
    parts = e + (var / var.sum(axis=0)) * (total - e.sum(axis=0))[None, :]
    return total, parts


def add_hierarchy(model: MarginalModel) -> pt.TensorVariable:
    """Add the hierarchy's random variables to the current PyMC model; return ``theta``
    (cells, K) in standardised units: ``mu`` plus every term's level effect (non-centred:
    ``u = sigma * z``) plus the cell deviation. Shared by the reference model and the unit-level
    model, so both have exactly the marginal engine's structure and priors.

    Terms with a fixed spread (not pooled) are written as their level mean plus zero-sum
    deviations, the means sampled together with ``mu`` (:func:`_hypermean_and_level_means`): the
    same distribution, without the ridge between ``mu`` and the level effects that wide fixed
    spreads would leave the sampler. ``mu`` stays in the posterior (a Deterministic then).
    """
    inp = model.inputs
    h = inp.hierarchy
    kp = model.kp
    theta = pt.zeros((len(h.cells), len(inp.independent)))
    # fixed spreads with normal levels (Student-t levels are a scale mixture: not split)
    unpooled = model.fixed_terms if kp.level_nu == 0 else []
    if unpooled:
        total, parts = _hypermean_and_level_means(model, unpooled)
        pm.Deterministic("mu", parts[0], dims="modelled_outcome")
        theta = theta + total[None, :]
    for t, term in enumerate(h.terms):
        if term.is_intercept:
            if not unpooled:
                mu = pm.Normal(
                    "mu", mu=kp.mu_shift, sigma=np.sqrt(kp.fixed_var[t]), dims="modelled_outcome"
                )
                theta = theta + mu[None, :]
            continue
        sigma = _spreads(model, term.prior_name, kp.fixed_var[t])
        if t in unpooled:  # deviations from the level mean (the mean is in ``total``)
            z = pm.ZeroSumNormal(
                f"z_{term.name}", 1.0, dims=("modelled_outcome", level_dim(term.name))
            )
            theta = theta + (z.T * sigma[None, :])[term.codes]
            continue
        z = pm.Normal(f"z_{term.name}", 0.0, 1.0, dims=(level_dim(term.name), "modelled_outcome"))
        u = z * sigma[None, :]
        if kp.level_nu > 0:  # Student-t level effects as a scale mixture, one weight per level
            lam = [
                pm.InverseGamma(
                    level_scale_name(term.name, lv), 0.5 * kp.level_nu, 0.5 * kp.level_nu
                )
                for lv in term.levels
            ]
            u = u * pt.sqrt(pt.stack(lam))[:, None]
        theta = theta + u[term.codes]
    if h.cell_deviation:
        sigma = _spreads(model, "sigma_cell", kp.fixed_var_cell)
        z = pm.Normal("z_cell", 0.0, 1.0, dims=("cell", "modelled_outcome"))
        dev = z * sigma[None, :]
        if kp.nu > 0:  # Student-t deviations as a scale mixture, one weight per cell
            lam = [
                pm.InverseGamma(f"cell_scale[{cell}]", 0.5 * kp.nu, 0.5 * kp.nu) for cell in h.cells
            ]
            dev = dev * pt.sqrt(pt.stack(lam))[:, None]
        theta = theta + dev
    return theta


def build_reference_model(model: MarginalModel) -> pm.Model:
    """The full PyMC model (standardised units) of a :class:`MarginalModel`'s hierarchy."""
    inp = model.inputs
    with pm.Model(coords=reference_coords(model)) as ref:
        theta = add_hierarchy(model)
        # likelihood, whitened per cell: L_c^-1 y_c ~ N(L_c^-1 theta_c, I) on observed entries
        whiten = np.zeros_like(inp.cov)
        z_obs = np.zeros_like(inp.y)
        for row, m in enumerate(inp.mask):
            idx = np.flatnonzero(m)
            inv = np.linalg.inv(np.linalg.cholesky(inp.cov[row][np.ix_(idx, idx)]))
            whiten[row][np.ix_(idx, idx)] = inv
            z_obs[row, idx] = inv @ inp.y[row, idx]
        mean = (pt.as_tensor_variable(whiten) * theta[inp.obs_cells][:, None, :]).sum(axis=-1)
        keep = inp.mask.ravel()
        pm.Normal("effect_whitened", mu=mean.ravel()[keep], sigma=1.0, observed=z_obs.ravel()[keep])
    return ref


def log_spreads_from(model: MarginalModel, posterior: xr.Dataset) -> np.ndarray:
    """The log spreads (chain, draw, P) in the marginal engine's order from the reference model's
    posterior."""
    return np.stack(
        [np.log(np.asarray(posterior[name].values, dtype=float)) for name in model.param_names],
        axis=-1,
    )


__all__ = [
    "add_hierarchy",
    "build_reference_model",
    "level_dim",
    "log_spreads_from",
    "reference_coords",
]
