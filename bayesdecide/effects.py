"""Cell statistics to per-cell effect estimates with their joint sampling covariance (the EffectTable).

For cell c and outcome k the estimate is the difference in arm means (intention to treat, per
assigned unit, in the outcome's unit), optionally regression-adjusted with covariate slopes pooled
across all cells and arms (CUPED / ANCOVA with cell x arm intercepts)::

    effect[c, k] = (ybar[c,T,k] - ybar[c,C,k]) - sum_p beta[p,k] * (xbar[c,T,p] - xbar[c,C,p])

Its sampling covariance between outcomes is ``R[c,T]/n[c,T] + R[c,C]/n[c,C]``, with ``R`` the
(residual) covariance between outcomes within the cell and arm. Outcomes measured on the same units
are correlated (net margin contains gross margin), so the full K x K matrix is kept.

Small cells estimate ``R`` poorly (and a 0/1 outcome can be constant in a small cell), so each
cell-arm covariance is shrunk toward the pooled covariance of its arm with ``prior_df`` pseudo
degrees of freedom (an inverse-Wishart-style prior): negligible for cells of hundreds of units,
and it keeps every cell's matrix positive definite. The uncertainty of the pooled slopes themselves
(order 1/N overall) is ignored.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesdecide.data.cells import CellStats

_ARM_T, _ARM_C = 1, 0


def cell_effects(cells: CellStats, *, adjust: bool = True, prior_df: float = 5.0) -> xr.Dataset:
    """The EffectTable: per-cell effect estimates, their covariance and control-arm baselines.

    Parameters
    ----------
    cells:
        Output of :func:`bayesdecide.cell_stats`.
    adjust:
        Regression-adjust with the spec's covariates (pooled within cell x arm slopes). Ignored when
        the spec has no covariates.
    prior_df:
        Pseudo degrees of freedom of the pooled covariance each cell-arm covariance is shrunk toward.

    Returns
    -------
    xarray.Dataset
        ``effect`` (cell, outcome), ``effect_cov`` (cell, outcome, outcome_b), ``control_mean`` and
        ``control_se`` (cell, outcome), ``n_control`` and ``n_treatment`` (cell), ``observed``
        (cell; False for a cell kept with one arm, whose effect is NaN), ``slopes`` (covariate,
        outcome) when adjusted. Units are the outcome's per assigned unit (dollars, probability,
        counts); the factor labels are coords along ``cell``.
    """
    ds = cells.ds
    n = ds["n"].values  # (C, 2)
    sum_y = ds["sum_y"].values  # (C, 2, K)
    k = sum_y.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_y = sum_y / n[..., None]
        syy = ds["sum_yy"].values - n[..., None, None] * mean_y[..., :, None] * mean_y[..., None, :]
    syy = np.where(n[..., None, None] > 0, syy, 0.0)
    p = ds.sizes["covariate"]
    use_covariates = adjust and p > 0
    slopes = np.zeros((p, k))
    mean_x = np.zeros((*n.shape, p))
    if use_covariates:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_x = ds["sum_x"].values / n[..., None]
        mean_x = np.where(n[..., None] > 0, mean_x, 0.0)
        sxx = ds["sum_xx"].values - n[..., None, None] * mean_x[..., :, None] * mean_x[..., None, :]
        sxy = (
            ds["sum_xy"].values
            - n[..., None, None] * mean_x[..., :, None] * np.nan_to_num(mean_y)[..., None, :]
        )
        sxx = np.where(n[..., None, None] > 0, sxx, 0.0)
        sxy = np.where(n[..., None, None] > 0, sxy, 0.0)
        slopes = np.linalg.solve(sxx.sum(axis=(0, 1)), sxy.sum(axis=(0, 1)))
        # residual cross-products within cell x arm
        syy = (
            syy
            - np.einsum("capk,pj->cakj", sxy, slopes)
            - np.einsum("pk,capj->cakj", slopes, sxy)
            + np.einsum("pk,capq,qj->cakj", slopes, sxx, slopes)
        )
    dof = np.maximum(n - 1.0, 0.0)
    pooled = syy.sum(axis=0) / np.maximum(dof.sum(axis=0), 1.0)[:, None, None]  # (2, K, K)
    cov = (prior_df * pooled[None] + syy) / (prior_df + dof)[..., None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        var_mean = cov / n[..., None, None]
    observed = (n[:, _ARM_T] > 0) & (n[:, _ARM_C] > 0)
    effect = (mean_y[:, _ARM_T] - mean_y[:, _ARM_C]) - (
        (mean_x[:, _ARM_T] - mean_x[:, _ARM_C]) @ slopes
    )
    effect_cov = var_mean[:, _ARM_T] + var_mean[:, _ARM_C]
    effect = np.where(observed[:, None], effect, np.nan)
    effect_cov = np.where(observed[:, None, None], effect_cov, np.nan)
    control_mean = np.where(n[:, _ARM_C, None] > 0, mean_y[:, _ARM_C], np.nan)
    control_se = np.sqrt(np.diagonal(var_mean[:, _ARM_C], axis1=-2, axis2=-1))
    coords = {name: coord for name, coord in ds.coords.items() if name not in ("arm",)}
    out = xr.Dataset(
        {
            "effect": (("cell", "outcome"), effect),
            "effect_cov": (("cell", "outcome", "outcome_b"), effect_cov),
            "control_mean": (("cell", "outcome"), control_mean),
            "control_se": (("cell", "outcome"), control_se),
            "n_control": (("cell",), n[:, _ARM_C]),
            "n_treatment": (("cell",), n[:, _ARM_T]),
            "observed": (("cell",), observed),
        },
        coords=coords,
        attrs={
            "factors": list(ds.attrs.get("factors", [])),
            "adjusted": int(use_covariates),
            "prior_df": float(prior_df),
        },
    )
    if use_covariates:
        out["slopes"] = (("covariate", "outcome"), slopes)
    else:
        out = out.drop_dims(["covariate", "covariate_b"], errors="ignore")
    out = out.drop_dims(["covariate_b"], errors="ignore")
    return out


def average_effect(effects: xr.Dataset, weights: xr.DataArray | None = None) -> xr.Dataset:
    """Weighted average of observed cells' effects and its standard error (no pooling).

    ``weights`` over ``cell`` default to the cells' unit counts (the experiment's mix). Returns
    ``estimate`` and ``std_error`` per outcome, in the outcome's unit per assigned unit.
    """
    observed = effects["observed"]
    if weights is None:
        weights = effects["n_control"] + effects["n_treatment"]
    w = weights.where(observed, 0.0)
    w = w / w.sum()
    est = (effects["effect"].fillna(0.0) * w).sum("cell")
    var = (effects["effect_cov"].fillna(0.0) * w * w).sum("cell")
    se = np.sqrt(
        xr.DataArray(np.diagonal(var.values), dims=["outcome"], coords={"outcome": est.outcome})
    )
    return xr.Dataset({"estimate": est, "std_error": se})


def linear_combinations(
    cells: CellStats, *, tolerance: float = 1e-9
) -> dict[str, dict[str, float]]:
    """Outcomes that are exact linear combinations of other outcomes, unit by unit.

    A net outcome built from components (net = gross - contact - discount - 18 tickets - 35
    annoyance) makes the joint covariance of the cell effects singular, so a joint model must fit
    the components and derive the net outcome. Outcomes are examined in spec order; an outcome is
    *derived* when regressing it on the remaining outcomes (pooled within cell x arm covariance)
    leaves a residual variance below ``tolerance`` times its variance.

    Returns ``{derived outcome: {component: weight}}`` (weights rounded to 10 significant digits;
    components with zero weight omitted).
    """
    ds = cells.ds
    n = ds["n"].values
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = ds["sum_y"].values / n[..., None]
    mean = np.nan_to_num(mean)
    centred = ds["sum_yy"].values - n[..., None, None] * mean[..., :, None] * mean[..., None, :]
    pooled = centred.sum(axis=(0, 1))
    names = list(ds.outcome.values)
    derived: dict[str, dict[str, float]] = {}
    for i, name in enumerate(names):
        others = [j for j in range(len(names)) if j != i and names[j] not in derived]
        if not others or pooled[i, i] <= 0:
            continue
        a = pooled[np.ix_(others, others)]
        b = pooled[others, i]
        coef, *_ = np.linalg.lstsq(a, b, rcond=None)
        residual = pooled[i, i] - b @ coef
        if residual <= tolerance * pooled[i, i]:
            weights = {names[j]: float(f"{c:.10g}") for j, c in zip(others, coef) if abs(c) > 1e-8}
            derived[name] = weights
    return derived
