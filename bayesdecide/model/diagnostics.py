"""Sampler diagnostics of a fit: R-hat, bulk and tail ESS, divergences, BFMI."""

from __future__ import annotations

from typing import Any

import arviz as az
import numpy as np

from bayesdecide._compat import ess, rhat

THRESHOLDS = {"max_rhat": 1.01, "min_ess_bulk": 400.0, "min_ess_tail": 400.0, "min_bfmi": 0.3}


def diagnose(idata: az.InferenceData, var_names: list[str] | None = None) -> dict[str, Any]:
    """Summary diagnostics over the model's free parameters and ``tau``.

    Returns ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences`` (count),
    ``min_bfmi`` and ``ok`` (all within :data:`THRESHOLDS` and no divergences). ESS thresholds
    scale with the number of chains (100 per chain, as in Vehtari et al. 2021).
    """
    post = idata.posterior
    if var_names is None:
        var_names = [v for v in post.data_vars if post[v].size > 0]
    ds = post[var_names]
    r = rhat(ds)
    eb = ess(ds, method="bulk")
    et = ess(ds, method="tail")

    def _agg(d: Any, fn: Any) -> float:
        vals = [np.asarray(d[v]).ravel() for v in d.data_vars]
        arr = np.concatenate(vals) if vals else np.array([np.nan])
        arr = arr[np.isfinite(arr)]
        return float(fn(arr)) if arr.size else float("nan")

    stats = idata.get("sample_stats")
    divergences = 0
    min_bfmi = float("nan")
    if stats is not None:
        if "diverging" in stats:
            divergences = int(np.asarray(stats["diverging"]).sum())
        if "energy" in stats:
            min_bfmi = float(np.min(az.bfmi(idata)))
    n_chains = post.sizes.get("chain", 1)
    out = {
        "max_rhat": _agg(r, np.max),
        "min_ess_bulk": _agg(eb, np.min),
        "min_ess_tail": _agg(et, np.min),
        "divergences": divergences,
        "min_bfmi": min_bfmi,
    }
    ess_min = 100.0 * n_chains
    out["ok"] = bool(
        (out["max_rhat"] <= THRESHOLDS["max_rhat"] or n_chains < 2)
        and out["min_ess_bulk"] >= min(ess_min, THRESHOLDS["min_ess_bulk"])
        and out["min_ess_tail"] >= min(ess_min, THRESHOLDS["min_ess_tail"])
        and divergences == 0
        and (not np.isfinite(min_bfmi) or min_bfmi >= THRESHOLDS["min_bfmi"])
    )
    return out


__all__ = ["THRESHOLDS", "diagnose"]
