"""The hierarchy as one linear map from contrast coordinates to cell effects.

For modelled outcome ``k`` and cell ``c`` (standardised units, see :mod:`bayesdecide.model.inputs`)::

    theta[c, k] = mu[k] + sum_p D[c, p] * coef[p, k] + e[c, k]
    coef[p, k]  = zeta[p, k] * S[p, k] ** (1 - W[p, k]),   zeta[p, k] ~ Normal(0, S[p, k] ** W[p, k])
    e[c, k]     = z[c, k] * sigma_cell[k] ** (1 - w[c, k]), z[c, k] ~ StudentT(nu, 0, sigma_cell[k] ** w[c, k])

``p`` runs over the *contrasts* of every factor and interaction ``g``: ``S[p, k]`` is that group's
spread ``sigma_g[k]`` and ``W[p, k]`` its centring weight (1 centred, 0 non-centred, between:
partially non-centred; :mod:`bayesdecide.model.inputs` chooses them). The level effects of a group are
``u_g = B_g @ coef_g`` with ``B_g`` an orthonormal basis of the level effects that sum to zero along
every member's margin (normalised Helmert contrasts; Kronecker products for interactions). With
``coef_g ~ Normal(0, sigma_g^2 I)`` this is exactly PyMC's ``ZeroSumNormal(sigma_g)`` over the
levels (``n_zerosum_axes`` = members), and ``D = sum_g onehot_g @ B_g`` maps contrasts to cells.

One definition serves every path: :func:`cell_effects_from` evaluates it with ``xp=numpy`` on
posterior draws (any leading sample dims) and with ``xp=pytensor.tensor`` inside the PyMC model, and
the compiled log density (:mod:`bayesdecide.model.kernel`) implements the same parameterisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesdecide.model.inputs import ModelInputs, interaction_name


def zero_sum_basis(n_levels: int) -> np.ndarray:
    """(n_levels, n_levels - 1) orthonormal basis of vectors summing to zero (Helmert contrasts)."""
    basis = np.zeros((n_levels, max(n_levels - 1, 0)))
    for j in range(1, n_levels):
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -float(j)
        basis[:, j - 1] /= np.sqrt(j * (j + 1.0))
    return basis


@dataclass(frozen=True)
class Structure:
    """The linear map of the module docstring for one :class:`ModelInputs`.

    Attributes
    ----------
    groups:
        Factor and interaction names, in model order.
    bases:
        Group -> (levels, contrasts) basis ``B_g``.
    contrasts:
        Group -> slice of the contrast axis ``p`` holding that group's coordinates.
    design:
        (cells, contrasts) matrix ``D``.
    group_of_contrast:
        (contrasts,) index into ``groups``.
    level_weight:
        (groups, K) centring weight of each group's contrasts per modelled outcome.
    cell_weight:
        (cells, K) centring weight of each cell deviation.
    contrast_labels:
        ``"<group>[j]"`` per contrast (coords of the ``contrast`` dimension).
    """

    groups: list[str]
    bases: dict[str, np.ndarray]
    contrasts: dict[str, slice]
    design: np.ndarray
    group_of_contrast: np.ndarray
    level_weight: np.ndarray
    cell_weight: np.ndarray
    contrast_labels: list[str]

    @property
    def n_contrasts(self) -> int:
        return int(self.design.shape[1])

    @property
    def contrast_weight(self) -> np.ndarray:
        """(contrasts, K) centring weight ``W``."""
        return self.level_weight[self.group_of_contrast]


def centring_weight(centred: np.ndarray) -> np.ndarray:
    """Per-outcome centring weight in [0, 1]: the mean of a (levels, K) array of weights.

    ``u = sigma**(1 - w) * z`` with ``z ~ N(0, sigma**w)``: ``w = 1`` is the centred and ``w = 0``
    the non-centred parameterisation; values between are partially non-centred (Papaspiliopoulos,
    Roberts and Skold 2007). A group's contrasts mix its levels, so they share one weight.
    """
    return np.asarray(centred, dtype=float).mean(axis=0)


def build_structure(inputs: ModelInputs) -> Structure:
    """The contrast bases, design matrix and centring weights of ``inputs``."""
    members_of = {interaction_name(m): m for m in inputs.interactions}
    n_cells = len(inputs.cells)
    bases: dict[str, np.ndarray] = {}
    contrasts: dict[str, slice] = {}
    blocks, owner, labels, weights = [], [], [], []
    start = 0
    for gi, g in enumerate(inputs.groups):
        basis = np.ones((1, 1))
        for m in members_of.get(g, (g,)):
            basis = np.kron(basis, zero_sum_basis(len(inputs.levels[m])))
        onehot = np.zeros((n_cells, len(inputs.levels[g])))
        onehot[np.arange(n_cells), inputs.codes[g]] = 1.0
        bases[g] = basis
        contrasts[g] = slice(start, start + basis.shape[1])
        start += basis.shape[1]
        blocks.append(onehot @ basis)
        owner += [gi] * basis.shape[1]
        labels += [f"{g}[{j}]" for j in range(basis.shape[1])]
        weights.append(centring_weight(inputs.centred[g]))
    k = len(inputs.independent)
    return Structure(
        groups=list(inputs.groups),
        bases=bases,
        contrasts=contrasts,
        design=np.concatenate(blocks, axis=1) if blocks else np.zeros((n_cells, 0)),
        group_of_contrast=np.asarray(owner, dtype=np.int64),
        level_weight=np.asarray(weights, dtype=float).reshape(len(inputs.groups), k),
        cell_weight=np.asarray(inputs.centred["cell"], dtype=float),
        contrast_labels=labels,
    )


def cell_effects_from(
    st: Structure,
    mu: Any,
    sigmas: list[Any],
    z_levels: Any,
    sigma_cell: Any,
    z_cell: Any,
    xp: Any = np,
) -> tuple[Any, Any, Any]:
    """``(theta, coef, e)`` from the parameters (module docstring), on numpy draws or tensors.

    Shapes, with any leading sample dims ``...``: ``mu`` (..., K), each of ``sigmas`` (one per
    group) and ``sigma_cell`` (..., K), ``z_levels`` (..., contrasts, K), ``z_cell`` (..., C, K).
    ``xp`` is ``numpy`` or ``pytensor.tensor``. Returns ``theta`` (..., C, K), the contrast
    coefficients ``coef`` (..., contrasts, K) and the cell deviations ``e`` (..., C, K).
    """
    if st.n_contrasts:
        spread = xp.stack(sigmas, axis=-2)[..., st.group_of_contrast, :]  # (..., P, K)
        coef = z_levels * spread ** (1.0 - st.contrast_weight)
        grouped = xp.matmul(st.design, coef)
    else:
        coef = z_levels
        grouped = 0.0
    e = z_cell * sigma_cell[..., None, :] ** (1.0 - st.cell_weight)
    theta = mu[..., None, :] + grouped + e
    return theta, coef, e


def level_effects(st: Structure, coef: np.ndarray) -> dict[str, np.ndarray]:
    """Group -> level effects ``u_g = B_g @ coef_g`` (..., levels, K) from contrast coefficients."""
    return {g: np.matmul(st.bases[g], coef[..., st.contrasts[g], :]) for g in st.groups}


__all__ = [
    "Structure",
    "build_structure",
    "cell_effects_from",
    "centring_weight",
    "level_effects",
    "zero_sum_basis",
]
