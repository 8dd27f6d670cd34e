"""Rank-normalised split R-hat, bulk ESS and tail ESS of one series at a time, compiled (numba).

The same estimators as ArviZ (``arviz.rhat(method="rank")``, ``arviz.ess(method="bulk")`` and
``"tail"``; Vehtari, Gelman, Simpson, Carpenter and Buerkner 2021), written series by series:

- the split chains are sorted once (NumPy's ``argsort``, before the kernel); ties share their
  average rank, and the normal quantile of every possible rank is looked up in a table computed
  once per shape (:func:`z_table`), so no quantile function is evaluated per element. The folded
  draws (distance from the median) are ordered by merging the two sides of that one sort;
- the autocovariances that Geyer's initial positive sequence needs are summed directly, one lag
  at a time and only up to the lag where the sequence stops (a handful for draws that mix, at
  most the chain length), instead of an FFT of the whole chain;
- the 5% and 95% quantiles of the tail ESS are NumPy's default ("linear") quantiles, computed
  from the same sorted draws (an odd chain's middle draw, which the split drops, inserted into
  them: no sort is compiled, which saves seconds on a cold compilation cache).

Every step follows ArviZ's arithmetic; results agree with it to rounding
(``tests/model/test_diagnostics.py``). :func:`series_diagnostics` releases the GIL, so
:mod:`bayesdecide.model.diagnostics` runs chunks of series on threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import stats

_BLOM = 3.0 / 8.0
_RESOLUTION = float(np.finfo(float).resolution)


def z_table(n_total: int) -> np.ndarray:
    """Normal quantiles of every possible average rank of ``n_total`` pooled draws, indexed by
    twice the rank (ranks are multiples of 1/2 between 1 and ``n_total``; Blom's offset)."""
    ranks = np.arange(2 * n_total + 2) / 2.0
    return stats.norm.ppf((ranks - _BLOM) / (n_total - 2 * _BLOM + 1))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rank_normalise(flat, order, table, out):
    """``out[i] = table[2 rank(flat[i])]`` with average ranks for ties; ``order`` is
    ``argsort(flat)``."""
    n = flat.shape[0]
    start = 0
    while start < n:
        stop = start + 1
        value = flat[order[start]]
        while stop < n and flat[order[stop]] == value:
            stop += 1
        z = table[start + stop + 1]  # twice the mean of the 1-based ranks start+1 .. stop
        for p in range(start, stop):
            out[order[p]] = z
        start = stop


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rhat(x):
    """Classic R-hat of the chains (rows) of ``x``."""
    m, n = x.shape
    means = np.empty(m)
    within = 0.0
    for c in range(m):
        means[c] = x[c].mean()
        within += _var_ddof1(x[c])
    within /= m
    between = n * _var_ddof1(means)
    return math.sqrt((between / within + n - 1) / n)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _var_ddof1(v):
    mean = v.mean()
    ss = 0.0
    for i in range(v.shape[0]):
        dev = v[i] - mean
        ss += dev * dev
    return ss / (v.shape[0] - 1)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _mean_acov(centred, lag):
    """Autocovariance at ``lag`` (sum over the chain / its length), averaged over chains."""
    m, n = centred.shape
    total = 0.0
    for c in range(m):
        s = 0.0
        for d in range(n - lag):
            s += centred[c, d] * centred[c, d + lag]
        total += s / n
    return total / m


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _ess(x):
    """ESS of the chains (rows) of ``x`` with Geyer's initial monotone sequence (ArviZ's
    ``_ess``)."""
    m, n = x.shape
    if x.max() - x.min() < _RESOLUTION:
        return float(m * n)
    centred = np.empty((m, n))
    means = np.empty(m)
    for c in range(m):
        means[c] = x[c].mean()
        for d in range(n):
            centred[c, d] = x[c, d] - means[c]
    mean_var = _mean_acov(centred, 0) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus += _var_ddof1(means)
    rho = np.zeros(n)
    even = 1.0
    rho[0] = even
    odd = 1.0 - (mean_var - _mean_acov(centred, 1)) / var_plus
    rho[1] = odd
    t = 1
    while t < n - 3 and (even + odd) > 0.0:  # Geyer's initial positive sequence
        even = 1.0 - (mean_var - _mean_acov(centred, t + 1)) / var_plus
        odd = 1.0 - (mean_var - _mean_acov(centred, t + 2)) / var_plus
        if (even + odd) >= 0:
            rho[t + 1] = even
            rho[t + 2] = odd
        t += 2
    max_t = t - 2
    if even > 0:
        rho[max_t + 1] = even
    t = 1
    while t <= max_t - 2:  # Geyer's initial monotone sequence
        if (rho[t + 1] + rho[t + 2]) > (rho[t - 1] + rho[t]):
            rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
            rho[t + 2] = rho[t + 1]
        t += 2
    body = 0.0
    for lag in range(max_t + 1):
        body += rho[lag]
    edge = rho[max_t + 1] if max_t + 1 < n else 0.0
    tau = max(-1.0 + 2.0 * body + edge, 1.0 / math.log10(m * n))
    if np.isnan(rho).any():
        return math.nan
    return m * n / tau


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _quantile(ordered, q):
    """NumPy's default ("linear") quantile ``q`` of the sorted values ``ordered``."""
    n = ordered.shape[0]
    virtual = (n - 1) * q
    if virtual >= n - 1:
        return ordered[n - 1]
    prev = math.floor(virtual)
    gamma = virtual - prev
    a = ordered[int(prev)]
    b = ordered[int(prev) + 1]
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1.0 - gamma)
    return a + diff * gamma


