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

_LOG_2PI = math.log(2.0 * math.pi)
_HALF_LOG_2PI = 0.5 * _LOG_2PI
_LOG_2 = math.log(2.0)
_LOG_PI = math.log(math.pi)

# prior families of a spread (positive); the codes are used by bayesdecide.model.priors
HALF_NORMAL, HALF_CAUCHY, EXPONENTIAL, HALF_STUDENT_T, GAMMA = range(1, 6)


# ------------------------------------------------------------------------------ scalar helpers
@numba.njit(cache=True, nogil=True)
def _student_t_const(nu: float) -> float:
    return math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu) - 0.5 * math.log(nu * math.pi)


@numba.njit(cache=True, nogil=True)
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
@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
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
@numba.njit(cache=True, nogil=True)
def _cell_blocks(y, V, mask, vcell):
    """Per observed cell: ``W_c`` (C, K*K, row-major blocks), ``W_c y_c`` (C, K), ``log|W_c^-1|``
    (C,) and the data part of log p. Missing outcomes (``mask`` 0) get zero rows and columns in
    ``W_c``."""
    n_cells, k = y.shape
    w_all = np.zeros((n_cells, k * k))
    wy_all = np.zeros((n_cells, k))
    logdets = np.zeros(n_cells)
    sig = np.empty((k, k))
    low = np.empty((k, k))
    linv = np.empty((k, k))
    w = np.empty((k, k))
    logp = 0.0
    for c in range(n_cells):
        n_obs = 0
        for i in range(k):
            for j in range(k):
                if mask[c, i] and mask[c, j]:
                    sig[i, j] = V[c, i, j]
                else:
                    sig[i, j] = 1.0 if i == j else 0.0
            if mask[c, i]:
                sig[i, i] += vcell[i]
                n_obs += 1
        if not _chol_small(sig, low):
            return w_all, wy_all, logdets, -math.inf
        logdet = 0.0
        for i in range(k):
            if mask[c, i]:
                logdet += 2.0 * math.log(low[i, i])
        _tri_inverse(low, linv)
        _inverse_from_tri_inverse(linv, w)
        quad = 0.0
        for i in range(k):
            s = 0.0
            for j in range(k):
                wij = w[i, j] if (mask[c, i] and mask[c, j]) else 0.0
                w_all[c, i * k + j] = wij
                s += wij * y[c, j]
            wy_all[c, i] = s
            quad += s * y[c, i]
        logdets[c] = logdet
        logp -= 0.5 * (logdet + quad + n_obs * _LOG_2PI)
    return w_all, wy_all, logdets, logp


@numba.njit(cache=True, nogil=True)
def _assemble(sp_code, rest_blk, n_sparse, n_blocks, w_all, wy_all):
    """``A = X' W X`` and ``b = X' W y`` in K x K blocks: the sparse term's diagonal blocks ``d``
    (L1, KK), its coupling ``cpl`` to the rest's level blocks (L1, NR, KK), the rest's upper block
    pairs ``r`` (NR, NR, KK; pair (p, q) filled for p <= q) and ``b1`` (L1, K), ``br`` (NR, K)."""
    n_cells, kk = w_all.shape
    k = wy_all.shape[1]
    n_rest = rest_blk.shape[1]
    d = np.zeros((n_sparse, kk))
    cpl = np.zeros((n_sparse, n_blocks, kk))
    r = np.zeros((n_blocks, n_blocks, kk))
    b1 = np.zeros((n_sparse, k))
    br = np.zeros((n_blocks, k))
    for c in range(n_cells):
        w = w_all[c]
        ls = sp_code[c]
        for e in range(kk):
            d[ls, e] += w[e]
        for i in range(k):
            b1[ls, i] += wy_all[c, i]
        for t in range(n_rest):
            p = rest_blk[c, t]
            for e in range(kk):
                cpl[ls, p, e] += w[e]
            for i in range(k):
                br[p, i] += wy_all[c, i]
            for u in range(t, n_rest):
                q = rest_blk[c, u]
                for e in range(kk):
                    r[p, q, e] += w[e]
    return d, cpl, r, b1, br


