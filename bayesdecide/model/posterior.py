"""The sampled log spreads -> the labelled InferenceData a Fit holds.

Groups (ArviZ's names, so ``az.loo``, ``az.compare``, ``az.plot_ppc`` and ``az.summary`` work):

- ``posterior``: ``tau`` (chain, draw, cell, outcome), each cell's effect in the outcome's
  original units per assigned unit; ``mu`` (the hypermean) and ``u_<term>`` (level effects) in
  natural units (the effect at a typical cell); ``sigma_<term>``, ``sigma_cell`` (spreads, natural
  units); ``alpha`` (control-arm means, original units). Factor labels are coords along ``cell``.
- ``log_likelihood``: ``effect`` (chain, draw, obs_cell): log density of each observed cell's
  estimates (all outcomes jointly) given the level effects, its own deviation integrated out.
- ``observed_data``: ``effect`` (obs_cell, outcome), the estimates; ``constant_data``: their
  sampling covariance, unit counts and control means.
- ``posterior_predictive``: ``effect`` replicated from each draw's cell effects and the sampling
  covariance (when small enough; see :data:`PREDICTIVE_LIMIT`).
- ``sample_stats``: the sampler's statistics for the spreads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import arviz as az
import numpy as np
import xarray as xr

from bayesdecide.model.arms import ARM_UNITS
from bayesdecide.model.engine import MarginalModel, mixture_weights, spread_draws
from bayesdecide.model.inputs import ModelInputs, assemble_outcomes
from bayesdecide.model.terms import INTERCEPT

PREDICTIVE_LIMIT = 20_000_000  # values (draws x cells x outcomes) kept in posterior_predictive
_PREDICTIVE_STREAM = 0x9EED


def level_dim(term: str) -> str:
    """Name of the dimension that indexes a term's levels."""
    return f"{term}_level"


def modelled_dim(inputs: ModelInputs) -> str:
    """Dimension of the modelled outcomes: ``outcome`` unless some outcomes are derived."""
    return "outcome" if not inputs.derived else "modelled_outcome"


def cell_coords(inputs: ModelInputs) -> dict[str, Any]:
    """``cell`` and every grouping column of the table as coords along ``cell``."""
    table = inputs.table
    coords: dict[str, Any] = {"cell": inputs.cells}
    for g in table.attrs.get("factors", []):
        if g in table.coords:
            coords[g] = ("cell", np.asarray(table[g].values).astype(str).astype(object))
    return coords


