"""Unit-level path for small data: exact likelihoods per row, same factor structure on the effect.

For outcome ``y`` with family ``F`` and link ``g`` (one model per outcome)::

    g(E[y_i]) = a[c_i] + b[c_i] * T_i
    b[c] = theta[c] * s[c] * S / g'(mean_c)      theta: the cell-statistics model's structure
                                                 (mu + factor effects + cell deviation, same
                                                 priors, same standardised scale s[c] * S)
    a[c] = a0 + sigma_a * z_a[c]                 (weakly pooled baselines on the link scale)

Families: ``normal`` / ``studentt`` (identity link, per-cell residual sd), ``bernoulli`` (logit),
``poisson`` / ``negbinomial`` (log). The additive (ITT) effect of cell ``c`` per draw is
``g^{-1}(a[c] + b[c]) - g^{-1}(a[c])``: with only cell-level predictors every unit of a cell has
the same conditional means, so this is the mean over the cell's units of
``E[y | T=1] - E[y | T=0]``. The standardised scale is carried to the link scale by the delta
method, so both paths put about the same prior on the additive effect.

This path costs O(rows) per gradient; use it to check the cell-statistics model on small data
(it agrees within Monte Carlo error plus a fraction of the posterior sd) or for outcomes whose
sampling distribution is far from normal in small cells.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayesdecide.errors import DataValidationError, SpecError
from bayesdecide.model.hierarchical import add_structure, level_dim
from bayesdecide.model.inputs import build_inputs, interaction_name
from bayesdecide.model.priors import resolve_priors
from bayesdecide.spec import ExperimentSpec, OutcomeKind

FAMILIES = ("normal", "studentt", "bernoulli", "poisson", "negbinomial")
_DEFAULT_FAMILY = {
    OutcomeKind.CONTINUOUS: "normal",
    OutcomeKind.BINARY: "bernoulli",
    OutcomeKind.COUNT: "poisson",
}


def build_unit_model(
    data: pd.DataFrame,
    spec: ExperimentSpec,
    outcome: str,
    *,
    family: str | None = None,
    factors: Sequence[str] | None = None,
    interactions: Sequence[Sequence[str]] = (),
    priors: Mapping[str, Any] | None = None,
) -> tuple[pm.Model, list[str]]:
    """The unit-level PyMC model of one outcome; returns the model and the cell labels.

    The treatment coefficient has exactly the structure and priors of the cell-statistics model
    (:func:`~bayesdecide.model.hierarchical.add_structure` on the same standardised inputs). On a
    non-identity link the standardised scale is carried to the link scale by the delta method
    (``d p = p (1 - p) d logit p``, ``d rate = rate d log rate``), so the two paths put
    approximately the same prior on the additive effect.
    """
    from bayesdecide.data.cells import CELL_SEPARATOR, cell_stats
    from bayesdecide.effects import cell_effects

    kind = spec.outcome(outcome).kind
    family = family or _DEFAULT_FAMILY[kind]
    if family not in FAMILIES:
        raise SpecError(f"family={family!r}: use one of {FAMILIES}")
    factors = list(spec.groups if factors is None else factors)
    missing = [c for c in [spec.treatment, outcome, *factors] if c not in data.columns]
    if missing:
        raise DataValidationError(f"data has no column(s) {missing}")
    sub_spec = ExperimentSpec(
        treatment=spec.treatment,
        outcomes=(spec.outcome(outcome),),
        groups=tuple(factors),
        arms=spec.arms,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = cell_effects(cell_stats(data, sub_spec, single_arm_cells="keep"), adjust=False)
    inputs = build_inputs(table, outcomes=[outcome], factors=factors, interactions=interactions)
    pri = resolve_priors(factors, [interaction_name(m) for m in inputs.interactions], priors)

    frame = data[[spec.treatment, outcome, *factors]]
    t = (frame[spec.treatment].to_numpy() == spec.arms[1]).astype(float)
    y = frame[outcome].to_numpy(dtype=float)
    labels = frame[factors].astype(str).agg(CELL_SEPARATOR.join, axis=1)
    cells = inputs.cells
    cell_idx = pd.Categorical(labels, categories=cells).codes
    if np.any(cell_idx < 0):
        raise DataValidationError("rows whose group labels match no cell of the cell statistics")

    identity = family in ("normal", "studentt")
    mean_c = np.bincount(cell_idx, weights=y, minlength=len(cells)) / np.maximum(
        np.bincount(cell_idx, minlength=len(cells)), 1
    )
    if identity:
        deriv = np.ones(len(cells))
    elif family == "bernoulli":
        p = np.clip(mean_c, 0.02, 0.98)
        deriv = p * (1 - p)
    else:
        deriv = np.maximum(mean_c, 1e-3)
    link_scale = inputs.scale[:, 0] / deriv
    sd = float(np.std(y)) or 1.0
    coords: dict[str, Any] = {"cell": cells, "outcome": [outcome]}
    for g in inputs.groups:
        coords[level_dim(g)] = inputs.levels[g]
    with pm.Model(coords=coords) as model:
        theta = add_structure(inputs, pri, "outcome")
        b = pm.Deterministic("b", theta[:, 0] * link_scale, dims="cell")
        if identity:
            a0 = pm.Normal("a0", float(np.mean(y)), 2 * sd)
        elif family == "bernoulli":
            pbar = np.clip(np.mean(y), 1e-3, 1 - 1e-3)
            a0 = pm.Normal("a0", float(np.log(pbar / (1 - pbar))), 2.0)
        else:
            a0 = pm.Normal("a0", float(np.log(max(np.mean(y), 1e-3))), 2.0)
        sigma_a = pm.HalfNormal("sigma_a", 2.0 * (sd if identity else 1.0))
        z_a = pm.Normal("z_a", 0.0, 1.0, dims="cell")
        a = pm.Deterministic("a", a0 + sigma_a * z_a, dims="cell")
        eta = a[cell_idx] + b[cell_idx] * t
        if identity:
            sig = pm.HalfNormal("sigma_y", 2 * sd, dims="cell")
            if family == "normal":
                pm.Normal("y", eta, sig[cell_idx], observed=y)
            else:
                nu = pm.Gamma("nu", 2.0, 0.1)
                pm.StudentT("y", nu=nu, mu=eta, sigma=sig[cell_idx], observed=y)
            tau = b
        elif family == "bernoulli":
            pm.Bernoulli("y", logit_p=eta, observed=y)
            tau = pm.math.sigmoid(a + b) - pm.math.sigmoid(a)
        else:
            if family == "poisson":
                pm.Poisson("y", pt.exp(eta), observed=y)
            else:
                alpha = pm.Gamma("nb_alpha", 2.0, 0.5)
                pm.NegativeBinomial("y", mu=pt.exp(eta), alpha=alpha, observed=y)
            tau = pt.exp(a + b) - pt.exp(a)
        pm.Deterministic("tau", tau, dims="cell")
    return model, cells


def fit_unit_level(
    data: pd.DataFrame,
    spec: ExperimentSpec,
    outcome: str,
    *,
    family: str | None = None,
    factors: Sequence[str] | None = None,
    interactions: Sequence[Sequence[str]] = (),
    priors: Mapping[str, Any] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 1,
    sampler: str = "nutpie",
    target_accept: float = 0.9,
    progressbar: bool = False,
    cores: int | None = None,
    **options: Any,
) -> tuple[xr.DataArray, az.InferenceData]:
    """Fit the unit-level model of one outcome; return (``tau`` (chain, draw, cell), idata).

    Effects are additive per assigned unit in the outcome's units (probability for binary
    outcomes), comparable with ``Fit.tau.sel(outcome=outcome)``.
    """
    from bayesdecide.fit import _sample

    model, _ = build_unit_model(
        data,
        spec,
        outcome,
        family=family,
        factors=factors,
        interactions=interactions,
        priors=priors,
    )
    idata = _sample(
        model,
        sampler=sampler,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        target_accept=target_accept,
        progressbar=progressbar,
        cores=cores,
        **options,
    )
    return idata.posterior["tau"], idata


__all__ = ["FAMILIES", "build_unit_model", "fit_unit_level"]
