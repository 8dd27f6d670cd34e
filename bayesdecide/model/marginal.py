"""The hierarchical model with its Gaussian parts integrated out: NUTS sees only the spreads.

Given the spreads, the model of :mod:`bayesdecide.model.terms` is linear and Gaussian. In
standardised units (:mod:`bayesdecide.model.inputs`), with ``y_c`` the observed cell's effect
estimates (K outcomes), ``V_c`` their sampling covariance, ``X_c`` the 0/1 map from the stacked
level effects ``U`` (one K-vector per level of every term) to the cell::

    y_c = X_c U + e_c + eps_c,   U ~ N(0, Lambda),  e_c ~ N(0, diag(v_cell)),  eps_c ~ N(0, V_c)

so ``y ~ N(0, Sigma + X Lambda X')`` with ``Sigma = blockdiag(V_c + diag(v_cell))``. By the
Woodbury identity, with ``W_c = (V_c + diag(v_cell))^-1``, ``A = X' W X``, ``b = X' W y``,
``M = Lambda^-1 + A`` and ``m = M^-1 b`` (the conditional posterior mean of ``U``)::

    log p(y | spreads) = -1/2 [ sum_c (log|W_c^-1| + y_c' W_c y_c + n_c log 2 pi)
                                + log|Lambda| + log|M| - b' m ]

Its gradient in each variance needs only ``m`` and selected blocks of ``S = M^-1``: for a level
variance ``v_j``, ``1/2 [(m_j^2 + S_jj) / v_j^2 - 1/v_j]``; for the cell variance of outcome k,
``1/2 sum_c [alpha_c alpha_c' - W_c + W_c X_c S X_c' W_c]_kk`` with ``alpha_c = W_c (y_c - X_c m)``.

Student-t cell deviations or level effects are scale mixtures: each cell (``cell_nu``) or level
(``level_nu``) has a weight ``lam ~ InvGamma(nu / 2, nu / 2)`` that multiplies its variance, shared
by its outcomes. The weights are sampled with the spreads; given them, everything above holds
with ``diag(v_cell)`` and ``Lambda`` scaled, and the gradient in a weight is the variance's
gradient times the variance it scales.

Cost. Every cell has one level of every term, so a term's own block of ``M`` is block diagonal.
The term with the most levels (the *sparse* term) is eliminated first, level by level; the other
terms (the *rest*, ``Qr`` coordinates) form a dense Schur complement. Per evaluation that is
O(cells x terms^2 x K^2) for the cells plus O(levels_sparse x Qr^2 x K + Qr^3) for the dense part,
which does not grow with the number of cells. Drawing the effects afterwards uses the same
factorisation (:func:`draw_effects`): ``U | spreads, y`` and ``e_c | U, spreads, y`` are Gaussian.

Equality with the PyMC reference model (the same hierarchy with ``U`` and ``e`` sampled) is tested
in ``tests/model/test_marginal.py``: the log density and its gradient against PyMC's own ``logp`` of
the marginal ``MvNormal``, and the posterior against PyMC's NUTS on the reference model.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesdecide.model.linalg import (
    cholesky_lower,
    inverse_from_cholesky,
    log_det_from_cholesky,
    subtract_gram,
)
from bayesdecide.model.priors import EXPONENTIAL, GAMMA, HALF_CAUCHY, HALF_NORMAL, HALF_STUDENT_T

_LOG_2PI = math.log(2.0 * math.pi)
_HALF_LOG_2PI = 0.5 * _LOG_2PI
_LOG_2 = math.log(2.0)
_LOG_PI = math.log(math.pi)

# floating-point licences for the vector loops over cells: reassociation and fused multiply-add
# (results stay deterministic), but never the assumption that values are finite, which would let
# the compiler drop the checks for non-positive-definite blocks
_FAST = {"reassoc", "contract", "nsz", "arcp"}


# ------------------------------------------------------------------------------ scalar helpers
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _student_t_const(nu: float) -> float:
    return math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu) - 0.5 * math.log(nu * math.pi)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def spread_logp(family: int, a: float, b: float, v: float) -> tuple[float, float]:
    """Log density of a positive prior at ``v`` and its derivative in ``v`` (PyMC's
    parameterisations: HalfNormal(sigma=a), HalfCauchy(beta=a), Exponential(lam=a),
    HalfStudentT(nu=a, sigma=b), Gamma(alpha=a, beta=b))."""
    if family == HALF_NORMAL:
        z = v / a
        return _LOG_2 - _HALF_LOG_2PI - math.log(a) - 0.5 * z * z, -z / a
    if family == HALF_CAUCHY:
        z = v / a
        return _LOG_2 - _LOG_PI - math.log(a) - math.log1p(z * z), -2.0 * v / (a * a + v * v)
    if family == EXPONENTIAL:
        return math.log(a) - a * v, -a
    if family == HALF_STUDENT_T:
        z = v / b
        lp = _LOG_2 + _student_t_const(a) - math.log(b) - 0.5 * (a + 1.0) * math.log1p(z * z / a)
        return lp, -(a + 1.0) * v / (a * b * b + v * v)
    if family == GAMMA:
        lp = a * math.log(b) - math.lgamma(a) + (a - 1.0) * math.log(v) - b * v
        return lp, (a - 1.0) / v - b
    return -math.inf, 0.0


# ------------------------------------------------------------------------- small dense blocks
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _chol_small(a: np.ndarray, out: np.ndarray) -> bool:
    """Lower Cholesky factor of the symmetric ``a`` (n x n) into ``out``; False if not PD."""
    n = a.shape[0]
    for j in range(n):
        s = a[j, j]
        for p in range(j):
            s -= out[j, p] * out[j, p]
        if not s > 0.0:
            return False
        d = math.sqrt(s)
        out[j, j] = d
        for i in range(j + 1, n):
            s = a[i, j]
            for p in range(j):
                s -= out[i, p] * out[j, p]
            out[i, j] = s / d
        for i in range(j):
            out[i, j] = 0.0
    return True


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _tri_inverse(low: np.ndarray, out: np.ndarray) -> None:
    """Inverse of a lower-triangular matrix into ``out`` (lower triangular)."""
    n = low.shape[0]
    for j in range(n):
        for i in range(n):
            out[i, j] = 0.0
        out[j, j] = 1.0 / low[j, j]
        for i in range(j + 1, n):
            s = 0.0
            for p in range(j, i):
                s -= low[i, p] * out[p, j]
            out[i, j] = s / low[i, i]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _inverse_from_tri_inverse(linv: np.ndarray, out: np.ndarray) -> None:
    """``out = linv' linv`` (the inverse of ``L L'`` given ``linv = L^-1``), symmetric."""
    n = linv.shape[0]
    for i in range(n):
        for j in range(i + 1):
            s = 0.0
            for p in range(i, n):
                s += linv[p, i] * linv[p, j]
            out[i, j] = s
            out[j, i] = s


# ------------------------------------------------------------------------------- the system
# Per-cell K x K matrices are symmetric and stored packed (the lower triangle, row by row:
# ``pos[i, j]`` is the position of entry (i, j) or (j, i)); per-cell arrays are laid out with the
# cell last ("structure of arrays"), so every loop over cells is a contiguous vector loop.


@numba.njit(cache=True, nogil=True, error_model="numpy")
def packed_positions(k: int) -> np.ndarray:
    """(k, k) positions of the entries of a symmetric matrix in its packed lower triangle."""
    pos = np.empty((k, k), np.int64)
    for i in range(k):
        for j in range(i + 1):
            pos[i, j] = i * (i + 1) // 2 + j
            pos[j, i] = pos[i, j]
    return pos


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _cell_blocks(y, V, mask, vcell, lam):
    """``W_c = (V_c + lam_c diag(vcell))^-1`` per observed cell, packed (NP, C); ``W_c y_c`` (K, C);
    ``log|W_c^-1|`` (C,); and the data part of log p. ``y`` (K, C), ``V`` (NP, C) packed and
    ``mask`` (K, C) 0/1 are per cell; a missing outcome gets a zero row and column in ``W_c``.
    ``lam`` (C,) scales each cell's deviation variance (1 for normal cell deviations; the
    scale-mixture weight for Student-t ones). Returns ``ok=False`` if some ``V_c + lam_c
    diag(vcell)`` is not positive definite."""
    k, n_cells = y.shape
    pos = packed_positions(k)
    npk = k * (k + 1) // 2
    low = np.empty((npk, n_cells))
    inv = np.empty((npk, n_cells))
    w = np.empty((npk, n_cells))
    wy = np.zeros((k, n_cells))
    logdets = np.zeros(n_cells)
    acc = np.empty(n_cells)
    ok = True
    # Cholesky of Sigma_ij = m_i m_j V_ij + (1 - m_i) delta_ij + m_i delta_ij lam vcell_i
    for j in range(k):
        pj = pos[j, j]
        for c in range(n_cells):
            m = mask[j, c]
            acc[c] = m * (V[pj, c] + lam[c] * vcell[j]) + (1.0 - m)
        for q in range(j):
            pq = pos[j, q]
            for c in range(n_cells):
                acc[c] -= low[pq, c] * low[pq, c]
        for c in range(n_cells):
            if not acc[c] > 0.0:
                ok = False
                acc[c] = 1.0
            d = math.sqrt(acc[c])
            low[pj, c] = d
            logdets[c] += 2.0 * math.log(d)
        for i in range(j + 1, k):
            pij = pos[i, j]
            for c in range(n_cells):
                acc[c] = mask[i, c] * mask[j, c] * V[pij, c]
            for q in range(j):
                a, b = pos[i, q], pos[j, q]
                for c in range(n_cells):
                    acc[c] -= low[a, c] * low[b, c]
            for c in range(n_cells):
                low[pij, c] = acc[c] / low[pj, c]
    # L^-1 (lower), then W = L^-T L^-1, masked
    for j in range(k):
        pj = pos[j, j]
        for c in range(n_cells):
            inv[pj, c] = 1.0 / low[pj, c]
        for i in range(j + 1, k):
            for c in range(n_cells):
                acc[c] = 0.0
            for q in range(j, i):
                a, b = pos[i, q], pos[q, j]
                for c in range(n_cells):
                    acc[c] -= low[a, c] * inv[b, c]
            pij, pii = pos[i, j], pos[i, i]
            for c in range(n_cells):
                inv[pij, c] = acc[c] / low[pii, c]
    for i in range(k):
        for j in range(i + 1):
            for c in range(n_cells):
                acc[c] = 0.0
            for q in range(i, k):
                a, b = pos[q, i], pos[q, j]
                for c in range(n_cells):
                    acc[c] += inv[a, c] * inv[b, c]
            pij = pos[i, j]
            for c in range(n_cells):
                w[pij, c] = acc[c] * mask[i, c] * mask[j, c]
    logp = 0.0
    for i in range(k):
        for j in range(k):
            pij = pos[i, j]
            for c in range(n_cells):
                wy[i, c] += w[pij, c] * y[j, c]
    for c in range(n_cells):
        quad = 0.0
        n_obs = 0.0
        for i in range(k):
            quad += wy[i, c] * y[i, c]
            n_obs += mask[i, c]
        logp -= 0.5 * (logdets[c] + quad + n_obs * _LOG_2PI)
    return w, wy, logdets, logp, ok


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _assemble(cell_pair_idx, combo, combo_pair_idx, term_blk, n_store, n_blocks, w, wy):
    """``A = X' W X`` as packed symmetric K x K blocks ``store`` (S, NP), one per pair of level
    blocks that share a cell, and ``b = X' W y`` per level block (NB, K).

    A cell's term pairs that involve the sparse term are added cell by cell (``cell_pair_idx``,
    (C, pairs)); the pairs among the other terms depend only on the cell's *combination* of their
    levels (``combo`` (C,)), so ``W`` is first summed per combination and added once per
    combination and pair (``combo_pair_idx``, (combinations, pairs))."""
    npk, n_cells = w.shape
    k = wy.shape[0]
    store = np.zeros((n_store, npk))
    b = np.zeros((n_blocks, k))
    combo_w = np.zeros((combo_pair_idx.shape[0], npk))
    w_row = np.ascontiguousarray(w.T)
    for c in range(n_cells):
        wc = w_row[c]
        acc = combo_w[combo[c]]
        for e in range(npk):
            acc[e] += wc[e]
        for p in range(cell_pair_idx.shape[1]):
            row = store[cell_pair_idx[c, p]]
            for e in range(npk):
                row[e] += wc[e]
        for t in range(term_blk.shape[1]):
            blk = term_blk[c, t]
            for i in range(k):
                b[blk, i] += wy[i, c]
    for g in range(combo_pair_idx.shape[0]):
        src = combo_w[g]
        for p in range(combo_pair_idx.shape[1]):
            row = store[combo_pair_idx[g, p]]
            for e in range(npk):
                row[e] += src[e]
    return store, b


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _split(store, b, store_kind, store_a, store_b, n_sparse, n_rest_blocks, prec):
    """The blocks of ``M = Lambda^-1 + A`` for the block elimination: the sparse term's diagonal
    blocks ``d`` (L1, K, K), their coupling ``cpl`` (L1, K, Qr) to the rest, the rest's dense
    ``r`` (Qr, Qr); ``b1`` (L1, K) and ``br`` (NR, K). ``prec`` (NB, K) is the prior precision of
    every level block (sparse levels first)."""
    k = b.shape[1]
    pos = packed_positions(k)
    qr = n_rest_blocks * k
    d = np.zeros((n_sparse, k, k))
    cpl = np.zeros((n_sparse, k, qr))
    r = np.zeros((qr, qr))
    for s in range(store.shape[0]):
        a = store_a[s]
        bb = store_b[s]
        kind = store_kind[s]
        for i in range(k):
            for j in range(k):
                v = store[s, pos[i, j]]
                if kind == 0:
                    d[a, i, j] += v
                elif kind == 1:
                    cpl[a, i, bb * k + j] += v
                else:
                    r[a * k + i, bb * k + j] += v
                    if a != bb:
                        r[bb * k + j, a * k + i] += v
    for ls in range(n_sparse):
        for i in range(k):
            d[ls, i, i] += prec[ls, i]
    for p in range(n_rest_blocks):
        for i in range(k):
            r[p * k + i, p * k + i] += prec[n_sparse + p, i]
    b1 = np.ascontiguousarray(b[:n_sparse])
    br = np.ascontiguousarray(b[n_sparse:])
    return d, cpl, r, b1, br


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _factor(d, cpl, r, b1, br):
    """Block Cholesky of ``M`` (from :func:`_split`).

    Per sparse level ``l``: ``linv[l] = L_l^-1`` (``L_l`` the Cholesky factor of its diagonal
    block) and ``C_l = L_l^-1 B_l`` stacked in ``cst`` (L1 K, Qr); the lower factor ``lr`` of the
    rest's Schur complement ``R - C' C``; the conditional posterior mean ``m`` of the level
    effects as ``m1`` (L1 K,) and ``mr`` (Qr,); and ``log|M|``. ``ok`` is False when ``M`` is
    not positive definite."""
    n_sparse, k, _ = d.shape
    qr = cpl.shape[2]
    linv = np.zeros((n_sparse, k, k))
    cst = np.zeros((n_sparse * k, qr))
    z1 = np.zeros(n_sparse * k)
    low = np.empty((k, k))
    logdet = 0.0
    for ls in range(n_sparse):
        if not _chol_small(d[ls], low):
            return False, linv, cst, r, z1, br.ravel(), logdet
        _tri_inverse(low, linv[ls])
        for i in range(k):
            logdet += 2.0 * math.log(low[i, i])
            s = 0.0
            for p in range(i + 1):
                s += linv[ls, i, p] * b1[ls, p]
            z1[ls * k + i] = s
        # C_l = L_l^-1 B_l, row by row as sums of B_l's rows (contiguous loops over Qr)
        for i in range(k):
            out = cst[ls * k + i]
            for q in range(i + 1):
                coef = linv[ls, i, q]
                src = cpl[ls, q]
                for col in range(qr):
                    out[col] += coef * src[col]
    subtract_gram(r, cst)
    lr, ok = cholesky_lower(r)
    if not ok:
        return False, linv, cst, lr, z1, br.ravel(), logdet
    logdet += log_det_from_cholesky(lr)
    rhs = br.ravel() - np.dot(cst.T, z1)
    mr = _solve_lower_lower_t(lr, rhs)
    cm = np.dot(cst, mr)
    m1 = np.zeros(n_sparse * k)
    for ls in range(n_sparse):
        for i in range(k - 1, -1, -1):
            s = 0.0
            for p in range(i, k):
                s += linv[ls, p, i] * (z1[ls * k + p] - cm[ls * k + p])
            m1[ls * k + i] = s
    return True, linv, cst, lr, m1, mr, logdet


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _solve_lower_lower_t(low, rhs):
    """Solve ``L L' x = rhs`` for lower-triangular ``L``."""
    n = rhs.shape[0]
    tmp = np.zeros(n)
    out = np.zeros(n)
    for i in range(n):
        s = rhs[i]
        for p in range(i):
            s -= low[i, p] * tmp[p]
        tmp[i] = s / low[i, i]
    for i in range(n - 1, -1, -1):
        s = tmp[i]
        for p in range(i + 1, n):
            s -= low[p, i] * out[p]
        out[i] = s / low[i, i]
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _variances(x, pidx, fixed_var, pidx_cell, fixed_var_cell):
    """Variances (T, K) of the level effects and of the cell deviations (K,) from ``x`` (the
    log spreads of the free parameters) and the fixed ones."""
    n_terms, k = pidx.shape
    var = np.empty((n_terms, k))
    vcell = np.empty(k)
    for t in range(n_terms):
        for i in range(k):
            p = pidx[t, i]
            var[t, i] = fixed_var[t, i] if p < 0 else math.exp(2.0 * x[p])
    for i in range(k):
        p = pidx_cell[i]
        vcell[i] = fixed_var_cell[i] if p < 0 else math.exp(2.0 * x[p])
    return var, vcell


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _spread_prior(x, fam, pa, pb, grad):
    """Log prior density of the spreads ``exp(x)`` plus the log-Jacobian ``x``; adds the
    gradient in ``x`` to ``grad``."""
    lp = 0.0
    for p in range(x.shape[0]):
        s = math.exp(x[p])
        lpp, dlp = spread_logp(fam[p], pa[p], pb[p], s)
        lp += lpp + x[p]
        grad[p] += dlp * s + 1.0
    return lp


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _mixture_weights(x, index, nu, grad):
    """Scale-mixture weights ``lam_i = exp(x[index[i]])`` (1 where ``index[i] < 0`` or ``nu`` is
    0) and their prior ``InvGamma(nu / 2, nu / 2)`` with the log-Jacobian: ``e | lam ~ Normal(0,
    lam sigma^2)`` makes ``e`` Student-t with ``nu`` degrees of freedom (shared by the outcomes
    of the cell or level the weight belongs to). Adds the prior's gradient to ``grad``."""
    lam = np.ones(index.shape[0])
    lp = 0.0
    if nu <= 0.0:
        return lam, lp
    a = 0.5 * nu
    const = a * math.log(a) - math.lgamma(a)
    for c in range(index.shape[0]):
        p = index[c]
        if p < 0:
            continue
        eta = x[p]
        lam[c] = math.exp(eta)
        inv = math.exp(-eta)
        lp += const - a * eta - a * inv
        grad[p] += -a + a * inv
    return lam, lp


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _precisions(var, blk_term, blk_lam):
    """Prior precision (1 / variance) of every level block (NB, K); ``blk_term`` gives each
    block's term, ``blk_lam`` (NB,) its scale-mixture weight (1 for normal level effects)."""
    k = var.shape[1]
    prec = np.empty((blk_term.shape[0], k))
    for p in range(blk_term.shape[0]):
        for i in range(k):
            prec[p, i] = 1.0 / (var[blk_term[p], i] * blk_lam[p])
    return prec


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _system(var, vcell, lam, blk_lam, layout, y, V, mask):
    """Everything up to the factorisation: per-cell blocks, ``A`` and ``b``, the factor of ``M``.
    ``lam`` (C,) and ``blk_lam`` (NB,) are the scale-mixture weights of the cell deviations and
    the level effects (all 1 for normal ones). ``layout`` is the tuple of
    :func:`bayesdecide.model.engine.layout_arrays`. Returns
    ``(ok, data log p, W, Wy, log dets, store, b, linv, cst, lr, m1, mr, log|M|)``."""
    (cell_pair_idx, _, combo, combo_pair_idx, _, term_blk, store_kind, store_a, store_b,
     blk_term, _, n_sparse) = layout  # fmt: skip
    w, wy, logdets, lpd, ok = _cell_blocks(y, V, mask, vcell, lam)
    n_blocks = blk_term.shape[0]
    store, b = _assemble(
        cell_pair_idx, combo, combo_pair_idx, term_blk, store_kind.shape[0], n_blocks, w, wy
    )
    d, cpl, r, b1, br = _split(
        store, b, store_kind, store_a, store_b, n_sparse, n_blocks - n_sparse,
        _precisions(var, blk_term, blk_lam),
    )  # fmt: skip
    fine, linv, cst, lr, m1, mr, logdet_m = _factor(d, cpl, r, b1, br)
    return ok and fine, lpd, w, wy, logdets, store, b, linv, cst, lr, m1, mr, logdet_m


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _selected_inverse(linv, cst, lr, store_kind, store_a, store_b):
    """Selected blocks of ``S = M^-1`` from the block factor of :func:`_factor`: the rest's
    ``S_r`` (Qr, Qr), the sparse levels' diagonal blocks ``s_ll`` (L1, K, K), and every block
    that ``A`` stores, packed like it (S, NP) for the per-cell gather of the cell gradient."""
    n_sparse, k, _ = linv.shape
    qr = lr.shape[0]
    pos = packed_positions(k)
    npk = k * (k + 1) // 2
    s_r = inverse_from_cholesky(lr) if qr > 0 else np.zeros((0, 0))
    cs = np.dot(cst, s_r) if qr > 0 else np.zeros((n_sparse * k, 0))  # C S_r
    s_ll = np.zeros((n_sparse, k, k))
    # S[(a, .), rest] = -L_a^-T C_a S_r; S_aa = L_a^-T (I + C_a S_r C_a') L_a^-1
    s_1r = np.zeros((n_sparse, k, qr))
    inner = np.empty((k, k))
    for ls in range(n_sparse):
        base = ls * k
        for i in range(k):  # I + C_a S_r C_a', symmetric
            row_i = cs[base + i]
            for j in range(i + 1):
                row_j = cst[base + j]
                s = 1.0 if i == j else 0.0
                for col in range(qr):
                    s += row_i[col] * row_j[col]
                inner[i, j] = s
                inner[j, i] = s
        for i in range(k):
            for j in range(i + 1):
                s = 0.0
                for q in range(i, k):
                    for u in range(j, k):
                        s += linv[ls, q, i] * inner[q, u] * linv[ls, u, j]
                s_ll[ls, i, j] = s
                s_ll[ls, j, i] = s
        for q in range(k):
            src = cs[base + q]
            for i in range(q + 1):
                coef = -linv[ls, q, i]
                out = s_1r[ls, i]
                for col in range(qr):
                    out[col] += coef * src[col]
    s_store = np.zeros((store_kind.shape[0], npk))
    blk = np.zeros((k, k))
    for st in range(store_kind.shape[0]):
        a = store_a[st]
        bb = store_b[st]
        kind = store_kind[st]
        if kind == 0:
            for i in range(k):
                for j in range(k):
                    blk[i, j] = s_ll[a, i, j]
        elif kind == 1:
            for i in range(k):
                for j in range(k):
                    blk[i, j] = s_1r[a, i, bb * k + j]
        else:
            for i in range(k):
                for j in range(k):
                    blk[i, j] = s_r[a * k + i, bb * k + j]
        for i in range(k):
            for j in range(i + 1):
                s_store[st, pos[i, j]] = 0.5 * (blk[i, j] + blk[j, i])
    return s_r, s_ll, s_store


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _level_variance_grad(var, blk_term, blk_lam, m1, mr, s_ll, s_r):
    """Gradient of log p in the level variances (T, K) and in the blocks' scale-mixture weights
    (NB,): with ``v = var[t] lam_p`` a block's prior variance, ``g = 1/2 [(m^2 + S_jj) / v^2 -
    1/v]``; d/d var[t] sums ``lam_p g`` over the term's levels, d/d lam_p sums ``var[t] g`` over
    the outcomes."""
    n_terms, k = var.shape
    n_sparse = s_ll.shape[0]
    dvar = np.zeros((n_terms, k))
    dlam = np.zeros(blk_term.shape[0])
    for p in range(blk_term.shape[0]):
        t = blk_term[p]
        for i in range(k):
            v = var[t, i] * blk_lam[p]
            if p < n_sparse:
                m = m1[p * k + i]
                sjj = s_ll[p, i, i]
            else:
                o = (p - n_sparse) * k + i
                m = mr[o]
                sjj = s_r[o, o]
            g = 0.5 * ((m * m + sjj) / (v * v) - 1.0 / v)
            dvar[t, i] += blk_lam[p] * g
            dlam[p] += var[t, i] * g
    return dvar, dlam


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _cell_variance_grad(s_store, layout, m1, mr, w, wy, mask, lam, vcell):
    """Gradient of log p in the cell variances (K,) and in the cells' scale-mixture weights (C,):
    per cell, ``G_c = 1/2 [a a' - W + W T W]`` with ``T = X_c S X_c'`` and
    ``a = W_c (y_c - X_c m)``; d/d vcell_k = sum_c lam_c G_c,kk and d/d lam_c = sum_k vcell_k
    G_c,kk."""
    (cell_pair_idx, cell_pair_coef, combo, combo_pair_idx, combo_pair_coef, term_blk,
     _, _, _, _, _, _) = layout  # fmt: skip
    k, n_cells = wy.shape
    npk = k * (k + 1) // 2
    pos = packed_positions(k)
    dcell = np.zeros(k)
    dlam = np.zeros(n_cells)
    n_combo = combo_pair_idx.shape[0]
    t_combo = np.zeros((n_combo, npk))
    for g in range(n_combo):
        row = t_combo[g]
        for p in range(combo_pair_idx.shape[1]):
            src = s_store[combo_pair_idx[g, p]]
            coef = combo_pair_coef[p]
            for e in range(npk):
                row[e] += coef * src[e]
    tc_row = np.empty((n_cells, npk))
    for c in range(n_cells):
        row = tc_row[c]
        base = t_combo[combo[c]]
        for e in range(npk):
            row[e] = base[e]
        for p in range(cell_pair_idx.shape[1]):
            src = s_store[cell_pair_idx[c, p]]
            coef = cell_pair_coef[p]
            for e in range(npk):
                row[e] += coef * src[e]
    tc = np.ascontiguousarray(tc_row.T)  # (NP, C)
    m_all = np.concatenate((m1, mr)).reshape(-1, k)
    xm = np.zeros((k, n_cells))
    for c in range(n_cells):
        for t in range(term_blk.shape[1]):
            blk_id = term_blk[c, t]
            for i in range(k):
                xm[i, c] += m_all[blk_id, i]
    acc = np.empty(n_cells)
    alpha = np.empty(n_cells)
    wt = np.empty((k, n_cells))
    for i in range(k):
        # wt[q] = sum_p W[i, p] T[p, q]; wtw = sum_q wt[q] W[q, i]; alpha = Wy - W xm
        for q in range(k):
            for c in range(n_cells):
                wt[q, c] = 0.0
            for p in range(k):
                a, bb = pos[i, p], pos[p, q]
                for c in range(n_cells):
                    wt[q, c] += w[a, c] * tc[bb, c]
        for c in range(n_cells):
            acc[c] = 0.0
        for q in range(k):
            a = pos[q, i]
            for c in range(n_cells):
                acc[c] += wt[q, c] * w[a, c]
        for c in range(n_cells):
            alpha[c] = wy[i, c]
        for q in range(k):
            a = pos[i, q]
            for c in range(n_cells):
                alpha[c] -= w[a, c] * xm[q, c]
        total = 0.0
        pii = pos[i, i]
        for c in range(n_cells):
            g = 0.5 * mask[i, c] * (alpha[c] * alpha[c] - w[pii, c] + acc[c])
            total += lam[c] * g
            dlam[c] += vcell[i] * g
        dcell[i] = total
    return dcell, dlam


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def log_density(
    x, layout, y, V, mask, pidx, fixed_var, pidx_cell, fixed_var_cell, fam, pa, pb, nu, cell_w,
    level_nu, blk_w,
):  # fmt: skip
    """Log posterior density of the log spreads ``x`` (every normalising constant included) and
    its gradient. ``layout`` and the data arrays come from
    :class:`bayesdecide.model.engine.MarginalModel`; ``x`` holds the log spreads (the first
    ``fam.shape[0]``) and the log scale-mixture weights: of each observed cell when the cell
    deviations are Student-t (``nu`` > 0; ``cell_w`` (C,) their positions in ``x``) and of each
    level block when the level effects are (``level_nu`` > 0; ``blk_w`` (NB,) their positions,
    -1 for ``mu``'s block)."""
    store_kind, store_a, store_b = layout[6], layout[7], layout[8]
    blk_term, n_sparse = layout[9], layout[11]
    grad = np.zeros(x.shape[0])
    lp = _spread_prior(x[: fam.shape[0]], fam, pa, pb, grad)
    lam, lp_lam = _mixture_weights(x, cell_w, nu, grad)
    blk_lam, lp_blk = _mixture_weights(x, blk_w, level_nu, grad)
    lp += lp_lam + lp_blk
    var, vcell = _variances(x, pidx, fixed_var, pidx_cell, fixed_var_cell)
    n_terms, k = var.shape
    for t in range(n_terms):
        for i in range(k):
            if not (var[t, i] > 1e-300 and var[t, i] < 1e300):
                return -math.inf, grad
    for i in range(k):
        if not vcell[i] < 1e300:
            return -math.inf, grad
    ok, lpd, w, wy, _, store, b, linv, cst, lr, m1, mr, logdet_m = _system(
        var, vcell, lam, blk_lam, layout, y, V, mask
    )
    if not ok:
        return -math.inf, grad
    # log|Lambda| = sum_t n_levels_t sum_k log var[t, k] + K sum_p log w_p (w = 1: log 1 = 0.0 adds
    # nothing, so normal levels keep their arithmetic exactly)
    n_levels = layout[10]
    logdet_lambda = 0.0
    for t in range(n_terms):
        for i in range(k):
            logdet_lambda += n_levels[t] * math.log(var[t, i])
    for p in range(blk_lam.shape[0]):
        logdet_lambda += k * math.log(blk_lam[p])
    btm = np.dot(b[:n_sparse].ravel(), m1) + np.dot(b[n_sparse:].ravel(), mr)
    lp += lpd - 0.5 * (logdet_lambda + logdet_m - btm)

    s_r, s_ll, s_store = _selected_inverse(linv, cst, lr, store_kind, store_a, store_b)
    dvar, dblk = _level_variance_grad(var, blk_term, blk_lam, m1, mr, s_ll, s_r)
    dcell = np.zeros(k)
    dlam = np.zeros(y.shape[1])
    if np.any(pidx_cell >= 0) or nu > 0.0:
        dcell, dlam = _cell_variance_grad(s_store, layout, m1, mr, w, wy, mask, lam, vcell)
    for t in range(n_terms):
        for i in range(k):
            p = pidx[t, i]
            if p >= 0:
                grad[p] += dvar[t, i] * 2.0 * var[t, i]
    for i in range(k):
        p = pidx_cell[i]
        if p >= 0:
            grad[p] += dcell[i] * 2.0 * vcell[i]
    if nu > 0.0:
        for c in range(y.shape[1]):
            grad[cell_w[c]] += dlam[c] * lam[c]
    if level_nu > 0.0:
        for p in range(blk_w.shape[0]):
            if blk_w[p] >= 0:
                grad[blk_w[p]] += dblk[p] * blk_lam[p]
    if not math.isfinite(lp) or not np.all(np.isfinite(grad)):
        return -math.inf, np.zeros(x.shape[0])
    return lp, grad


