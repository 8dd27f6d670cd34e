"""Covariate-adjusted (ANCOVA / CUPED) overall effects solved exactly from cell statistics.

Ordinary least squares of ``y ~ 1 + treatment + C(factor levels) + covariates`` needs only
``X'X``, ``X'y`` and ``y'y``. Treatment and the factor dummies are constant within a cell x arm,
so every entry of those matrices is a sum over cell x arm of the statistics in
:class:`~bayesdecide.data.cells.CellStats`: the regression on millions of rows is solved from a few
hundred numbers, and its point estimate equals the row-level OLS exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bayesdecide.data.cells import CellStats
from bayesdecide.errors import SpecError


@dataclass(frozen=True)
class AdjustedEffect:
    """OLS treatment coefficient: effect per assigned unit in the outcome's unit.

    ``std_error`` is the classical (homoscedastic) standard error; heteroscedasticity-robust errors
    need fourth moments that cell sums do not carry (the hierarchical model uses per cell x arm
    variances instead).
    """

    outcome: str
    estimate: float
    std_error: float
    n: int
    coefficients: dict[str, float]


def ols_effect(
    cells: CellStats,
    outcome: str,
    *,
    covariates: Sequence[str] | None = None,
    factors: Sequence[str] = (),
) -> AdjustedEffect:
    """Treatment effect from ``outcome ~ 1 + treatment + C(factors) + covariates``, exactly.

    Parameters
    ----------
    cells:
        Cell statistics whose covariates include ``covariates``.
    outcome:
        Outcome column.
    covariates:
        Numeric covariates (default: all of the spec's covariates).
    factors:
        Grouping factors entered as categorical fixed effects (first level dropped), e.g.
        ``("segment", "region")`` for the seed notebook's adjustment set.
    """
    ds = cells.ds
    if outcome not in ds.outcome.values:
        raise SpecError(f"no outcome {outcome!r}; outcomes are {list(ds.outcome.values)}")
    covs = list(ds.covariate.values) if covariates is None else list(covariates)
    unknown = [c for c in covs if c not in ds.covariate.values]
    if unknown:
        raise SpecError(
            f"covariate(s) {unknown} are not in the cell statistics; add them to the spec's "
            f"covariates (have {list(ds.covariate.values)})"
        )
    for f in factors:
        if f not in ds.attrs.get("factors", []):
            raise SpecError(f"factor {f!r} is not a grouping factor of the cell statistics")
    n = ds["n"].values  # (C, 2)
    keep = n > 0
    # Design columns that are constant within a cell x arm: intercept, treatment, dummies.
    const_cols = ["intercept", "treatment"]
    const = [np.ones_like(n), np.broadcast_to(np.array([0.0, 1.0]), n.shape)]
    for f in factors:
        labels = np.asarray(ds[f].values).astype(str)
        for level in sorted(set(labels))[1:]:
            const_cols.append(f"{f}[{level}]")
            const.append(np.repeat((labels == level)[:, None].astype(float), 2, axis=1))
    d = np.stack(const, axis=-1)[keep]  # (G, D)
    ng = n[keep]
    y_idx = list(ds.outcome.values).index(outcome)
    x_idx = [list(ds.covariate.values).index(c) for c in covs]
    sx = ds["sum_x"].values[keep][:, x_idx]  # (G, P)
    sxx = ds["sum_xx"].values[keep][:, x_idx][:, :, x_idx]
    sxy = ds["sum_xy"].values[keep][:, x_idx, y_idx]
    sy = ds["sum_y"].values[keep][:, y_idx]
    syy = ds["sum_yy"].values[keep][:, y_idx, y_idx]
    xtx_dd = np.einsum("g,gi,gj->ij", ng, d, d)
    xtx_dx = np.einsum("gi,gp->ip", d, sx)
    xtx = np.block([[xtx_dd, xtx_dx], [xtx_dx.T, sxx.sum(axis=0)]])
    xty = np.concatenate([d.T @ sy, sxy.sum(axis=0)])
    beta = np.linalg.solve(xtx, xty)
    n_total = float(ng.sum())
    rss = float(syy.sum() - beta @ xty)
    dof = n_total - len(beta)
    sigma2 = rss / dof
    se = float(np.sqrt(sigma2 * np.linalg.inv(xtx)[1, 1]))
    names = const_cols + covs
    return AdjustedEffect(
        outcome=outcome,
        estimate=float(beta[1]),
        std_error=se,
        n=int(n_total),
        coefficients=dict(zip(names, map(float, beta))),
    )