def split_chains(a: np.ndarray) -> np.ndarray:
    """(S, chain, draw) -> (S, 2 chain, draw // 2): the first halves of the chains, then the last
    halves (an odd chain's middle draw is dropped, as ArviZ does)."""
    half = a.shape[2] // 2
    return np.ascontiguousarray(
        np.concatenate([a[:, :, :half], a[:, :, a.shape[2] - half :]], axis=1)
    )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _insert_sorted(values, size, v):
    """Insert ``v`` into the ascending ``values[:size]`` in place (``values`` has room); returns
    the new size. Used instead of a sort, whose compiled code costs seconds on a cold cache."""
    j = size
    while j > 0 and values[j - 1] > v:
        values[j] = values[j - 1]
        j -= 1
    values[j] = v
    return size + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _nan_max(a, b):
    """``np.maximum``: NaN if either is."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a > b else b


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _folded_order(flat, order, median, folded, out):
    """``argsort(|flat - median|)`` into ``out`` without a second sort: the values below the
    median, taken from the median down, and those at or above it, taken upwards, are each
    already in order of their distance from it; merge the two. ``folded`` receives the
    distances."""
    n = flat.shape[0]
    for i in range(n):
        folded[i] = abs(flat[i] - median)
    right = 0
    while right < n and flat[order[right]] < median:
        right += 1
    left = right - 1
    for p in range(n):
        if right >= n or (left >= 0 and folded[order[left]] <= folded[order[right]]):
            out[p] = order[left]
            left -= 1
        else:
            out[p] = order[right]
            right += 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def series_diagnostics(a, split, order, table, want_rhat, want_bulk, want_tail):
    """(S, 3) R-hat, bulk ESS and tail ESS of every series (NaN for a figure not wanted, and for
    a series with a non-finite draw). ``a`` (S, chain, draw) are the draws, ``split`` their
    :func:`split_chains`, ``order`` (S, 2 chain (draw // 2)) the ``argsort`` of each split series
    flattened (NumPy's sort, vectorised, is about twice as fast as numba's), ``table`` the
    :func:`z_table` of that length. R-hat is 1 for a single chain."""
    n_series, m, n = a.shape
    m2, half = split.shape[1], split.shape[2]
    total = m2 * half
    out = np.full((n_series, 3), math.nan)
    zf = np.empty(total)
    z = zf.reshape((m2, half))
    zfold = np.empty(total)
    folded = np.empty(total)
    fold_order = np.empty(total, np.int64)
    ordered = np.empty(total + m * (n % 2))
    indicator = np.empty((m2, half))
    for s in range(n_series):
        if not np.all(np.isfinite(a[s])):
            continue  # NaN figures, as ArviZ's
        flat = split[s].ravel()
        _rank_normalise(flat, order[s], table, zf)
        if want_bulk:
            out[s, 1] = _ess(z)
        if want_rhat:
            if m < 2:
                out[s, 0] = 1.0
            else:
                mid = total // 2
                if total % 2 == 0:
                    median = (flat[order[s, mid - 1]] + flat[order[s, mid]]) / 2.0
                else:
                    median = flat[order[s, mid]]
                _folded_order(flat, order[s], median, folded, fold_order)
                _rank_normalise(folded, fold_order, table, zfold)
                out[s, 0] = _nan_max(_rhat(z), _rhat(zfold.reshape((m2, half))))
        if want_tail:
            # quantiles of every draw: the split series in sorted order, with each chain's middle
            # draw (dropped by the split when draws are odd) merged back in
            for p in range(total):
                ordered[p] = flat[order[s, p]]
            size = total
            if n % 2 == 1:
                for c in range(m):
                    size = _insert_sorted(ordered, size, a[s, c, n // 2])
            tail_sorted = ordered[:size]
            tail = math.inf
            for q in (0.05, 0.95):
                cut = _quantile(tail_sorted, q)
                for c in range(m2):
                    for d in range(half):
                        indicator[c, d] = 1.0 if split[s, c, d] <= cut else 0.0
                ess = _ess(indicator)
                tail = ess if math.isnan(ess) or ess < tail else tail
            out[s, 2] = tail
    return out


__all__ = ["series_diagnostics", "split_chains", "z_table"]
