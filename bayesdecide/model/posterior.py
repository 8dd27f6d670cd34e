"""Posterior draws of the model's parameters -> the labelled posterior a Fit holds.

Every sampler returns the same constrained parameters (``mu``, ``sigma_<group>``, ``sigma_cell``,
``cell_nu`` unless fixed, ``z_levels``, ``z_cell``; leading dims chain and draw). This module
derives the level effects ``u_<group>``, ``theta`` and ``tau`` from them with
:func:`~bayesdecide.model.structure.cell_effects_from` (the function the PyMC model uses) and
labels everything with the real level names.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from bayesdecide.model.hierarchical import level_dim, modelled_dim
from bayesdecide.model.inputs import ModelInputs, assemble_outcomes
from bayesdecide.model.priors import Prior
from bayesdecide.model.structure import Structure, cell_effects_from, level_effects


def spread_draws(
    params: Mapping[str, np.ndarray], priors: Mapping[str, Prior], name: str, shape: tuple[int, ...]
) -> np.ndarray:
    """Draws of a spread (chain, draw, K); a ``Fixed`` prior's value broadcast to that shape."""
    if name in params:
        return np.asarray(params[name], dtype=float)
    return np.full(shape, priors[name].kwargs["value"])


def posterior_dataset(
    inputs: ModelInputs,
    st: Structure,
    priors: Mapping[str, Prior],
    params: Mapping[str, np.ndarray],
    alpha: np.ndarray | None = None,
) -> xr.Dataset:
    """The labelled posterior from parameter draws (and control baselines ``alpha``, if any).

    Units: ``tau`` and ``alpha`` (chain, draw, cell, outcome) in the outcome's units per assigned
    unit; everything else in standardised units (1 = a typical observed effect of the outcome).
    """
    mu = np.asarray(params["mu"], dtype=float)
    n_chain, n_draw, k = mu.shape
    sample = (n_chain, n_draw, k)
    sigmas = [spread_draws(params, priors, f"sigma_{g}", sample) for g in st.groups]
    sigma_cell = spread_draws(params, priors, "sigma_cell", sample)
    z_levels = np.asarray(params.get("z_levels", np.zeros((n_chain, n_draw, 0, k))), dtype=float)
    z_cell = np.asarray(params["z_cell"], dtype=float)
    theta, coef, _ = cell_effects_from(st, mu, sigmas, z_levels, sigma_cell, z_cell)
    tau = assemble_outcomes(theta * inputs.scale, inputs)

    kdim = modelled_dim(inputs)
    sdims = ("chain", "draw")
    data: dict[str, tuple[tuple[str, ...], np.ndarray]] = {"mu": ((*sdims, kdim), mu)}
    for g, s in zip(st.groups, sigmas, strict=True):
        data[f"sigma_{g}"] = ((*sdims, kdim), s)
    data["sigma_cell"] = ((*sdims, kdim), sigma_cell)
    if "cell_nu" in params:
        data["cell_nu"] = (sdims, np.asarray(params["cell_nu"], dtype=float))
    if st.n_contrasts:
        data["z_levels"] = ((*sdims, "contrast", kdim), z_levels)
    data["z_cell"] = ((*sdims, "cell", kdim), z_cell)
    for g, u in level_effects(st, coef).items():
        data[f"u_{g}"] = ((*sdims, level_dim(g), kdim), u)
    data["theta"] = ((*sdims, "cell", kdim), theta)
    data["tau"] = ((*sdims, "cell", "outcome"), tau)
    if alpha is not None:
        data["alpha"] = ((*sdims, "cell", "outcome"), alpha)

    coords: dict[str, object] = {
        "chain": np.arange(n_chain),
        "draw": np.arange(n_draw),
        "cell": inputs.cells,
        "outcome": inputs.outcomes,
        "contrast": st.contrast_labels,
    }
    if kdim != "outcome":
        coords[kdim] = inputs.independent
    for g in st.groups:
        coords[level_dim(g)] = inputs.levels[g]
    for f in inputs.factors:
        coords[f] = ("cell", np.asarray(inputs.table[f].values).astype(str).astype(object))
    if not st.n_contrasts:
        coords.pop("contrast")
    return xr.Dataset(data, coords=coords)


def sampled_variables(posterior: xr.Dataset, priors: Mapping[str, Prior]) -> list[str]:
    """The quantities whose sampler diagnostics matter: hypermeans, free spreads, levels, tau."""
    names = []
    for v in posterior.data_vars:
        name = str(v)
        if name in ("mu", "cell_nu", "tau") or name.startswith("u_"):
            names.append(name)
        elif name.startswith("sigma_") and priors[name].family != "Fixed":
            names.append(name)
    return names


__all__ = ["posterior_dataset", "sampled_variables", "spread_draws"]