@numba.njit(cache=True, nogil=True, error_model="numpy")
def signed_log_density(
    z, signed, layout, y, V, mask, pidx, fixed_var, pidx_cell, fixed_var_cell, fam, pa, pb, nu,
    cell_w, level_nu, blk_w,
):  # fmt: skip
    """:func:`log_density` in the sampler's coordinates ``z``: ``z[p] = x[p]`` (a log spread)
    where ``signed[p]`` is false, and a signed spread ``z[p]`` with ``exp(x[p]) = |z[p]|`` where
    it is true. The signed coordinate carries the spread's prior mirrored onto the whole line
    (half on each side), so ``|z|`` has exactly the spread's posterior; the density is
    ``p(x) / (2 |z|)`` and its gradient ``(dlog p/dx - 1) / z``. A spread whose posterior reaches
    zero (no variation in the data) then has a bounded, symmetric density around zero
    instead of the exponential tail that ``x`` has towards minus infinity, which NUTS explores
    slowly."""
    x = z.copy()
    shift = 0.0
    for p in range(z.shape[0]):
        if signed[p]:
            a = abs(z[p])
            if not a > 0.0:
                return -math.inf, np.zeros(z.shape[0])
            x[p] = math.log(a)
            shift -= x[p] + _LOG_2
    lp, grad = log_density(
        x, layout, y, V, mask, pidx, fixed_var, pidx_cell, fixed_var_cell, fam, pa, pb, nu,
        cell_w, level_nu, blk_w,
    )  # fmt: skip
    if not math.isfinite(lp):
        return lp, grad
    for p in range(z.shape[0]):
        if signed[p]:
            grad[p] = (grad[p] - 1.0) / z[p]
    return lp + shift, grad