@numba.njit(cache=True, nogil=True)
def _factor(d, cpl, r, b1, br, prec_sparse, prec_rest):
    """Block Cholesky of ``M = Lambda^-1 + A``.

    Per sparse level ``l``: ``L_l`` (chol of its diagonal block) as ``linv`` = ``L_l^-1``, and
    ``C_l = L_l^-1 B_l`` stacked in ``cst`` (L1 K, Qr); the Schur complement of the rest,
    ``R - C' C``, and its lower factor ``lr``; the posterior mean ``m`` as ``m1`` (L1, K) and
    ``mr`` (Qr,); and ``log|M|``. ``prec_*`` are the prior precisions (1 / variance) per level
    block and outcome. ``ok`` is False when ``M`` is not positive definite."""
    n_sparse, kk = d.shape
    k = b1.shape[1]
    n_blocks = r.shape[0]
    qr = n_blocks * k
    dense = np.zeros((qr, qr))
    for p in range(n_blocks):
        for q in range(p, n_blocks):
            for i in range(k):
                for j in range(k):
                    v = r[p, q, i * k + j]
                    dense[p * k + i, q * k + j] = v
                    dense[q * k + j, p * k + i] = v
        for i in range(k):
            dense[p * k + i, p * k + i] += prec_rest[p, i]
    linv = np.zeros((n_sparse, k, k))
    cst = np.zeros((n_sparse * k, qr))
    z1 = np.zeros(n_sparse * k)
    blk = np.empty((k, k))
    low = np.empty((k, k))
    logdet = 0.0
    for ls in range(n_sparse):
        for i in range(k):
            for j in range(k):
                blk[i, j] = d[ls, i * k + j]
            blk[i, i] += prec_sparse[ls, i]
        if not _chol_small(blk, low):
            return False, linv, cst, dense, z1, br.ravel(), logdet
        _tri_inverse(low, linv[ls])
        for i in range(k):
            logdet += 2.0 * math.log(low[i, i])
            s = 0.0
            for p in range(i + 1):
                s += linv[ls, i, p] * b1[ls, p]
            z1[ls * k + i] = s
        for p in range(n_blocks):
            for i in range(k):
                for j in range(k):
                    s = 0.0
                    for q in range(i + 1):
                        s += linv[ls, i, q] * cpl[ls, p, q * k + j]
                    cst[ls * k + i, p * k + j] = s
    subtract_gram(dense, cst)
    lr, ok = cholesky_lower(dense)
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


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
def _precisions(var, sparse, n_levels, blk_term):
    """Prior precisions per sparse level (L1, K) and per rest level block (NR, K)."""
    k = var.shape[1]
    prec_sparse = np.empty((n_levels[sparse], k))
    for ls in range(n_levels[sparse]):
        for i in range(k):
            prec_sparse[ls, i] = 1.0 / var[sparse, i]
    prec_rest = np.empty((blk_term.shape[0], k))
    for p in range(blk_term.shape[0]):
        for i in range(k):
            prec_rest[p, i] = 1.0 / var[blk_term[p], i]
    return prec_sparse, prec_rest


