"""The hierarchical treatment-effect model on an EffectTable (cell statistics), as a PyMC model.

For every cell ``c`` and outcome ``k`` (standardised units, see :mod:`bayesdecide.model.inputs`)::

    theta[c, k] = mu[k] + sum_f u_f[level_f(c), k] + sum_i v_i[level_i(c), k] + e[c, k]
    u_f[:, k]  ~ ZeroSumNormal(sigma_f[k])          (one spread per factor and outcome)
    v_i[.., k] ~ ZeroSumNormal(sigma_i[k])          (chosen interactions; zero along each margin)
    e[c, k]    ~ sigma_cell[k] * StudentT(cell_nu)  (heavy-tailed cell deviations)
    tau[c, k]  = s[c, k] * S[k] * theta[c, k]       (original units, Deterministic)

The level effects are written through orthonormal zero-sum contrasts and every element is partially
non-centred (:mod:`bayesdecide.model.structure`); spreads have boundary-avoiding Gamma(2) priors by
default (:mod:`bayesdecide.model.priors`).

Likelihood (joint over outcomes): with ``L_c = chol(effect_cov_c)`` in standardised units,
``L_c^{-1} effect_c ~ Normal(L_c^{-1} theta_c, 1)``, which is exactly
``effect_c ~ MvNormal(theta_c, effect_cov_c)`` at the cost of one matrix-vector product per cell.
Cells without an estimate (one arm empty) have no likelihood term; their ``tau`` is predicted from
the hierarchy.

The default sampler does not run this graph: it runs the same density compiled once
(:mod:`bayesdecide.model.kernel`, tested equal to ``model.logp()``). This model is the reference
definition, and what ``sampler="pymc"`` / ``"nutpie-pytensor"``, the prior predictive and the
unit-level path use. The control-arm baselines are not part of it: their posterior is Gaussian in
closed form (:mod:`bayesdecide.model.baseline`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesdecide.model.inputs import ModelInputs, assembly_matrix, interaction_name
from bayesdecide.model.priors import Prior, resolve_priors
from bayesdecide.model.structure import Structure, build_structure, cell_effects_from


def level_dim(group: str) -> str:
    """Name of the dimension that indexes a factor's (or interaction's) levels."""
    return f"{group}_level"


def modelled_dim(inputs: ModelInputs) -> str:
    """Dimension of the modelled outcomes: ``outcome`` unless some outcomes are derived."""
    return "outcome" if not inputs.derived else "modelled_outcome"


def model_priors(
    inputs: ModelInputs, priors: Mapping[str, Prior | Mapping[str, Any]] | None = None
) -> dict[str, Prior]:
    """The model's priors: defaults merged with ``priors`` (user wins), validated."""
    return resolve_priors(
        inputs.factors, [interaction_name(m) for m in inputs.interactions], priors
    )


def build_model(
    inputs: ModelInputs,
    priors: Mapping[str, Prior | Mapping[str, Any]] | None = None,
    structure: Structure | None = None,
) -> pm.Model:
    """The PyMC model for ``inputs`` (see module docstring). Priors by name override defaults;
    ``structure`` is :func:`build_structure` of ``inputs``, built here when not given."""
    pri = model_priors(inputs, priors)
    st = structure or build_structure(inputs)
    kdim = modelled_dim(inputs)
    coords: dict[str, list[str]] = {
        "cell": inputs.cells,
        "outcome": inputs.outcomes,
        "obs_cell": [inputs.cells[i] for i in inputs.obs_cells],
        "contrast": st.contrast_labels,
    }
    if kdim != "outcome":
        coords[kdim] = inputs.independent
    for g in inputs.groups:
        coords[level_dim(g)] = inputs.levels[g]

    with pm.Model(coords=coords) as model:
        theta = add_structure(inputs, pri, kdim, st)
        scale = pt.as_tensor_variable(inputs.scale)
        pm.Deterministic("tau", _assemble(theta * scale, inputs), dims=("cell", "outcome"))
        theta_obs = theta[inputs.obs_cells]
        mean = (pt.as_tensor_variable(inputs.whiten) * theta_obs[:, None, :]).sum(axis=-1)
        pm.Normal("effect_whitened", mu=mean, sigma=1.0, observed=inputs.z, dims=("obs_cell", kdim))
    return model


def spread(prior: Prior, name: str, kdim: str, size: int) -> Any:
    """A spread per modelled outcome: the prior's random variable, or a constant if ``Fixed``."""
    if prior.family == "Fixed":
        return pt.as_tensor_variable(np.full(size, prior.kwargs["value"]))
    return prior.create(name, dims=kdim)


def add_structure(
    inputs: ModelInputs, pri: Mapping[str, Prior], kdim: str, st: Structure | None = None
) -> pt.TensorVariable:
    """Add mu, spreads, contrast coordinates and cell deviations to the current model; return theta.

    Free variables: ``mu`` (kdim), ``sigma_<group>`` and ``sigma_cell`` (kdim), ``cell_nu`` unless
    fixed, ``z_levels`` (contrast, kdim) and ``z_cell`` (cell, kdim); Deterministics ``u_<group>``
    (level effects) and ``theta`` (cell, kdim), standardised units. Shared by the cell-statistics
    model and the unit-level model so both pool with exactly the same structure and priors.
    """
    st = st or build_structure(inputs)
    k = len(inputs.independent)
    mu = pri["mu"].create("mu", dims=kdim)
    sigmas = [spread(pri[f"sigma_{g}"], f"sigma_{g}", kdim, k) for g in st.groups]
    z_levels = None
    if st.n_contrasts:
        level_sd = pt.stack(sigmas)[st.group_of_contrast] ** st.contrast_weight
        z_levels = pm.Normal("z_levels", 0.0, sigma=level_sd, dims=("contrast", kdim))
    sigma_cell = spread(pri["sigma_cell"], "sigma_cell", kdim, k)
    nu = pri["cell_nu"].create("cell_nu")
    z_cell = pm.StudentT(
        "z_cell", nu=nu, mu=0.0, sigma=sigma_cell[None, :] ** st.cell_weight, dims=("cell", kdim)
    )
    theta, coef, _ = cell_effects_from(st, mu, sigmas, z_levels, sigma_cell, z_cell, xp=pt)
    for g in st.groups:
        u = pt.dot(st.bases[g], coef[st.contrasts[g]]) if st.n_contrasts else pt.zeros((1, k))
        pm.Deterministic(f"u_{g}", u, dims=(level_dim(g), kdim))
    return pm.Deterministic("theta", theta, dims=("cell", kdim))


def _assemble(ind: pt.TensorVariable, inputs: ModelInputs) -> pt.TensorVariable:
    """(C, K_ind) tensor -> (C, K) with derived outcomes as linear combinations, in table order."""
    if not inputs.derived:
        return ind
    return pt.dot(ind, pt.as_tensor_variable(assembly_matrix(inputs)))


__all__ = [
    "add_structure",
    "build_model",
    "level_dim",
    "model_priors",
    "modelled_dim",
    "spread",
]
