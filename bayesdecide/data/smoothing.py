"""Smoothing a per-cell quantity on the log scale over the factors' main effects.

Small cells estimate spreads poorly. A weighted ridge regression of the log quantity on one-hot
factor levels (``log y[c] ~ intercept + sum_f b_f[level_f(c)]``) lets a cell of nine customers
borrow its spread from its segment and risk band. Used for the model's per-cell scales
(:mod:`bayesdecide.model.inputs`) and the covariance each cell's estimate is shrunk toward
(:mod:`bayesdecide.data.effects`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

RIDGE = 1e-3  # on the level coefficients (weights normalised to sum 1); the intercept is free


def smooth_log_on_factors(
    log_y: np.ndarray,
    weights: np.ndarray,
    codes: Mapping[str, np.ndarray],
    levels: Mapping[str, Sequence[object]],
) -> dict[str, np.ndarray]:
    """Weighted ridge fit of ``log_y`` (n, K) on the factors' main effects.

    ``codes[f]`` (n,) indexes ``levels[f]``; ``weights`` (n,) are relative precisions. Returns the
    coefficients: ``"intercept"`` (K,) and, per factor, (levels, K). Levels without rows get 0.
    """
    n = log_y.shape[0]
    cols = [np.ones((n, 1))]
    for f in codes:
        onehot = np.zeros((n, len(levels[f])))
        onehot[np.arange(n), codes[f]] = 1.0
        cols.append(onehot)
    x = np.concatenate(cols, axis=1)
    ridge = np.full(x.shape[1], RIDGE)
    ridge[0] = 0.0
    w = weights / weights.sum()
    coef = np.linalg.solve(x.T @ (w[:, None] * x) + np.diag(ridge), x.T @ (w[:, None] * log_y))
    out = {"intercept": coef[0]}
    start = 1
    for f in codes:
        out[f] = coef[start : start + len(levels[f])]
        start += len(levels[f])
    return out


def predict_log(coef: Mapping[str, np.ndarray], codes: Mapping[str, np.ndarray]) -> np.ndarray:
    """Fitted log values (n, K) of :func:`smooth_log_on_factors` at level codes (n,) per factor
    ((1, K) when there are no factors)."""
    return coef["intercept"] + sum((coef[f][codes[f]] for f in codes), np.zeros((1, 1)))


__all__ = ["RIDGE", "predict_log", "smooth_log_on_factors"]
