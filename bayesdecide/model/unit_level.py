"""Unit-level path for small data: exact likelihoods per row, the same hierarchy on the effect.

For outcome ``y`` with family ``F`` and link ``g`` (one model per outcome), unit ``i`` in cell ``c``::

    y_i ~ F(mean = m0[c] if control, m1[c] = m0[c] + tau[c] if treated)
    tau[c] = theta[c] * s[c] * S     additive ITT effect; theta: the cell-statistics model's
                                     structure (same priors, same standardised scale)

Families and links: ``normal`` / ``studentt`` (identity; a residual variance per cell and arm with
the cell path's shrinkage as its prior, see :func:`bayesdecide.data.effects.variance_guess`),
``bernoulli`` (logit), ``poisson`` / ``negbinomial`` (log). The hierarchy sits on the additive
effect, as in the cell-statistics path, so the two models differ only in the likelihood (exact here,
normal on cell means there) and can be compared cell by cell. ``a`` and ``b`` (Deterministics) are
the control arm's linear predictor and the treatment coefficient on the link scale; per draw
``tau = g^{-1}(a + b) - g^{-1}(a)``.

The control and treated means of a cell are placed by one free parameter per cell given ``tau``
(:func:`_arm_means`), so both stay inside the outcome's support (probabilities in (0, 1), positive
rates) for every effect the hierarchy proposes: the effect's prior is the hierarchy's, untruncated,
and the sampler meets no wall. That parameter has a weak prior, independent per cell, centred on
the overall mean; the control means are not pooled. The cell path's effect estimate is a difference
of arm means, which leaves every cell's control mean free; pooling them here would let the
baselines' structure move the effects and the two paths would no longer estimate the same thing.

This path costs O(rows) per gradient; use it to check the cell-statistics model on small data or
for outcomes whose sampling distribution is far from normal in small cells.
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

from bayesdecide.data.spec import ExperimentSpec, OutcomeKind
from bayesdecide.errors import DataValidationError, SpecError
from bayesdecide.model.defaults import FIT_DEFAULTS, FULL_MODEL_TUNE
from bayesdecide.model.engine import MarginalModel
from bayesdecide.model.inputs import build_inputs
from bayesdecide.model.reference import add_hierarchy, reference_coords
from bayesdecide.model.sampling import default_cores

FAMILIES = ("normal", "studentt", "bernoulli", "poisson", "negbinomial")
_DEFAULT_FAMILY = {
    OutcomeKind.CONTINUOUS: "normal",
    OutcomeKind.BINARY: "bernoulli",
    OutcomeKind.COUNT: "poisson",
}
_SMOOTH = 1e-3  # smooths |tau| at 0 (probabilities within 5e-4 of 0 or 1 are left out)
_LINK = {
    "normal": "identity",
    "studentt": "identity",
    "bernoulli": "logit",
    "poisson": "log",
    "negbinomial": "log",
}


def _link(link: str, mean: Any) -> Any:
    return {"identity": lambda v: v, "logit": pm.math.logit, "log": pt.log}[link](mean)


def _arm_means(link: str, tau: Any, center: float, spread: float) -> tuple[Any, Any]:
    """Control and treated means per cell, ``m1 = m0 + tau``, both inside the outcome's support.

    A free ``a_raw[c] ~ Normal(center, 2 x spread)`` (independent per cell) places the pair:
    identity link, ``m0 = a_raw``; logit, the mean of the two probabilities is
    ``h + (1 - 2h) sigmoid(a_raw)`` with ``h = sqrt(tau^2 + eps^2) / 2``; log, the mean of the two
    rates is ``sqrt(tau^2 / 4 + exp(2 a_raw))``. At ``tau = 0`` each is ``g^{-1}(a_raw)``.
    """
    raw = pm.Normal("a_raw", center, 2.0 * spread, dims="cell")
    if link == "identity":
        return raw, raw + tau
    if link == "logit":
        half = pt.sqrt(tau**2 + _SMOOTH**2) / 2
        mid = half + (1 - 2 * half) * pm.math.sigmoid(raw)
    else:
        mid = pt.sqrt(tau**2 / 4 + pt.exp(2 * raw))
    return mid - tau / 2, mid + tau / 2


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

    The additive effect has exactly the structure and priors of the cell-statistics model
    (:func:`~bayesdecide.model.reference.add_hierarchy` on the same standardised inputs).
    """
    from bayesdecide.data.cells import CELL_SEPARATOR, cell_stats
    from bayesdecide.data.effects import cell_effects, variance_guess

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
        stats = cell_stats(data, sub_spec, single_arm_cells="keep")
    table = cell_effects(stats, adjust=False)
    inputs = build_inputs(table, outcomes=[outcome], factors=factors, interactions=interactions)
    hierarchy_model = MarginalModel.build(inputs, priors)

    frame = data[[spec.treatment, outcome, *factors]]
    treated = (frame[spec.treatment].to_numpy() == spec.arms[1]).astype(np.int64)
    y = frame[outcome].to_numpy(dtype=float)
    labels = frame[factors].astype(str).agg(CELL_SEPARATOR.join, axis=1)
    cells = inputs.cells
    cell_idx = pd.Categorical(labels, categories=cells).codes.astype(np.int64)
    if np.any(cell_idx < 0):
        raise DataValidationError("rows whose group labels match no cell of the cell statistics")

    link = _LINK[family]
    sd = float(np.std(y)) or 1.0
    if link == "identity":
        center, spread = float(np.mean(y)), sd
    elif link == "logit":
        pbar = float(np.clip(np.mean(y), 1e-3, 1 - 1e-3))
        center, spread = float(np.log(pbar / (1 - pbar))), 1.0
    else:
        center, spread = float(np.log(max(np.mean(y), 1e-3))), 1.0
    coords: dict[str, Any] = {
        **reference_coords(hierarchy_model),
        "outcome": [outcome],
        "arm": list(spec.arms),
    }
    control, treated_rows = treated == 0, treated == 1
    c0, c1 = cell_idx[control], cell_idx[treated_rows]
    y0, y1 = y[control], y[treated_rows]
    with pm.Model(coords=coords) as model:
        theta = add_hierarchy(hierarchy_model)
        tau = pm.Deterministic("tau", theta[:, 0] * inputs.scale[:, 0], dims="cell")
        m0, m1 = _arm_means(link, tau, center, spread)
        a = pm.Deterministic("a", _link(link, m0), dims="cell")
        pm.Deterministic("b", _link(link, m1) - a, dims="cell")
        if family in ("normal", "studentt"):
            # the cell path's shrinkage of each cell-arm variance as a prior: scaled
            # inverse chi-square with prior_df degrees of freedom around the same guess
            df0 = float(table.attrs["prior_df"])
            guess = np.maximum(variance_guess(stats)[..., 0], 1e-6 * sd**2)  # (cell, arm)
            var_y = pm.InverseGamma("var_y", df0 / 2, df0 * guess / 2, dims=("cell", "arm"))
            sd0, sd1 = pt.sqrt(var_y[c0, 0]), pt.sqrt(var_y[c1, 1])
            if family == "normal":
                pm.Normal("y_control", m0[c0], sd0, observed=y0)
                pm.Normal("y_treated", m1[c1], sd1, observed=y1)
            else:
                nu = pm.Gamma("nu", 2.0, 0.1)
                pm.StudentT("y_control", nu=nu, mu=m0[c0], sigma=sd0, observed=y0)
                pm.StudentT("y_treated", nu=nu, mu=m1[c1], sigma=sd1, observed=y1)
        elif family == "bernoulli":
            pm.Bernoulli("y_control", p=m0[c0], observed=y0)
            pm.Bernoulli("y_treated", p=m1[c1], observed=y1)
        elif family == "poisson":
            pm.Poisson("y_control", m0[c0], observed=y0)
            pm.Poisson("y_treated", m1[c1], observed=y1)
        else:
            alpha = pm.Gamma("nb_alpha", 2.0, 0.5)
            pm.NegativeBinomial("y_control", mu=m0[c0], alpha=alpha, observed=y0)
            pm.NegativeBinomial("y_treated", mu=m1[c1], alpha=alpha, observed=y1)
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
    draws: int = FIT_DEFAULTS["draws"],
    tune: int = FULL_MODEL_TUNE,
    chains: int = FIT_DEFAULTS["chains"],
    seed: int = FIT_DEFAULTS["seed"],
    sampler: str = "nutpie",
    target_accept: float = 0.9,  # row likelihoods (logit, log links) need smaller steps
    progressbar: bool = False,
    cores: int | None = None,
    **options: Any,
) -> tuple[xr.DataArray, az.InferenceData]:
    """Fit the unit-level model of one outcome; return (``tau`` (chain, draw, cell), idata).

    Effects are additive per assigned unit in the outcome's units (probability for binary
    outcomes), comparable with ``Fit.tau.sel(outcome=outcome)``. ``sampler`` is ``"nutpie"``
    (nutpie on the PyMC model, compiled by PyTensor) or ``"pymc"``.
    """
    model, _ = build_unit_model(
        data,
        spec,
        outcome,
        family=family,
        factors=factors,
        interactions=interactions,
        priors=priors,
    )
    cores = cores or default_cores(chains)
    if sampler == "nutpie":
        import nutpie

        idata = nutpie.sample(
            nutpie.compile_pymc_model(model),
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            target_accept=target_accept,
            progress_bar=progressbar,
            cores=cores,
            save_warmup=False,
            **options,
        )
    elif sampler == "pymc":
        with model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                random_seed=seed,
                target_accept=target_accept,
                progressbar=progressbar,
                compute_convergence_checks=False,
                **options,
            )
    else:
        raise SpecError(f"sampler={sampler!r}: use 'nutpie' or 'pymc'")
    return idata.posterior["tau"], idata


__all__ = ["FAMILIES", "build_unit_model", "fit_unit_level"]
