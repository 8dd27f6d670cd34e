"""Sampler diagnostics of a fit: rank-normalised split R-hat, bulk and tail ESS, divergences, BFMI.

R-hat and ESS follow Vehtari, Gelman, Simpson, Carpenter and Buerkner (2021), exactly as ArviZ
computes them (``arviz.rhat`` with ``method="rank"``, ``arviz.ess`` with ``method="bulk"`` and
``"tail"``; ``tests/model/test_diagnostics.py`` checks the two agree), but fast over many series:
a fit of thousands of cells has tens of thousands of ``tau`` elements, which ArviZ visits one at a
time through NumPy. The per-series arithmetic is compiled
(:mod:`bayesdecide.model.diagnostic_kernels`) and the series are taken in chunks on the machine's
cores; the figures do not depend on the chunking.
"""

from __future__ import annotations

import concurrent.futures
import os
from typing import Any

import numpy as np
import xarray as xr

from bayesdecide.model.diagnostic_kernels import series_diagnostics, split_chains, z_table

THRESHOLDS = {"max_rhat": 1.01, "min_ess_bulk": 400.0, "min_ess_tail": 400.0, "min_bfmi": 0.3}
# at most this many threads take chunks of series at once
_MAX_THREADS = 8


def _kernel(a: np.ndarray, rhat: bool, bulk: bool, tail: bool) -> np.ndarray:
    """(S, 3) R-hat, bulk and tail ESS of every series of ``a`` (S, chain, draw)."""
    a = np.ascontiguousarray(a, dtype=float)
    split = split_chains(a)
    flat = split.reshape(len(a), -1)
    # NaN sorts last and its series is skipped by the kernel
    order = np.argsort(flat, axis=1)
    return series_diagnostics(a, split, order, z_table(flat.shape[1]), rhat, bulk, tail)


def rhat_rank(a: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat (max of bulk and folded) per series of (S, chain, draw)."""
    return _kernel(a, True, False, False)[:, 0]


def ess_bulk(a: np.ndarray) -> np.ndarray:
    """Bulk ESS per series of (S, chain, draw)."""
    return _kernel(a, False, True, False)[:, 1]


def ess_tail(a: np.ndarray) -> np.ndarray:
    """Tail ESS (the smaller of the 5% and 95% quantile ESS) per series of (S, chain, draw)."""
    return _kernel(a, False, False, True)[:, 2]


def _rhat_and_ess_threaded(a: np.ndarray, chunk: int = 512) -> tuple[np.ndarray, ...]:
    """R-hat (1 for a single chain), bulk and tail ESS per series of (S, chain, draw), chunks of
    series on the machine's cores (NumPy's sort and the kernel release the GIL); the results are
    the same whatever the number of threads."""
    starts = range(0, len(a), chunk)
    workers = min(os.cpu_count() or 1, _MAX_THREADS, len(starts))

    def run(start: int) -> np.ndarray:
        return _kernel(a[start : start + chunk], True, True, True)

    if workers <= 1:
        out = np.concatenate([run(s) for s in starts]) if len(a) else np.empty((0, 3))
    else:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            out = np.concatenate(list(pool.map(run, starts)))
    return out[:, 0], out[:, 1], out[:, 2]


def _series(da: xr.DataArray) -> np.ndarray:
    """(S, chain, draw) view of a DataArray with leading dims chain, draw."""
    other = [d for d in da.dims if d not in ("chain", "draw")]
    arr = np.asarray(da.transpose("chain", "draw", *other).values, dtype=float)
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    return np.moveaxis(arr, 2, 0)


def bfmi(energy: np.ndarray) -> np.ndarray:
    """Bayesian fraction of missing information per chain of ``energy`` (chain, draw); NaN for a
    chain whose energy is constant (nothing sampled: every spread fixed)."""
    num = np.square(np.diff(energy, axis=1)).mean(axis=1)
    var = np.var(energy, axis=1)
    return np.where(var > 0, num / np.where(var > 0, var, 1.0), np.nan)


def diagnose(posterior: xr.Dataset, sample_stats: xr.Dataset | None) -> dict[str, Any]:
    """Summary diagnostics over every variable of ``posterior``.

    Returns ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences`` (count),
    ``min_bfmi``, ``worst`` (the variable with the lowest bulk ESS) and ``ok`` (all within
    :data:`THRESHOLDS` and no divergences). ESS thresholds scale with the number of chains
    (100 per chain, Vehtari et al. 2021).
    """
    names, blocks = [], []
    for name, da in posterior.data_vars.items():
        if da.size == 0:
            continue
        block = _series(da)
        names += [str(name)] * len(block)
        blocks.append(block)
    series = np.concatenate(blocks, axis=0)
    finite = np.isfinite(series).all(axis=(1, 2))
    n_chains = series.shape[1]
    r, eb, et = _rhat_and_ess_threaded(series[finite])

    def _agg(values: np.ndarray, fn: Any) -> float:
        v = values[np.isfinite(values)]
        return float(fn(v)) if v.size else float("nan")

    divergences = 0
    min_bfmi = float("nan")
    if sample_stats is not None:
        if "diverging" in sample_stats:
            divergences = int(np.asarray(sample_stats["diverging"]).sum())
        if "energy" in sample_stats:
            min_bfmi = float(np.min(bfmi(np.asarray(sample_stats["energy"].values, float))))
    kept = [n for n, f in zip(names, finite, strict=True) if f]
    out: dict[str, Any] = {
        "max_rhat": _agg(r, np.max),
        "min_ess_bulk": _agg(eb, np.min),
        "min_ess_tail": _agg(et, np.min),
        "divergences": divergences,
        "min_bfmi": min_bfmi,
        "worst": kept[int(np.nanargmin(eb))] if len(eb) and np.isfinite(eb).any() else None,
        "non_finite": int((~finite).sum()),
    }
    ess_min = 100.0 * n_chains
    out["ok"] = bool(
        (out["max_rhat"] <= THRESHOLDS["max_rhat"] or n_chains < 2)
        and out["min_ess_bulk"] >= min(ess_min, THRESHOLDS["min_ess_bulk"])
        and out["min_ess_tail"] >= min(ess_min, THRESHOLDS["min_ess_tail"])
        and divergences == 0
        and out["non_finite"] == 0
        and (not np.isfinite(min_bfmi) or min_bfmi >= THRESHOLDS["min_bfmi"])
    )
    return out


__all__ = ["THRESHOLDS", "bfmi", "diagnose", "ess_bulk", "ess_tail", "rhat_rank"]
