"""The hierarchical treatment-effect model on an EffectTable (cell statistics).

For every cell ``c`` and outcome ``k`` (standardised units, see :mod:`bayesdecide.model.inputs`)::

    theta[c, k] = mu[k] + sum_f u_f[level_f(c), k] + sum_i v_i[level_i(c), k] + e[c, k]
    u_f[:, k]  ~ ZeroSumNormal(sigma_f[k])          (one spread per factor and outcome)
    v_i[.., k] ~ ZeroSumNormal(sigma_i[k])          (chosen interactions; zero along each margin)
    e[c, k]    ~ sigma_cell[k] * StudentT(cell_nu)  (heavy-tailed cell deviations)
    tau[c, k]  = s[c, k] * S[k] * theta[c, k]       (original units, Deterministic)

Each element is partially non-centred, ``u = sigma**(1 - w) * z`` with ``z ~ N(0, sigma**w)``,
with a weight ``w`` from the information the data hold about it (``centring="auto"``: centred where
the data pin it down well against its spread, half-centred otherwise; see
:mod:`bayesdecide.model.inputs`). Spreads have
boundary-avoiding Gamma(2) priors by default (:mod:`bayesdecide.model.priors`).

Likelihood (joint over outcomes): with ``L_c = chol(effect_cov_c)`` in standardised units,
``L_c^{-1} effect_c ~ Normal(L_c^{-1} theta_c, 1)``, which is exactly
``effect_c ~ MvNormal(theta_c, effect_cov_c)`` at the cost of one matrix-vector product per cell.
Cells without an estimate (one arm empty) have no likelihood term; their ``tau`` is predicted from
the hierarchy.

Control-arm baselines: ``control_mean[c, k] ~ Normal(alpha[c, k], control_se[c, k])`` with
``alpha`` weakly pooled per outcome (``alpha_std ~ Normal(a[k], 2)``, ``a[k] ~ Normal(0, 2)`` on the
outcome's standardised control scale). The baselines do not enter ``tau``; they are there for
relative lifts and for decisions that need levels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesdecide.model.inputs import ModelInputs, interaction_name
from bayesdecide.model.priors import Prior, resolve_priors


def level_dim(group: str) -> str:
    """Name of the dimension that indexes a factor's (or interaction's) levels."""
    return f"{group}_level"


def modelled_dim(inputs: ModelInputs) -> str:
    """Dimension of the modelled outcomes: ``outcome`` unless some outcomes are derived."""
    return "outcome" if not inputs.derived else "modelled_outcome"


def build_model(
    inputs: ModelInputs,
    priors: Mapping[str, Prior | Mapping[str, Any]] | None = None,
    *,
    baseline: bool = True,
) -> pm.Model:
    """The PyMC model for ``inputs`` (see module docstring). Priors by name override defaults."""
    inter_names = [interaction_name(m) for m in inputs.interactions]
    pri = resolve_priors(inputs.factors, inter_names, priors)
    kdim = modelled_dim(inputs)
    coords: dict[str, list[str]] = {
        "cell": inputs.cells,
        "outcome": inputs.outcomes,
        "obs_cell": [inputs.cells[i] for i in inputs.obs_cells],
    }
    if kdim != "outcome":
        coords[kdim] = inputs.independent
    for g in inputs.groups:
        coords[level_dim(g)] = inputs.levels[g]

    with pm.Model(coords=coords) as model:
        theta = add_structure(inputs, pri, kdim)

        scale = pt.as_tensor_variable(inputs.scale)
        tau_ind = theta * scale
        pm.Deterministic("tau", _assemble(tau_ind, inputs), dims=("cell", "outcome"))

        theta_obs = theta[inputs.obs_cells]
        mean = (pt.as_tensor_variable(inputs.whiten) * theta_obs[:, None, :]).sum(axis=-1)
        pm.Normal("effect_whitened", mu=mean, sigma=1.0, observed=inputs.z, dims=("obs_cell", kdim))

        if baseline and inputs.ctrl_obs.any():
            a = pm.Normal("alpha_mean", 0.0, 2.0, dims=kdim)
            alpha_std = pm.Normal("alpha_std", mu=a, sigma=2.0, dims=("cell", kdim))
            rows, cols = np.nonzero(inputs.ctrl_obs)
            pm.Normal(
                "control_observed",
                mu=alpha_std[rows, cols],
                sigma=inputs.ctrl_se_std[rows, cols],
                observed=inputs.ctrl_std[rows, cols],
            )
            alpha_ind = alpha_std * inputs.ctrl_scale[None, :] + inputs.ctrl_center[None, :]
            pm.Deterministic("alpha", _assemble(alpha_ind, inputs), dims=("cell", "outcome"))
    return model


def add_structure(inputs: ModelInputs, pri: Mapping[str, Prior], kdim: str) -> pt.TensorVariable:
    """Add mu, factor/interaction effects and cell deviations to the current model; return theta.

    ``theta`` (cell, kdim) is a Deterministic in standardised units. Shared by the cell-statistics
    model and the unit-level model so both pool with exactly the same structure and priors.
    """
    mu = pri["mu"].create("mu", dims=kdim)
    theta = pt.zeros((len(inputs.cells), len(inputs.independent))) + mu[None, :]
    members_of = {interaction_name(m): m for m in inputs.interactions}
    for g in inputs.groups:
        sigma = pri[f"sigma_{g}"].create(f"sigma_{g}", dims=kdim)
        # sum-to-zero level effects (mu is the grand mean, no mu/u ridge); an interaction sums to
        # zero along every member's margin, so it cannot absorb main effects (no u/v ridge).
        # Partially non-centred with the outcome's mean centring weight over the levels (one
        # sigma per outcome along the zero-sum axes).
        w = centring_weight(inputs.centred[g])
        members = members_of.get(g, (g,))
        shape = [len(inputs.levels[m]) for m in members]
        z = pm.ZeroSumNormal(
            f"z_{g}",
            sigma=(sigma**w).reshape((-1, *[1] * len(members))),
            shape=(len(inputs.independent), *shape),
            n_zerosum_axes=len(shape),
        )
        z_flat = z.reshape((len(inputs.independent), -1))
        u = pm.Deterministic(
            f"u_{g}", (z_flat * (sigma ** (1.0 - w))[:, None]).T, dims=(level_dim(g), kdim)
        )
        theta = theta + u[inputs.codes[g]]
    sigma_cell = pri["sigma_cell"].create("sigma_cell", dims=kdim)
    nu = pri["cell_nu"].create("cell_nu")
    w_cell = np.asarray(inputs.centred["cell"], dtype=float)  # (cell, kdim) centring weights
    z_cell = pm.StudentT(
        "z_cell", nu=nu, mu=0.0, sigma=sigma_cell[None, :] ** w_cell, dims=("cell", kdim)
    )
    e_cell = z_cell * sigma_cell[None, :] ** (1.0 - w_cell)
    theta = pm.Deterministic("theta", theta + e_cell, dims=("cell", kdim))
    return theta


def centring_weight(centred: np.ndarray) -> np.ndarray:
    """Per-outcome centring weight in [0, 1]: the mean of a (levels, K) array of weights.

    ``u = sigma**(1 - w) * z`` with ``z ~ N(0, sigma**w)``: ``w = 1`` is the centred and ``w = 0``
    the non-centred parameterisation; values between are partially non-centred (Papaspiliopoulos,
    Roberts and Skold 2007).
    """
    return np.asarray(centred, dtype=float).mean(axis=0)


def _assemble(ind: pt.TensorVariable, inputs: ModelInputs) -> pt.TensorVariable:
    """(C, K_ind) tensor -> (C, K) with derived outcomes as linear combinations, in table order."""
    if not inputs.derived:
        return ind
    return pt.dot(ind, pt.as_tensor_variable(assembly_matrix(inputs)))


def assembly_matrix(inputs: ModelInputs) -> np.ndarray:
    """(K_ind, K) matrix taking modelled outcomes to all outcomes (derived ones combined)."""
    m = np.zeros((len(inputs.independent), len(inputs.outcomes)))
    for j, o in enumerate(inputs.outcomes):
        if o in inputs.independent:
            m[inputs.independent.index(o), j] = 1.0
        else:
            m[:, j] = inputs.derive_weights[inputs.derived.index(o)]
    return m


__all__ = ["add_structure", "assembly_matrix", "build_model", "level_dim", "modelled_dim"]
