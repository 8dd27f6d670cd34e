"""Dense Cholesky, SPD inverse and rank-k update for numba code, through SciPy's public
Cython BLAS/LAPACK (``scipy.linalg.cython_blas`` / ``cython_lapack``).

numba's own ``np.linalg.inv`` goes through an LU factorisation (twice the work of an inverse from
the Cholesky factor) and numba has no symmetric rank-k update; the marginal density needs both at
every evaluation. The routines are bound as external symbols (``llvmlite.binding.add_symbol`` with
the addresses SciPy exports), so the numba functions that call them can be cached on disk: the
symbol is resolved again in each process when this module is imported.

Matrices here are row-major (C order); LAPACK sees the transpose. For a symmetric matrix that is
the same matrix, so "upper" in LAPACK's column-major terms is "lower" in ours.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numba
import numpy as np
from llvmlite import binding
from numba import types
from numba.extending import get_cython_function_address


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS/LAPACK held to one thread while the block runs (threadpoolctl's public
    ``threadpool_limits``), restored after.

    The kernels call LAPACK on small matrices from several chains at once; an OpenBLAS that
    starts its own threads for each call then oversubscribes the cores (retention model on 2
    cores: 51.6 s instead of 16.5 s)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


_BOUND = {
    "bd_dpotrf": ("scipy.linalg.cython_lapack", "dpotrf"),
    "bd_dpotri": ("scipy.linalg.cython_lapack", "dpotri"),
    "bd_dsyrk": ("scipy.linalg.cython_blas", "dsyrk"),
}
for _symbol, (_module, _name) in _BOUND.items():
    binding.add_symbol(_symbol, get_cython_function_address(_module, _name))

_vp = types.voidptr
_dpotrf = types.ExternalFunction("bd_dpotrf", types.void(_vp, _vp, _vp, _vp, _vp))
_dpotri = types.ExternalFunction("bd_dpotri", types.void(_vp, _vp, _vp, _vp, _vp))
_dsyrk = types.ExternalFunction(
    "bd_dsyrk", types.void(_vp, _vp, _vp, _vp, _vp, _vp, _vp, _vp, _vp, _vp)
)
_UPPER, _NOTRANS = 85, 78  # 'U', 'N'


@numba.njit(cache=True, nogil=True, error_model="numpy")
def cholesky_lower(a: np.ndarray) -> tuple[np.ndarray, bool]:
    """Lower Cholesky factor of the symmetric positive definite ``a`` (a new array; its strict
    upper triangle is zeroed) and whether ``a`` was positive definite."""
    n = a.shape[0]
    out = np.ascontiguousarray(a).copy()
    ints = np.empty(2, np.int32)
    ints[0] = n
    ints[1] = 0
    uplo = np.full(1, _UPPER, np.uint8)
    if n > 0:
        _dpotrf(uplo.ctypes, ints[0:1].ctypes, out.ctypes, ints[0:1].ctypes, ints[1:2].ctypes)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = 0.0
    return out, ints[1] == 0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def inverse_from_cholesky(low: np.ndarray) -> np.ndarray:
    """``(L L')^-1`` from the lower factor ``L`` (a new, symmetric array)."""
    n = low.shape[0]
    out = low.copy()
    ints = np.empty(2, np.int32)
    ints[0] = n
    ints[1] = 0
    uplo = np.full(1, _UPPER, np.uint8)
    if n > 0:
        _dpotri(uplo.ctypes, ints[0:1].ctypes, out.ctypes, ints[0:1].ctypes, ints[1:2].ctypes)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i]
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def subtract_gram(s: np.ndarray, c: np.ndarray) -> None:
    """``s -= c' c`` in place for symmetric ``s`` (n, n) and ``c`` (m, n), both C-contiguous."""
    n = s.shape[0]
    m = c.shape[0]
    if n == 0 or m == 0:
        return
    ints = np.empty(4, np.int32)
    ints[0] = n
    ints[1] = m
    ints[2] = n  # lda: c seen column-major is (n, m) with leading dimension n
    ints[3] = n  # ldc
    scal = np.empty(2)
    scal[0] = -1.0
    scal[1] = 1.0
    flags = np.empty(2, np.uint8)
    flags[0] = _UPPER
    flags[1] = _NOTRANS
    _dsyrk(
        flags[0:1].ctypes,
        flags[1:2].ctypes,
        ints[0:1].ctypes,
        ints[1:2].ctypes,
        scal[0:1].ctypes,
        c.ctypes,
        ints[2:3].ctypes,
        scal[1:2].ctypes,
        s.ctypes,
        ints[3:4].ctypes,
    )
    for i in range(n):
        for j in range(i + 1, n):
            s[i, j] = s[j, i]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_det_from_cholesky(low: np.ndarray) -> float:
    total = 0.0
    for i in range(low.shape[0]):
        total += 2.0 * math.log(low[i, i])
    return total


__all__ = [
    "one_blas_thread",
    "cholesky_lower",
    "inverse_from_cholesky",
    "log_det_from_cholesky",
    "subtract_gram",
]