@numba.njit(cache=True, nogil=True, error_model="numpy")
def draw_effects(
    x_draws, lam_draws, blk_lam_draws, z_draws, term_blk_all, obs_row, layout, y, V, vinv, mask,
    pidx, fixed_var, pidx_cell, fixed_var_cell,
):  # fmt: skip
    """Exact draws of the level effects and the cells' effects given each draw of the spreads.

    ``x_draws`` (n, P) log spreads; ``lam_draws`` (n, C) every cell's scale-mixture weight of its
    deviation variance (all 1 for normal deviations); ``blk_lam_draws`` (n, NB) every level
    block's weight of its prior variance (all 1 for normal level effects); ``z_draws`` (n, NZ) standard normal numbers, NZ = NB K + C K
    (the level blocks in elimination order: sparse levels, then the rest; then the cells), used in
    that order. ``term_blk_all`` (C, T) gives every cell's level block in each term, observed or
    not; ``obs_row`` (C,) each cell's column in the data arrays ``y``/``V``/``mask`` (K or NP,
    C_obs; -1 without data), ``vinv`` (C_obs, K, K) the inverses of the observed ``V_c``.
    Returns ``theta`` (n, C, K), the level effects ``u`` (n, NB, K) (standardised) and the
    pointwise log-likelihood (n, C_obs) of each observed cell's estimates given the level effects,
    its own deviation integrated out.
    """
    blk_term = layout[9]
    n_sparse = layout[11]
    n_draws = x_draws.shape[0]
    n_cells = term_blk_all.shape[0]
    k, n_obs_cells = y.shape
    n_blocks = blk_term.shape[0]
    qr = (n_blocks - n_sparse) * k
    pos = packed_positions(k)
    theta = np.zeros((n_draws, n_cells, k))
    u = np.zeros((n_draws, n_blocks, k))
    loglik = np.zeros((n_draws, n_obs_cells))
    prec = np.zeros((k, k))
    low = np.zeros((k, k))
    resid = np.zeros(k)
    dev = np.zeros(k)
    noise = np.zeros(k)
    has_deviation = np.any(vcell_positive(pidx_cell, fixed_var_cell))
    lam_obs = np.ones(n_obs_cells)
    for n in range(n_draws):
        var, vcell = _variances(x_draws[n], pidx, fixed_var, pidx_cell, fixed_var_cell)
        for c in range(n_cells):
            if obs_row[c] >= 0:
                lam_obs[obs_row[c]] = lam_draws[n, c]
        ok, _, w, _, logdets, _, _, linv, cst, lr, m1, mr, _ = _system(
            var, vcell, lam_obs, blk_lam_draws[n], layout, y, V, mask
        )
        if not ok:
            theta[n] = math.nan
            continue
        z = z_draws[n]
        zr = n_sparse * k
        zc = n_blocks * k
        # rest level blocks: U_r = m_r + Lr^-T z_r
        delta = np.zeros(qr)
        for i in range(qr - 1, -1, -1):
            s = z[zr + i]
            for q in range(i + 1, qr):
                s -= lr[q, i] * delta[q]
            delta[i] = s / lr[i, i]
        for i in range(qr):
            u[n, n_sparse + i // k, i % k] = mr[i] + delta[i]
        # sparse levels given the rest: U_l = m_l + L_l^-T (z_l - C_l delta)
        cd = np.dot(cst, delta) if qr > 0 else np.zeros(n_sparse * k)
        for ls in range(n_sparse):
            for i in range(k):
                s = 0.0
                for q in range(i, k):
                    s += linv[ls, q, i] * (z[ls * k + q] - cd[ls * k + q])
                u[n, ls, i] = m1[ls * k + i] + s
        for c in range(n_cells):
            for i in range(k):
                v = 0.0
                for t in range(term_blk_all.shape[1]):
                    v += u[n, term_blk_all[c, t], i]
                theta[n, c, i] = v
            o = obs_row[c]
            lc = lam_draws[n, c]
            if o < 0:  # no data: the cell deviation from its prior
                for i in range(k):
                    theta[n, c, i] += math.sqrt(lc * vcell[i]) * z[zc + c * k + i]
                continue
            for i in range(k):
                resid[i] = y[i, o] - theta[n, c, i]
            quad = 0.0
            n_obs = 0
            for i in range(k):
                s = 0.0
                for j in range(k):
                    s += w[pos[i, j], o] * resid[j]
                quad += resid[i] * s
                dev[i] = lc * vcell[i] * s  # conditional mean of e: D W r
                n_obs += int(mask[i, o])
            loglik[n, o] = -0.5 * (logdets[o] + quad + n_obs * _LOG_2PI)
            if not has_deviation:
                continue
            # conditional draw of e: precision P = D^-1 + V^-1, mean D W r, draw mean + L^-T z
            for i in range(k):
                for j in range(k):
                    prec[i, j] = vinv[o, i, j]
                prec[i, i] += 1.0 / (lc * vcell[i])
            if not _chol_small(prec, low):
                theta[n, c] = math.nan
                continue
            for i in range(k - 1, -1, -1):
                s = z[zc + c * k + i]
                for q in range(i + 1, k):
                    s -= low[q, i] * noise[q]
                noise[i] = s / low[i, i]
            for i in range(k):
                theta[n, c, i] += dev[i] + noise[i]
    return theta, u, loglik


@numba.njit(cache=True, nogil=True, error_model="numpy")
def vcell_positive(pidx_cell, fixed_var_cell):
    """Whether each outcome has a cell deviation (a free spread or a positive fixed one)."""
    out = np.zeros(pidx_cell.shape[0], np.bool_)
    for i in range(pidx_cell.shape[0]):
        out[i] = pidx_cell[i] >= 0 or fixed_var_cell[i] > 0.0
    return out


__all__ = [
    "log_density",
    "signed_log_density",
    "spread_logp",
]