def outcome_coords(inputs: ModelInputs, labels: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """``outcome`` with its ``label`` and ``unit`` coords when the spec gives them."""
    coords: dict[str, Any] = {"outcome": inputs.outcomes}
    if labels:
        coords["label"] = ("outcome", [labels.get(o, (o, ""))[0] for o in inputs.outcomes])
        coords["unit"] = ("outcome", [labels.get(o, (o, ""))[1] for o in inputs.outcomes])
    return coords


def posterior_group(
    model: MarginalModel,
    x: np.ndarray,
    effects: Mapping[str, np.ndarray],
    alpha: np.ndarray | None,
    labels: Mapping[str, tuple[str, str]],
) -> xr.Dataset:
    """The ``posterior`` group from the log spreads and the effect draws."""
    inp = model.inputs
    h = inp.hierarchy
    kdim = modelled_dim(inp)
    sdims = ("chain", "draw")
    unit = inp.unit
    data: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    tau = assemble_outcomes(effects["theta"] * inp.scale, inp)
    data["tau"] = ((*sdims, "cell", "outcome"), tau)
    data["mu"] = ((*sdims, kdim), effects[f"u_{INTERCEPT}"][:, :, 0, :] * unit)
    for term in h.level_terms:
        data[f"u_{term.name}"] = (
            (*sdims, level_dim(term.name), kdim),
            effects[f"u_{term.name}"] * unit,
        )
    fixed = fixed_spreads(model)
    for name, values in spread_draws(model, x).items():
        if name not in fixed:  # a constant is data, not a posterior quantity (constant_data)
            data[name] = ((*sdims, kdim), values)
    if alpha is not None:
        data["alpha"] = ((*sdims, "cell", "outcome"), alpha)
    if "cell_scale" in effects:
        data["cell_scale"] = ((*sdims, "obs_cell"), effects["cell_scale"])
    for term in h.level_terms:
        if f"level_scale_{term.name}" in effects:
            data[f"level_scale_{term.name}"] = (
                (*sdims, level_dim(term.name)),
                effects[f"level_scale_{term.name}"],
            )
    coords: dict[str, Any] = {
        "chain": np.arange(x.shape[0]),
        "draw": np.arange(x.shape[1]),
        **cell_coords(inp),
        **outcome_coords(inp, labels),
    }
    if kdim != "outcome":
        coords[kdim] = inp.independent
    for term in h.level_terms:
        coords[level_dim(term.name)] = list(term.levels)
    if "cell_scale" in effects:
        coords["obs_cell"] = [inp.cells[i] for i in inp.obs_cells]
    ds = xr.Dataset(data, coords=coords)
    if "cell_scale" in ds:
        ds["cell_scale"].attrs.update(
            long_name="scale-mixture weight of the cell's deviation variance (Student-t cells)",
            units="dimensionless; 1 = a typical cell, large = the cell escapes pooling",
        )
    for term in h.level_terms:
        if f"level_scale_{term.name}" in ds:
            ds[f"level_scale_{term.name}"].attrs.update(
                long_name="scale-mixture weight of the level's effect variance (Student-t levels)",
                units="dimensionless; 1 = a typical level, large = the level escapes pooling",
            )
    ds["tau"].attrs.update(
        long_name="intention-to-treat effect of assignment per assigned unit",
        units="the outcome's own unit (coord 'unit'), per assigned unit",
    )
    ds["mu"].attrs.update(
        long_name="hypermean: the effect at a typical cell, averaged over levels",
        units="natural units of the outcome (its own unit at a typical cell)",
    )
    for name in ds.data_vars:
        if str(name).startswith(("sigma_", "u_")):
            ds[name].attrs["units"] = (
                "natural units of the outcome (its own unit at a typical cell)"
            )
    if "alpha" in ds:
        ds["alpha"].attrs.update(long_name="control-arm mean", units="the outcome's own unit")
    return ds


def _obs_coords(inp: ModelInputs) -> dict[str, Any]:
    cells = [inp.cells[i] for i in inp.obs_cells]
    coords: dict[str, Any] = {"obs_cell": cells}
    table = inp.table
    for g in table.attrs.get("factors", []):
        if g in table.coords:
            values = np.asarray(table[g].values).astype(str).astype(object)
            coords[g] = ("obs_cell", values[inp.obs_cells])
    return coords


def fixed_spreads(model: MarginalModel) -> dict[str, np.ndarray]:
    """The spreads fixed for every modelled outcome (K,), natural units, by prior name.

    They are not sampled (by default the spreads of factors with fewer than five levels), so they
    sit in ``constant_data`` rather than the posterior, where ArviZ would report a NaN R-hat with
    a warning for each. A spread fixed for some outcomes only stays in the posterior.
    """
    kp, inp = model.kp, model.inputs
    h = inp.hierarchy
    out = {h.terms[t].prior_name: np.sqrt(kp.fixed_var[t]) * inp.unit for t in model.fixed_terms}
    if h.cell_deviation and np.all(kp.pidx_cell < 0):
        out["sigma_cell"] = np.sqrt(kp.fixed_var_cell) * inp.unit
    return out


def data_groups(model: MarginalModel) -> dict[str, xr.Dataset]:
    """``observed_data`` (the estimates) and ``constant_data`` (their covariance and counts, and
    the fixed spreads of :func:`fixed_spreads`)."""
    inp = model.inputs
    table = inp.table
    obs = inp.obs_cells
    coords = {**_obs_coords(inp), "outcome": inp.outcomes, "outcome_b": inp.outcomes}
    observed = xr.Dataset(
        {"effect": (("obs_cell", "outcome"), np.asarray(table["effect"].values, float)[obs])},
        coords={k: v for k, v in coords.items() if k != "outcome_b"},
    )
    const: dict[str, Any] = {
        "effect_cov": (
            ("obs_cell", "outcome", "outcome_b"),
            np.asarray(table["effect_cov"].values, float)[obs],
        )
    }
    for name in ("n_control", "n_treatment", ARM_UNITS, "control_mean", "control_se"):
        if name in table:
            dims = tuple("obs_cell" if d == "cell" else d for d in table[name].dims)
            const[name] = (dims, np.asarray(table[name].values, float)[obs])
    const["pooling_scale"] = (("obs_cell", "modelled_outcome"), inp.r[obs])
    fixed = fixed_spreads(model)
    for name, values in fixed.items():
        const[name] = ((modelled_dim(inp),), values)
    constant = xr.Dataset(const, coords={**coords, "modelled_outcome": inp.independent})
    for name in fixed:
        constant[name].attrs.update(
            long_name="fixed spread (not sampled; the factor's levels are not pooled)",
            units="natural units of the outcome (its own unit at a typical cell)",
        )
    return {"observed_data": observed, "constant_data": constant}


def log_likelihood_group(inp: ModelInputs, loglik: np.ndarray) -> xr.Dataset:
    """Pointwise log-likelihood in the estimates' original units (the standardisation's
    Jacobian removed, so fits with different scalings compare)."""
    jac = np.where(inp.mask, np.log(inp.scale[inp.obs_cells]), 0.0).sum(axis=1)
    return xr.Dataset(
        {"effect": (("chain", "draw", "obs_cell"), loglik - jac)},
        coords={
            "chain": np.arange(loglik.shape[0]),
            "draw": np.arange(loglik.shape[1]),
            **_obs_coords(inp),
        },
    )


def predictive_group(inp: ModelInputs, tau: np.ndarray, seed: int) -> xr.Dataset | None:
    """Replicated estimates ``effect`` (chain, draw, obs_cell, outcome) in original units: each
    draw's cell effects plus sampling noise with the cells' covariance. None when larger than
    :data:`PREDICTIVE_LIMIT` values (call :meth:`Fit.posterior_predictive` for one anyway)."""
    obs = inp.obs_cells
    n_chain, n_draw = tau.shape[:2]
    if n_chain * n_draw * len(obs) * len(inp.outcomes) > PREDICTIVE_LIMIT:
        return None
    return predictive_draws(inp, tau, seed)


def predictive_draws(inp: ModelInputs, tau: np.ndarray, seed: int) -> xr.Dataset:
    """As :func:`predictive_group`, without the size limit."""
    obs = inp.obs_cells
    n_chain, n_draw = tau.shape[:2]
    scale = inp.scale[obs]
    chol = np.zeros_like(inp.cov)
    for row, m in enumerate(inp.mask):
        idx = np.flatnonzero(m)
        chol[row][np.ix_(idx, idx)] = np.linalg.cholesky(inp.cov[row][np.ix_(idx, idx)])
    rng = np.random.default_rng([seed, _PREDICTIVE_STREAM])
    z = rng.standard_normal((n_chain, n_draw, len(obs), len(inp.independent)))
    noise_std = np.einsum("oij,cdoj->cdoi", chol, z)
    noise = assemble_outcomes(noise_std * scale, inp)
    rep = tau[:, :, obs, :] + noise
    rep = np.where(np.isnan(np.asarray(inp.table["effect"].values, float)[obs]), np.nan, rep)
    return xr.Dataset(
        {"effect": (("chain", "draw", "obs_cell", "outcome"), rep)},
        coords={
            "chain": np.arange(n_chain),
            "draw": np.arange(n_draw),
            **_obs_coords(inp),
            "outcome": inp.outcomes,
        },
    )


def prior_group(
    model: MarginalModel, draws: int, seed: int, labels: Mapping[str, tuple[str, str]]
) -> xr.Dataset:
    """Draws from the prior (one chain): spreads from their priors, then ``mu``, level effects and
    cell deviations from theirs, and ``tau`` in original units."""
    inp = model.inputs
    h = inp.hierarchy
    k = len(inp.independent)
    rng = np.random.default_rng([seed, 0x9A10])
    kdim = modelled_dim(inp)
    shape = (1, draws)
    data: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    mu = np.stack(
        [model.priors[INTERCEPT][j].sample(rng, shape) for j in range(k)], axis=-1
    )  # natural units
    theta = np.broadcast_to(mu[:, :, None, :], (*shape, len(h.cells), k)).copy()
    data["mu"] = (("chain", "draw", kdim), mu)
    for term in h.level_terms:
        sigma = np.stack(
            [model.priors[term.prior_name][j].sample(rng, shape) for j in range(k)], axis=-1
        )
        u = sigma[:, :, None, :] * rng.standard_normal((*shape, len(term.levels), k))
        u *= np.sqrt(mixture_weights(rng, model.kp.level_nu, (*shape, len(term.levels))))[..., None]
        data[term.prior_name] = (("chain", "draw", kdim), sigma)
        data[f"u_{term.name}"] = (("chain", "draw", level_dim(term.name), kdim), u)
        theta += u[:, :, term.codes, :]
    if h.cell_deviation:
        sigma = np.stack([model.priors["sigma_cell"][j].sample(rng, shape) for j in range(k)], -1)
        data["sigma_cell"] = (("chain", "draw", kdim), sigma)
        weight = np.sqrt(mixture_weights(rng, model.kp.nu, (*shape, len(h.cells))))[..., None]
        theta += sigma[:, :, None, :] * weight * rng.standard_normal(theta.shape)
    data["tau"] = (("chain", "draw", "cell", "outcome"), assemble_outcomes(theta * inp.r, inp))
    coords: dict[str, Any] = {
        "chain": [0],
        "draw": np.arange(draws),
        **cell_coords(inp),
        **outcome_coords(inp, labels),
    }
    if kdim != "outcome":
        coords[kdim] = inp.independent
    for term in h.level_terms:
        coords[level_dim(term.name)] = list(term.levels)
    return xr.Dataset(data, coords=coords)


def to_inference_data(groups: Mapping[str, xr.Dataset | None]) -> az.InferenceData:
    return az.InferenceData(**{k: v for k, v in groups.items() if v is not None})


__all__ = [
    "PREDICTIVE_LIMIT",
    "cell_coords",
    "data_groups",
    "fixed_spreads",
    "level_dim",
    "log_likelihood_group",
    "modelled_dim",
    "posterior_group",
    "predictive_draws",
    "predictive_group",
    "prior_group",
    "to_inference_data",
]
