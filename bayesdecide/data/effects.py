"""Cell statistics to per-cell effect estimates with their joint sampling covariance (the EffectTable).

For cell c and outcome k the estimate is the difference in arm means (intention to treat, per
assigned unit, in the outcome's unit), optionally regression-adjusted with covariate slopes pooled
across all cells and arms (CUPED / ANCOVA with cell x arm intercepts)::

    effect[c, k] = (ybar[c,T,k] - ybar[c,C,k]) - sum_p beta[p,k] * (xbar[c,T,p] - xbar[c,C,p])

Its sampling covariance between outcomes is ``R[c,T]/n[c,T] + R[c,C]/n[c,C]``, with ``R`` the
(residual) covariance between outcomes within the cell and arm. Outcomes measured on the same units
are correlated (net margin contains gross margin), so the full K x K matrix is kept.

Multi-arm experiments (k >= 2 treatment arms ``a`` against one control ``C``): each arm's effect is
its difference from the *shared* control, ``effect[c, a, k] = (ybar[c,a,k] - ybar[c,C,k]) -
sum_p beta[p,k] (xbar[c,a,p] - xbar[c,C,p])``, and the joint sampling covariance over arms and
outcomes is::

    Cov(effect[c,a,k], effect[c,b,l]) = [a == b] R[c,a,k,l] / n[c,a] + R[c,C,k,l] / n[c,C]

The arms' means are independent (different units), but every effect subtracts the same control
mean, so two arms' effects covary by the control mean's sampling covariance ``R[c,C] / n[c,C]``
(for one outcome and equal arm sizes n: correlation 1/2). The slopes are pooled over every cell
and arm.

Small cells estimate ``R`` poorly (and a 0/1 outcome can be constant in a small cell), so each
cell-arm covariance is shrunk toward a prior guess with ``prior_df`` pseudo degrees of freedom (an
inverse-Wishart-style prior): negligible for cells of hundreds of units, and it keeps every cell's
matrix positive definite. The guess (:func:`shrinkage_target`) is the arm's pooled correlation with
each outcome's standard deviation smoothed over the factors' main effects, so a nine-customer
Enterprise cell borrows the spread of Enterprise and of its risk band, not that of the whole
experiment (dominated by SMB cells with a tenth of the spread). Outcomes that are exact linear
combinations of others keep that identity in the guess. The uncertainty of the pooled slopes
themselves (order 1/N overall) is ignored.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesdecide.data.cells import CellStats
from bayesdecide.data.smoothing import predict_log, smooth_log_on_factors
from bayesdecide.errors import DataValidationError, SpecError

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
        Two-arm experiment: ``effect`` (cell, outcome), ``effect_cov`` (cell, outcome, outcome_b),
        ``control_mean`` and ``control_se`` (cell, outcome), ``n_control`` and ``n_treatment``
        (cell), ``observed`` (cell; False for a cell kept with one arm, whose effect is NaN),
        ``slopes`` (covariate, outcome) when adjusted.

        Multi-arm experiment: the same with a ``treatment_arm`` dim (the treatment arms, not the
        control): ``effect`` (cell, treatment_arm, outcome), each arm minus the shared control;
        ``effect_cov`` (cell, treatment_arm, outcome, treatment_arm_b, outcome_b), the joint
        sampling covariance including the covariance between arms that the shared control induces
        (module docstring); ``n_treatment`` and ``observed`` (cell, treatment_arm; an arm without
        units in a cell, or a cell without control units, has NaN effects and NaN covariance rows
        and columns). ``attrs["control_arm"]`` names the control.

        Units are the outcome's per assigned unit (dollars, probability, counts); the factor
        labels are coords along ``cell``.
    """
    ds = cells.ds
    n, mean_y, syy = within_cross_products(cells)
    k = mean_y.shape[-1]
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
        pooled_xx = sxx.sum(axis=(0, 1))
        _check_covariates(pooled_xx, [str(c) for c in ds["covariate"].values])
        slopes = np.linalg.solve(pooled_xx, sxy.sum(axis=(0, 1)))
        # residual cross-products within cell x arm
        syy = (
            syy
            - np.einsum("capk,pj->cakj", sxy, slopes)
            - np.einsum("pk,capj->cakj", slopes, sxy)
            + np.einsum("pk,capq,qj->cakj", slopes, sxx, slopes)
        )
    dof = np.maximum(n - 1.0, 0.0)
    target = shrinkage_target(syy, dof, factor_codes(cells))
    cov = (prior_df * target + syy) / (prior_df + dof)[..., None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        var_mean = cov / n[..., None, None]
    # every treatment arm (1..A-1) against the control (0)
    observed = (n[:, 1:] > 0) & (n[:, :1] > 0)  # (cell, arm)
    effect = np.stack(
        [
            (mean_y[:, a] - mean_y[:, _ARM_C]) - ((mean_x[:, a] - mean_x[:, _ARM_C]) @ slopes)
            for a in range(1, n.shape[1])
        ],
        axis=1,
    )
    effect = np.where(observed[..., None], effect, np.nan)
    effect_cov = _joint_covariance(var_mean, observed)
    control_mean = np.where(n[:, _ARM_C, None] > 0, mean_y[:, _ARM_C], np.nan)
    control_se = np.sqrt(np.diagonal(var_mean[:, _ARM_C], axis1=-2, axis2=-1))
    coords = {name: coord for name, coord in ds.coords.items() if name not in ("arm",)}
    attrs = {
        "factors": list(ds.attrs.get("factors", [])),
        "adjusted": int(use_covariates),
        "prior_df": float(prior_df),
    }
    if cells.spec.multi_arm:
        arms = list(cells.spec.treatment_arms)
        coords.update(treatment_arm=arms, treatment_arm_b=arms)
        attrs["control_arm"] = cells.spec.arm_labels[0]
        variables = {
            "effect": (("cell", "treatment_arm", "outcome"), effect),
            "effect_cov": (
                ("cell", "treatment_arm", "outcome", "treatment_arm_b", "outcome_b"),
                effect_cov,
            ),
            "n_treatment": (("cell", "treatment_arm"), n[:, 1:]),
            "observed": (("cell", "treatment_arm"), observed),
        }
    else:
        variables = {
            "effect": (("cell", "outcome"), effect[:, 0]),
            "effect_cov": (("cell", "outcome", "outcome_b"), effect_cov[:, 0, :, 0, :]),
            "n_treatment": (("cell",), n[:, _ARM_T]),
            "observed": (("cell",), observed[:, 0]),
        }
    out = xr.Dataset(
        {
            "effect": variables["effect"],
            "effect_cov": variables["effect_cov"],
            "control_mean": (("cell", "outcome"), control_mean),
            "control_se": (("cell", "outcome"), control_se),
            "n_control": (("cell",), n[:, _ARM_C]),
            "n_treatment": variables["n_treatment"],
            "observed": variables["observed"],
        },
        coords=coords,
        attrs=attrs,
    )
    if use_covariates:
        out["slopes"] = (("covariate", "outcome"), slopes)
    else:
        out = out.drop_dims(["covariate", "covariate_b"], errors="ignore")
    out = out.drop_dims(["covariate_b"], errors="ignore")
    return out


def _joint_covariance(var_mean: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Joint sampling covariance (cell, T, K, T, K) of the T treatment arms' effects against the
    shared control, from the variances of the arm means ``var_mean`` (cell, arm, K, K; arm 0 is
    the control): the control's for every pair of arms, plus the arm's own on the diagonal
    blocks. Rows and columns of an arm that is not ``observed`` (cell, T) in a cell are NaN."""
    n_cells, n_arms, k = var_mean.shape[:3]
    t = n_arms - 1
    out = np.zeros((n_cells, t, k, t, k))
    out += var_mean[:, _ARM_C][:, None, :, None, :]
    for a in range(t):
        out[:, a, :, a, :] += var_mean[:, a + 1]
    missing = ~observed
    out = np.where(missing[:, :, None, None, None], np.nan, out)
    return np.where(missing[:, None, None, :, None], np.nan, out)


def is_multi_arm(effects: xr.Dataset) -> bool:
    """Whether an EffectTable is a multi-arm one (it has a ``treatment_arm`` dim)."""
    return "treatment_arm" in effects.dims


def arm_effects(effects: xr.Dataset, arm: str) -> xr.Dataset:
    """One treatment arm of a multi-arm EffectTable against the control, in the two-arm layout:
    ``effect`` (cell, outcome), ``effect_cov`` (cell, outcome, outcome_b), ``n_treatment`` and
    ``observed`` (cell), the control's variables as they are; ``attrs["treatment_arm"]`` names
    the arm. A two-arm table is returned unchanged."""
    if not is_multi_arm(effects):
        return effects
    arms = [str(a) for a in effects["treatment_arm"].values]
    if arm not in arms:
        raise SpecError(f"the EffectTable has no treatment arm {arm!r}; its arms are {arms}")
    out = effects.sel(treatment_arm=arm, treatment_arm_b=arm).drop_vars(
        ["treatment_arm", "treatment_arm_b"]
    )
    out.attrs = {**effects.attrs, "treatment_arm": arm}
    return out


def _check_covariates(pooled_xx: np.ndarray, names: list[str]) -> None:
    """Raise if the pooled within cell x arm cross-products of the covariates are singular: a
    covariate that does not vary within any cell x arm, or one that is a linear combination of
    the others (the slopes would not be identified)."""
    scale = np.sqrt(np.clip(np.diagonal(pooled_xx), 0.0, None))
    flat = [
        n for n, s in zip(names, scale, strict=True) if not s > 1e-12 * max(scale.max(), 1e-300)
    ]
    if flat:
        raise DataValidationError(
            f"covariate(s) {flat} do not vary within any cell and arm (they are fixed by the "
            "groups), so they cannot adjust the effects; remove them from the spec's covariates "
            "(or pass adjust=False)"
        )
    combos = exact_combinations(pooled_xx)
    if combos:
        i, weights = next(iter(combos.items()))
        big = np.abs(weights).max()
        parts = [f"{w:.6g} x {names[j]!r}" for j, w in enumerate(weights) if abs(w) > 1e-8 * big]
        raise DataValidationError(
            f"covariate {names[i]!r} is a linear combination of other covariates within cells "
            f"({' + '.join(parts)}), so the adjustment slopes are not identified; remove it (or "
            "one of those) from the spec's covariates"
        )


def within_cross_products(cells: CellStats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Units ``n`` (cell, arm), means (cell, arm, K) and centred cross-products (cell, arm, K, K)
    of the outcomes within each cell and arm (NaN means and zero cross-products in empty arms)."""
    ds = cells.ds
    n = ds["n"].values
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_y = ds["sum_y"].values / n[..., None]
        syy = ds["sum_yy"].values - n[..., None, None] * mean_y[..., :, None] * mean_y[..., None, :]
    return n, mean_y, np.where(n[..., None, None] > 0, syy, 0.0)


def factor_codes(cells: CellStats) -> dict[str, np.ndarray]:
    """Level index (cell,) of every grouping factor."""
    ds = cells.ds
    return {
        f: np.unique(np.asarray(ds[f].values).astype(str), return_inverse=True)[1]
        for f in cells.factors
    }


def exact_combinations(cross: np.ndarray, tolerance: float = 1e-9) -> dict[int, np.ndarray]:
    """Outcomes that are exact linear combinations of others, from pooled cross-products (K, K).

    Outcomes are examined in order; one is *derived* when regressing it on the outcomes not yet
    derived leaves a residual below ``tolerance`` times its variance. Returns ``{derived index:
    weights (K,)}`` over the outcomes that are not derived (zero elsewhere).
    """
    k = cross.shape[0]
    derived: list[int] = []
    for i in range(k):
        others = [j for j in range(k) if j != i and j not in derived]
        if not others or cross[i, i] <= 0:
            continue
        coef, *_ = np.linalg.lstsq(cross[np.ix_(others, others)], cross[others, i], rcond=None)
        if cross[i, i] - cross[others, i] @ coef <= tolerance * cross[i, i]:
            derived.append(i)
    independent = [j for j in range(k) if j not in derived]
    out = {}
    for i in derived:
        coef, *_ = np.linalg.lstsq(
            cross[np.ix_(independent, independent)], cross[independent, i], rcond=None
        )
        weights = np.zeros(k)
        weights[independent] = coef
        out[i] = weights
    return out


def shrinkage_target(syy: np.ndarray, dof: np.ndarray, codes: dict[str, np.ndarray]) -> np.ndarray:
    """Prior guess (cell, arm, K, K) of each cell-arm's within covariance of the outcomes.

    ``syy`` (cell, arm, K, K) are centred (or residual) cross-products, ``dof`` (cell, arm) their
    degrees of freedom, ``codes`` the factor level index of every cell. Per arm and outcome, the log
    variance is smoothed over the factors' main effects (weights: degrees of freedom; cells
    with zero variance are left out of the fit); the guess is the arm's pooled correlation scaled by
    those standard deviations. Outcomes found by :func:`exact_combinations` are given by their
    identity, so the guess (and the shrunk covariance) keeps it exactly.
    """
    n_cells, n_arms, k = syy.shape[:3]
    derived = exact_combinations(syy.sum(axis=(0, 1)))
    ind = [j for j in range(k) if j not in derived]
    mapping = np.zeros((len(ind), k))  # independent outcomes -> all outcomes
    mapping[np.arange(len(ind)), ind] = 1.0
    for i, weights in derived.items():
        mapping[:, i] = weights[ind]
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.diagonal(syy, axis1=-2, axis2=-1)[..., ind] / dof[..., None]
    levels = {f: np.unique(c) for f, c in codes.items()}
    sd = np.zeros((n_cells, n_arms, len(ind)))
    for a in range(n_arms):
        for j in range(len(ind)):
            ok = (dof[:, a] > 0) & np.isfinite(var[:, a, j]) & (var[:, a, j] > 0)
            if not ok.any():
                continue
            coef = smooth_log_on_factors(
                np.log(var[ok, a, j])[:, None],
                dof[ok, a],
                {f: c[ok] for f, c in codes.items()},
                levels,
            )
            sd[:, a, j] = np.exp(0.5 * predict_log(coef, codes)[:, 0])
    pooled = syy.sum(axis=0)[:, ind][:, :, ind]  # (arm, I, I)
    scale = np.sqrt(np.clip(np.diagonal(pooled, axis1=-2, axis2=-1), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(pooled / (scale[:, :, None] * scale[:, None, :]))
    target_ind = sd[..., :, None] * corr[None] * sd[..., None, :]
    return np.einsum("ik,caij,jl->cakl", mapping, target_ind, mapping)


def variance_guess(cells: CellStats) -> np.ndarray:
    """The variance (cell, arm, K) each cell-arm's within variance is shrunk toward (unadjusted).

    The diagonal of :func:`shrinkage_target`: what a unit-level model with a scaled inverse
    chi-square prior (``prior_df`` degrees of freedom around this guess) assumes before the data.
    """
    n, _, syy = within_cross_products(cells)
    target = shrinkage_target(syy, np.maximum(n - 1.0, 0.0), factor_codes(cells))
    return np.diagonal(target, axis1=-2, axis2=-1)


def average_effect(effects: xr.Dataset, weights: xr.DataArray | None = None) -> xr.Dataset:
    """Weighted average of observed cells' effects and its standard error (no pooling).

    ``weights`` over ``cell`` default to the cells' unit counts (the experiment's mix). Returns
    ``estimate`` and ``std_error`` per outcome, in the outcome's unit per assigned unit; for a
    multi-arm table per treatment arm and outcome (dims ``treatment_arm``, ``outcome``), each arm
    averaged over the cells where it is observed.
    """
    if is_multi_arm(effects):
        if weights is None:
            weights = effects["n_control"] + effects["n_treatment"].sum("treatment_arm")
        arms = [str(a) for a in effects["treatment_arm"].values]
        parts = [average_effect(arm_effects(effects, a), weights) for a in arms]
        return xr.concat(parts, dim=xr.Variable("treatment_arm", arms))
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
    pooled = within_cross_products(cells)[2].sum(axis=(0, 1))
    names = list(cells.ds.outcome.values)
    derived: dict[str, dict[str, float]] = {}
    for i, weights in exact_combinations(pooled, tolerance).items():
        derived[names[i]] = {
            names[j]: float(f"{w:.10g}") for j, w in enumerate(weights) if abs(w) > 1e-8
        }
    return derived
