"""Effects by the levels of one grouping factor: raw (no pooling) beside pooled (hierarchical).

For level ``l`` of ``factor``, with cell weights ``w[c]`` (default: units per cell)::

    pooled[s, l] = sum_{c in l} w[c] * tau[s, c, k] / sum_{c in l} w[c]       (posterior draws)
    raw[l]       = sum_{c in l, observed} w[c] * effect[c, k] / sum w[c]       (cell estimates)

both per assigned customer in the outcome's unit (ITT). The raw interval is the normal one from
the cells' sampling variances; the pooled interval is the equal-tailed ``ci_prob`` posterior
interval. With several treatment arms each arm is read against the shared control (``arm``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import norm

from bayesdecide.data.effects import arm_effects, is_multi_arm
from bayesdecide.decide._draws import ARM_DIM, DEFAULT_SAMPLE_DIMS, interval_probs, tau_arms
from bayesdecide.errors import SpecError


def factor_level_effects(
    effects: xr.Dataset,
    tau: xr.DataArray,
    outcome: str,
    factor: str,
    ci_prob: float,
    weights: xr.DataArray | None = None,
    sample_dims: Sequence[str] = DEFAULT_SAMPLE_DIMS,
    arm: str | None = None,
) -> pd.DataFrame:
    """Raw and pooled effect of ``outcome`` per level of ``factor``.

    Returns a frame indexed by ``level`` with ``mean``, ``lower``, ``upper`` (pooled posterior
    mean and equal-tailed ``ci_prob`` interval), ``prob_positive`` (P(pooled effect > 0)),
    ``raw``, ``raw_lower``, ``raw_upper`` (unpooled estimate with its normal ``ci_prob``
    interval; NaN for a level with no observed cell) and ``n`` (units in the level, every arm).
    Multi-arm draws and EffectTable (a ``treatment_arm`` dim) need ``arm``: the treatment arm
    whose effect against the control is reported.
    """
    if ARM_DIM in tau.dims or is_multi_arm(effects):
        arms = [str(a) for a in effects[ARM_DIM].values] if is_multi_arm(effects) else []
        if arm is None:
            raise SpecError(f"multi-arm effects: give arm, one of {arms or tau_arms(tau)}")
        if ARM_DIM not in tau.dims or not is_multi_arm(effects):
            raise SpecError("give multi-arm draws and a multi-arm EffectTable together")
        n_all = effects["n_control"] + effects["n_treatment"].sum(ARM_DIM)
        effects = arm_effects(effects, arm).assign(n_treatment=n_all - effects["n_control"])
        tau = tau.sel({ARM_DIM: arm}, drop=True)
    z = norm.ppf(interval_probs(ci_prob)[1])
    n_units = effects["n_control"] + effects["n_treatment"]
    w_all = (n_units if weights is None else weights).reindex(cell=effects["cell"].values).values
    labels = effects[factor].values
    dims = [d for d in sample_dims if d in tau.dims]
    draws = tau.sel(outcome=outcome).stack(sample=dims).transpose("sample", "cell").values
    est = effects["effect"].sel(outcome=outcome).values
    var = effects["effect_cov"].sel(outcome=outcome, outcome_b=outcome).values
    observed = effects["observed"].values.astype(bool)
    lo_q, hi_q = interval_probs(ci_prob)
    rows = []
    for level in pd.unique(labels):
        w = w_all * (labels == level)
        wo = w * observed
        if wo.sum() > 0:
            raw = float(np.nansum(wo * est) / wo.sum())
            se = float(np.sqrt(np.nansum(wo**2 * var)) / wo.sum())
        else:
            raw = se = np.nan
        pooled = draws @ (w / w.sum())
        lo, hi = np.quantile(pooled, [lo_q, hi_q])
        rows.append(
            {
                "level": str(level),
                "mean": float(pooled.mean()),
                "lower": float(lo),
                "upper": float(hi),
                "prob_positive": float((pooled > 0).mean()),
                "raw": raw,
                "raw_lower": raw - z * se,
                "raw_upper": raw + z * se,
                "n": float(n_units.values[labels == level].sum()),
            }
        )
    return pd.DataFrame(rows).set_index("level")


__all__ = ["factor_level_effects"]