@numba.njit(cache=True, nogil=True)
def log_density(
    x, sp_code, rest_blk, blk_term, n_levels, sparse, y, V, mask, pidx, fixed_var, pidx_cell,
    fixed_var_cell, fam, pa, pb,
):  # fmt: skip
    """Log posterior density of the log spreads ``x`` (every normalising constant included) and
    its gradient. See the module docstring; the arrays are those of :class:`MarginalProblem`."""
    grad = np.zeros(x.shape[0])
    lp = _spread_prior(x, fam, pa, pb, grad)
    var, vcell = _variances(x, pidx, fixed_var, pidx_cell, fixed_var_cell)
    n_terms, k = var.shape
    kk = k * k
    for t in range(n_terms):
        for i in range(k):
            if not (var[t, i] > 1e-300 and var[t, i] < 1e300):
                return -math.inf, grad
    w_all, wy_all, _, lpd = _cell_blocks(y, V, mask, vcell)
    if not math.isfinite(lpd):
        return -math.inf, grad
    n_sparse = n_levels[sparse]
    n_blocks = blk_term.shape[0]
    n_rest = rest_blk.shape[1]
    d, cpl, r, b1, br = _assemble(sp_code, rest_blk, n_sparse, n_blocks, w_all, wy_all)
    prec_sparse, prec_rest = _precisions(var, sparse, n_levels, blk_term)
    ok, linv, cst, lr, m1, mr, logdet_m = _factor(d, cpl, r, b1, br, prec_sparse, prec_rest)
    if not ok:
        return -math.inf, grad
    qr = n_blocks * k
    logdet_lambda = 0.0
    for t in range(n_terms):
        for i in range(k):
            logdet_lambda += n_levels[t] * math.log(var[t, i])
    btm = np.dot(b1.ravel(), m1) + np.dot(br.ravel(), mr)
    lp += lpd - 0.5 * (logdet_lambda + logdet_m - btm)

    # ---- selected blocks of S = M^-1: the rest's S_r, the cross blocks P and the sparse S_ll
    s_r = inverse_from_cholesky(lr)
    cs = np.dot(cst, s_r)  # (L1 K, Qr) = C S_r
    p_blk = np.zeros((n_sparse, n_blocks, kk))  # S[(l, i), (p, j)] = -(L_l^-T C_l S_r)
    s_ll = np.zeros((n_sparse, kk))
    g = np.zeros((k, k))
    for ls in range(n_sparse):
        for i in range(k):
            for col in range(qr):
                s = 0.0
                for q in range(i, k):
                    s += linv[ls, q, i] * cs[ls * k + q, col]
                p_blk[ls, col // k, i * k + col % k] = -s
        for i in range(k):
            for j in range(k):
                s = 0.0
                for col in range(qr):
                    s += cs[ls * k + i, col] * cst[ls * k + j, col]
                g[i, j] = s
        for i in range(k):
            for j in range(k):
                s = 0.0
                for q in range(max(i, j), k):
                    s += linv[ls, q, i] * linv[ls, q, j]
                for q in range(i, k):
                    for u in range(j, k):
                        s += linv[ls, q, i] * g[q, u] * linv[ls, u, j]
                s_ll[ls, i * k + j] = s

    # ---- gradient in the level variances: 1/2 [(m^2 + S_jj) / v^2 - 1/v] per level
    dvar = np.zeros((n_terms, k))
    for ls in range(n_sparse):
        for i in range(k):
            v = var[sparse, i]
            dvar[sparse, i] += 0.5 * (
                (m1[ls * k + i] ** 2 + s_ll[ls, i * k + i]) / (v * v) - 1.0 / v
            )
    for p in range(n_blocks):
        t = blk_term[p]
        for i in range(k):
            v = var[t, i]
            o = p * k + i
            dvar[t, i] += 0.5 * ((mr[o] ** 2 + s_r[o, o]) / (v * v) - 1.0 / v)

    # ---- gradient in the cell variances: 1/2 sum_c [a a' - W + W T W]_kk, T = X_c S X_c'
    dcell = np.zeros(k)
    if np.any(pidx_cell >= 0):
        s_blk = np.zeros((n_blocks, n_blocks, kk))
        for p in range(n_blocks):
            for q in range(p, n_blocks):
                for i in range(k):
                    for j in range(k):
                        s_blk[p, q, i * k + j] = s_r[p * k + i, q * k + j]
        tc = np.zeros(kk)
        u = np.zeros(kk)
        xm = np.zeros(k)
        n_cells = y.shape[0]
        for c in range(n_cells):
            ls = sp_code[c]
            for e in range(kk):
                tc[e] = s_ll[ls, e]
            for i in range(k):
                xm[i] = m1[ls * k + i]
            for t in range(n_rest):
                p = rest_blk[c, t]
                for i in range(k):
                    xm[i] += mr[p * k + i]
                for e in range(kk):
                    tc[e] += 2.0 * p_blk[ls, p, e] + s_blk[p, p, e]
                for t2 in range(t + 1, n_rest):
                    q = rest_blk[c, t2]
                    for e in range(kk):
                        tc[e] += 2.0 * s_blk[p, q, e]
            w = w_all[c]
            # u = tc @ w ; then diag(w @ u)
            for i in range(k):
                for j in range(k):
                    s = 0.0
                    for q in range(k):
                        s += tc[i * k + q] * w[q * k + j]
                    u[i * k + j] = s
            for i in range(k):
                if not mask[c, i]:
                    continue
                alpha = wy_all[c, i]
                wtw = 0.0
                for q in range(k):
                    alpha -= w[i * k + q] * xm[q]
                    wtw += w[i * k + q] * u[q * k + i]
                dcell[i] += 0.5 * (alpha * alpha - w[i * k + i] + wtw)
    for t in range(n_terms):
        for i in range(k):
            p = pidx[t, i]
            if p >= 0:
                grad[p] += dvar[t, i] * 2.0 * var[t, i]
    for i in range(k):
        p = pidx_cell[i]
        if p >= 0:
            grad[p] += dcell[i] * 2.0 * vcell[i]
    return lp, grad


@numba.njit(cache=True, nogil=True)
def draw_effects(
    x_draws, z_draws, sp_code_all, rest_blk_all, obs_row, obs_cells, blk_term, n_levels, sparse,
    y, V, vinv, mask, pidx, fixed_var, pidx_cell, fixed_var_cell,
):  # fmt: skip
    """Exact draws of the level effects and the cells' effects given each draw of the spreads.

    ``x_draws`` (n, P) log spreads; ``z_draws`` (n, NZ) standard normal numbers, NZ = L1 K + Qr +
    C K, used in that order. ``sp_code_all``/``rest_blk_all`` give every cell's levels (observed or
    not); ``obs_row`` (C,) is each cell's row in the data arrays ``y``/``V``/``vinv``/``mask``
    (-1 without data) and ``obs_cells`` the inverse map. Returns ``theta`` (n, C, K), the level
    effects ``u1`` (n, L1, K) of the sparse term and ``ur`` (n, NR, K) of the rest's level
    blocks (all standardised), and the pointwise log-likelihood (n, C_obs) of each observed cell's
    estimates given the level effects, its own deviation integrated out.
    """
    n_draws = x_draws.shape[0]
    n_cells = sp_code_all.shape[0]
    k = y.shape[1]
    n_sparse = n_levels[sparse]
    n_blocks = blk_term.shape[0]
    n_rest = rest_blk_all.shape[1]
    qr = n_blocks * k
    theta = np.zeros((n_draws, n_cells, k))
    u1 = np.zeros((n_draws, n_sparse, k))
    ur = np.zeros((n_draws, n_blocks, k))
    loglik = np.zeros((n_draws, y.shape[0]))
    sp_obs = sp_code_all[obs_cells]
    rb_obs = rest_blk_all[obs_cells]
    prec = np.zeros((k, k))
    low = np.zeros((k, k))
    resid = np.zeros(k)
    dev = np.zeros(k)
    noise = np.zeros(k)
    has_deviation = np.any(vcell_positive(pidx_cell, fixed_var_cell))
    for n in range(n_draws):
        var, vcell = _variances(x_draws[n], pidx, fixed_var, pidx_cell, fixed_var_cell)
        w_all, wy_all, logdets, _ = _cell_blocks(y, V, mask, vcell)
        d, cpl, r, b1, br = _assemble(sp_obs, rb_obs, n_sparse, n_blocks, w_all, wy_all)
        prec_sparse, prec_rest = _precisions(var, sparse, n_levels, blk_term)
        ok, linv, cst, lr, m1, mr, _ = _factor(d, cpl, r, b1, br, prec_sparse, prec_rest)
        if not ok:
            theta[n] = math.nan
            continue
        z = z_draws[n]
        zr = n_sparse * k
        zc = zr + qr
        # rest level blocks: U_r = m_r + Lr^-T z_r
        delta = np.zeros(qr)
        for i in range(qr - 1, -1, -1):
            s = z[zr + i]
            for q in range(i + 1, qr):
                s -= lr[q, i] * delta[q]
            delta[i] = s / lr[i, i]
        for i in range(qr):
            ur[n, i // k, i % k] = mr[i] + delta[i]
        # sparse levels given the rest: U_l = m_l + L_l^-T (z_l - C_l delta)
        cd = np.dot(cst, delta) if qr > 0 else np.zeros(n_sparse * k)
        for ls in range(n_sparse):
            for i in range(k):
                s = 0.0
                for q in range(i, k):
                    s += linv[ls, q, i] * (z[ls * k + q] - cd[ls * k + q])
                u1[n, ls, i] = m1[ls * k + i] + s
        for c in range(n_cells):
            for i in range(k):
                v = u1[n, sp_code_all[c], i]
                for t in range(n_rest):
                    v += ur[n, rest_blk_all[c, t], i]
                theta[n, c, i] = v
            o = obs_row[c]
            if o < 0:  # no data: the cell deviation from its prior
                for i in range(k):
                    theta[n, c, i] += math.sqrt(vcell[i]) * z[zc + c * k + i]
                continue
            quad = 0.0
            n_obs = 0
            for i in range(k):
                resid[i] = y[o, i] - theta[n, c, i]
            for i in range(k):
                if mask[o, i]:
                    n_obs += 1
                    s = 0.0
                    for j in range(k):
                        s += w_all[o, i * k + j] * resid[j]
                    quad += resid[i] * s
                    dev[i] = vcell[i] * s  # conditional mean of e: D W r
                else:
                    dev[i] = 0.0
            loglik[n, o] = -0.5 * (logdets[o] + quad + n_obs * _LOG_2PI)
            if not has_deviation:
                continue
            # conditional draw of e: precision P = D^-1 + V^-1, mean D W r, draw mean + L^-T z
            for i in range(k):
                for j in range(k):
                    prec[i, j] = vinv[o, i, j]
                prec[i, i] += 1.0 / vcell[i]
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
    return theta, u1, ur, loglik


@numba.njit(cache=True, nogil=True)
def vcell_positive(pidx_cell, fixed_var_cell):
    """Whether each outcome has a cell deviation (a free spread or a positive fixed one)."""
    out = np.zeros(pidx_cell.shape[0], np.bool_)
    for i in range(pidx_cell.shape[0]):
        out[i] = pidx_cell[i] >= 0 or fixed_var_cell[i] > 0.0
    return out


__all__ = [
    "EXPONENTIAL",
    "GAMMA",
    "HALF_CAUCHY",
    "HALF_NORMAL",
    "HALF_STUDENT_T",
    "log_density",
    "spread_logp",
]
