"""Sensitivity of launch value to one assumption over a grid, vectorised (the grid is a new dim).

Value per draw is linear in each assumption (:mod:`bayesdecide.decide.breakeven`), so the draws are
reduced over cells once, to ``a`` and ``b`` of shape (draws, policies), and the grid is broadcast::

    V[s, p, g] = a[s, p] + b[s, p] * grid[g]

Cost: one pass over the (draws x cells x outcomes) array plus O(draws x policies x grid).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.decide._draws import DEFAULT_SAMPLE_DIMS
from bayesdecide.decide.breakeven import linear_coefficients
from bayesdecide.decide.defaults import DECISION_DEFAULTS
from bayesdecide.decide.evaluate import LaunchDraws
from bayesdecide.decide.policies import Policy, as_policy, treat_all
from bayesdecide.decide.population import Population
from bayesdecide.decide.value import ValueModel
from bayesdecide.errors import SpecError


def _grid(grid: Sequence[float] | np.ndarray, label: str) -> np.ndarray:
    g = np.asarray(grid, dtype=float).ravel()
    if g.size == 0 or not np.isfinite(g).all():
        raise SpecError(
            f"sensitivity grid for {label!r} must be a non-empty list of finite numbers"
        )
    if label in ("n_eligible", "fixed_cost") and (g < 0).any():
        raise SpecError(f"sensitivity grid for {label!r} has negative values; give values >= 0")
    return g


def grid_values(
    launch: LaunchDraws, masks: np.ndarray, assumption: str, grid: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(V, grid, label)``: launch value draws ``V`` of shape (S, P, G) in dollars."""
    a, b, _, asm = linear_coefficients(launch, masks, assumption)
    g = _grid(grid, asm.label)
    return a[:, :, None] + b[:, :, None] * g, g, asm.label


def sensitivity_table(
    launch: LaunchDraws,
    masks: np.ndarray,
    names: Sequence[str],
    assumption: str,
    grid: Sequence[float] | np.ndarray,
    loss_threshold: float = DECISION_DEFAULTS["loss_threshold"],
) -> pd.DataFrame:
    """Tidy sensitivity table: one row per policy and grid value.

    Columns: ``assumption``, ``value`` (grid value), ``policy``, ``expected_value`` (dollars),
    ``prob_positive``, ``prob_large_loss`` (P(value < -loss_threshold)), ``p10``, ``p90``.
    """
    v, g, label = grid_values(launch, masks, assumption, grid)
    q = np.quantile(v, [0.1, 0.9], axis=0)  # (2, P, G)
    p_idx, g_idx = np.meshgrid(np.arange(len(names)), np.arange(len(g)), indexing="ij")
    return pd.DataFrame(
        {
            "assumption": label,
            "value": g[g_idx.ravel()],
            "policy": np.asarray(list(names), dtype=object)[p_idx.ravel()],
            "expected_value": v.mean(axis=0).ravel(),
            "prob_positive": (v > 0).mean(axis=0).ravel(),
            "prob_large_loss": (v < -loss_threshold).mean(axis=0).ravel(),
            "p10": q[0].ravel(),
            "p90": q[1].ravel(),
        }
    )


def sensitivity(
    tau: xr.DataArray,
    cell_share: xr.DataArray,
    assumption: str,
    grid: Sequence[float] | np.ndarray,
    value_model: ValueModel,
    population: Population,
    policies: Sequence[Policy | dict] | None = None,
    sample_dims: str | Sequence[str] = DEFAULT_SAMPLE_DIMS,
    loss_threshold: float = DECISION_DEFAULTS["loss_threshold"],
) -> pd.DataFrame:
    """Expected value and P(value > 0) of each policy (default: treat all) over a grid of one
    assumption: ``transport_multiplier``, ``fixed_cost`` (dollars), ``n_eligible`` (customers),
    ``weight:<outcome>`` or ``penalty:<outcome>`` (dollars per unit). See
    :func:`sensitivity_table` for the columns."""
    launch = LaunchDraws(tau, cell_share, value_model, population, sample_dims)
    pols = [treat_all()] if policies is None else [as_policy(p) for p in policies]
    return sensitivity_table(
        launch, launch.masks(pols), [p.name for p in pols], assumption, grid, loss_threshold
    )


def sensitivity_draws(
    tau: xr.DataArray,
    cell_share: xr.DataArray,
    assumption: str,
    grid: Sequence[float] | np.ndarray,
    value_model: ValueModel,
    population: Population,
    policies: Sequence[Policy | dict] | None = None,
    sample_dims: str | Sequence[str] = DEFAULT_SAMPLE_DIMS,
) -> xr.DataArray:
    """Launch value draws in dollars over the grid: dims ``(*sample_dims, policy, <assumption>)``."""
    launch = LaunchDraws(tau, cell_share, value_model, population, sample_dims)
    pols = [treat_all()] if policies is None else [as_policy(p) for p in policies]
    v, g, label = grid_values(launch, launch.masks(pols), assumption, grid)
    return launch.layout.wrap(
        v, ("policy", label), {"policy": [p.name for p in pols], label: g}, name="launch_value"
    )
