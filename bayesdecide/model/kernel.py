"""The hierarchical model's log density and gradient, compiled once and cached on disk.

PyMC compiles a model's log density through PyTensor and numba for every new model, and nutpie wraps
it in two more numba C callbacks: about 7-10 s on the 2-core CI machine even for a trivial model,
most of a retention fit. This module writes the cell-statistics model of
:mod:`bayesdecide.model.hierarchical` (the parameterisation of :mod:`bayesdecide.model.structure`,
the priors of :mod:`bayesdecide.model.priors` and the whitened likelihood) directly as one numba
function with a hand-written gradient, and hands nutpie C callbacks defined at module level with
``cache=True``: numba compiles them the first time they are used on a machine (a few seconds) and
loads them from its cache afterwards, so a fit has no per-model compilation. The model's arrays
travel to the callbacks through nutpie's ``user_data`` pointer.

The density equals PyMC's ``model.logp()`` of :func:`~bayesdecide.model.hierarchical.build_model`
on the same unconstrained point, constants included, and so does its gradient
(``tests/model/test_kernel.py`` checks both for every prior family).

Unconstrained coordinates, in order (``K`` modelled outcomes, ``G`` groups, ``P`` contrasts,
``C`` cells): ``mu`` (K); for each group whose spread prior is not ``Fixed``, ``log sigma_g`` (K);
``log sigma_cell`` (K) unless fixed; ``log cell_nu`` (1) unless fixed; ``z_levels`` (P x K, row
major); ``z_cell`` (C x K).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from bayesdecide.model.inputs import ModelInputs
from bayesdecide.model.priors import Prior
from bayesdecide.model.structure import Structure

FIXED, NORMAL, STUDENT_T, HALF_NORMAL, HALF_CAUCHY, EXPONENTIAL, HALF_STUDENT_T, GAMMA = range(8)
FAMILY_CODES = {
    "Fixed": (FIXED, ("value",)),
    "Normal": (NORMAL, ("mu", "sigma")),
    "StudentT": (STUDENT_T, ("nu", "mu", "sigma")),
    "HalfNormal": (HALF_NORMAL, ("sigma",)),
    "HalfCauchy": (HALF_CAUCHY, ("beta",)),
    "Exponential": (EXPONENTIAL, ("lam",)),
    "HalfStudentT": (HALF_STUDENT_T, ("nu", "sigma")),
    "Gamma": (GAMMA, ("alpha", "beta")),
}
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)
_LOG_PI = math.log(math.pi)
_HEADER = 16  # n_dim, K, C, P, G, R, then the addresses of 10 arrays


# ---------------------------------------------------------------------------- scalar helpers
@numba.njit(cache=True)
def digamma(x: float) -> float:
    """psi(x) for x > 0: recurrence up to 10, then the asymptotic series (error below 1e-13)."""
    shift = 0.0
    while x < 10.0:
        shift -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    tail = f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))))
    return shift + math.log(x) - 0.5 / x - tail


@numba.njit(cache=True)
def _student_t_const(nu: float) -> float:
    return math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu) - 0.5 * math.log(nu * math.pi)


@numba.njit(cache=True)
def prior_logp(family: int, a: float, b: float, c: float, v: float) -> tuple[float, float]:
    """Log density of a prior at ``v`` and its derivative in ``v`` (parameters as in PyMC)."""
    if family == NORMAL:  # a = mu, b = sigma
        z = (v - a) / b
        return -0.5 * z * z - math.log(b) - _HALF_LOG_2PI, -z / b
    if family == STUDENT_T:  # a = nu, b = mu, c = sigma
        z = (v - b) / c
        lp = _student_t_const(a) - math.log(c) - 0.5 * (a + 1.0) * math.log1p(z * z / a)
        return lp, -(a + 1.0) * z / (c * (a + z * z))
    if family == HALF_NORMAL:  # a = sigma
        z = v / a
        return _LOG_2 - _HALF_LOG_2PI - math.log(a) - 0.5 * z * z, -z / a
    if family == HALF_CAUCHY:  # a = beta
        z = v / a
        return _LOG_2 - _LOG_PI - math.log(a) - math.log1p(z * z), -2.0 * v / (a * a + v * v)
    if family == EXPONENTIAL:  # a = lam
        return math.log(a) - a * v, -a
    if family == HALF_STUDENT_T:  # a = nu, b = sigma
        z = v / b
        lp = _LOG_2 + _student_t_const(a) - math.log(b) - 0.5 * (a + 1.0) * math.log1p(z * z / a)
        return lp, -(a + 1.0) * v / (a * b * b + v * v)
    if family == GAMMA:  # a = alpha (shape), b = beta (rate)
        lp = a * math.log(b) - math.lgamma(a) + (a - 1.0) * math.log(v) - b * v
        return lp, (a - 1.0) / v - b
    return 0.0, 0.0  # FIXED: not a parameter


# ------------------------------------------------------------------------------ the density
@numba.njit(cache=True)
def log_density(
    x,
    grad,
    n_out,
    n_cells,
    n_contrasts,
    n_groups,
    family,
    params,
    offset,
    group_of_contrast,
    obs_cells,
    design,
    level_weight,
    cell_weight,
    whiten,
    z_obs,
):
    """Log density at unconstrained ``x``; writes its gradient into ``grad``.

    ``family`` / ``params`` (3 per slot) / ``offset`` are per slot: 0 ``mu``, 1..G the group
    spreads, G+1 ``sigma_cell``, G+2 ``cell_nu``; ``offset`` has two more entries, the starts of
    ``z_levels`` and ``z_cell`` (-1 for fixed slots). ``level_weight`` is per contrast (P, K).
    """
    k_n, g_n = n_out, n_groups
    for i in range(grad.shape[0]):
        grad[i] = 0.0
    lp = 0.0

    # hypermean
    for k in range(k_n):
        v, d = prior_logp(family[0], params[0, 0], params[0, 1], params[0, 2], x[k])
        lp += v
        grad[k] += d

    # spreads (rows 0..G-1 groups, row G cells), log-transformed
    log_s = np.empty((g_n + 1, k_n))
    g_log_s = np.zeros((g_n + 1, k_n))
    for s in range(g_n + 1):
        slot = s + 1
        if family[slot] == FIXED:
            for k in range(k_n):
                log_s[s, k] = math.log(params[slot, 0])
        else:
            o = offset[slot]
            for k in range(k_n):
                ls = x[o + k]
                val = math.exp(ls)
                v, d = prior_logp(
                    family[slot], params[slot, 0], params[slot, 1], params[slot, 2], val
                )
                lp += v + ls  # + log-Jacobian
                log_s[s, k] = ls
                grad[o + k] += d * val + 1.0

    # degrees of freedom of the cell deviations
    nu_slot = g_n + 2
    nu_free = family[nu_slot] != FIXED
    if nu_free:
        log_nu = x[offset[nu_slot]]
        nu = math.exp(log_nu)
        v, d = prior_logp(
            family[nu_slot], params[nu_slot, 0], params[nu_slot, 1], params[nu_slot, 2], nu
        )
        lp += v + log_nu
        g_nu = d
    else:
        nu = params[nu_slot, 0]
        g_nu = 0.0

    # contrast coordinates: z ~ N(0, S**W), coef = z * S**(1 - W)
    oz = offset[g_n + 3]
    coef = np.empty((n_contrasts, k_n))
    for p in range(n_contrasts):
        g = group_of_contrast[p]
        for k in range(k_n):
            ls = log_s[g, k]
            w = level_weight[p, k]
            z = x[oz + p * k_n + k]
            inv_var = math.exp(-2.0 * w * ls)
            lp += -_HALF_LOG_2PI - w * ls - 0.5 * z * z * inv_var
            grad[oz + p * k_n + k] += -z * inv_var
            g_log_s[g, k] += w * (z * z * inv_var - 1.0)
            coef[p, k] = z * math.exp((1.0 - w) * ls)

    # cell deviations: z ~ StudentT(nu, 0, s**w), e = z * s**(1 - w); theta
    oc = offset[g_n + 4]
    const = _student_t_const(nu)
    dconst = 0.5 * (digamma(0.5 * (nu + 1.0)) - digamma(0.5 * nu)) - 0.5 / nu if nu_free else 0.0
    theta = np.empty((n_cells, k_n))
    dev = np.empty((n_cells, k_n))
    for c in range(n_cells):
        for k in range(k_n):
            ls = log_s[g_n, k]
            w = cell_weight[c, k]
            z = x[oc + c * k_n + k]
            scale = math.exp(w * ls)
            u2 = (z / scale) ** 2
            lp += const - w * ls - 0.5 * (nu + 1.0) * math.log1p(u2 / nu)
            grad[oc + c * k_n + k] += -(nu + 1.0) * z / (nu * scale * scale + z * z)
            g_log_s[g_n, k] += w * (-1.0 + (nu + 1.0) * u2 / (nu + u2))
            if nu_free:
                g_nu += (
                    dconst - 0.5 * math.log1p(u2 / nu) + 0.5 * (nu + 1.0) * u2 / (nu * (nu + u2))
                )
            e = z * math.exp((1.0 - w) * ls)
            dev[c, k] = e
            t = x[k] + e
            for p in range(n_contrasts):
                t += design[c, p] * coef[p, k]
            theta[c, k] = t

    # whitened likelihood: z_obs[r] ~ Normal(whiten[r] @ theta[obs_cells[r]], 1)
    g_theta = np.zeros((n_cells, k_n))
    for r in range(obs_cells.shape[0]):
        c = obs_cells[r]
        for i in range(k_n):
            res = z_obs[r, i]
            for j in range(k_n):
                res -= whiten[r, i, j] * theta[c, j]
            lp -= 0.5 * res * res + _HALF_LOG_2PI
            for j in range(k_n):
                g_theta[c, j] += whiten[r, i, j] * res

    # back-propagate d lp / d theta
    g_coef = np.zeros((n_contrasts, k_n))
    for c in range(n_cells):
        for k in range(k_n):
            gt = g_theta[c, k]
            grad[k] += gt
            w = cell_weight[c, k]
            grad[oc + c * k_n + k] += gt * math.exp((1.0 - w) * log_s[g_n, k])
            g_log_s[g_n, k] += gt * (1.0 - w) * dev[c, k]
            for p in range(n_contrasts):
                g_coef[p, k] += design[c, p] * gt
    for p in range(n_contrasts):
        g = group_of_contrast[p]
        for k in range(k_n):
            w = level_weight[p, k]
            grad[oz + p * k_n + k] += g_coef[p, k] * math.exp((1.0 - w) * log_s[g, k])
            g_log_s[g, k] += g_coef[p, k] * (1.0 - w) * coef[p, k]
    for s in range(g_n + 1):
        if family[s + 1] != FIXED:
            o = offset[s + 1]
            for k in range(k_n):
                grad[o + k] += g_log_s[s, k]
    if nu_free:
        grad[offset[nu_slot]] += g_nu * nu + 1.0
    return lp


# ------------------------------------------------------------------------- nutpie callbacks
@intrinsic
def _as_pointer(typingctx, address):
    """An int64 address as a ``void*`` (for ``numba.carray``)."""
    sig = types.voidptr(address)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return sig, codegen


_LOGP_SIGNATURE = types.int64(
    types.uint64,
    types.CPointer(types.double),
    types.CPointer(types.double),
    types.CPointer(types.double),
    types.voidptr,
)
_EXPAND_SIGNATURE = types.int64(
    types.uint64,
    types.uint64,
    types.CPointer(types.double),
    types.CPointer(types.double),
    types.voidptr,
)


@numba.cfunc(_LOGP_SIGNATURE, cache=True)
def _logp_callback(dim, x_ptr, grad_ptr, logp_ptr, user_data):  # pragma: no cover - numba
    h = numba.carray(user_data, (_HEADER,), np.int64)
    n_dim, k_n, c_n, p_n, g_n, r_n = h[0], h[1], h[2], h[3], h[4], h[5]
    if dim != n_dim:
        return -1
    family = numba.carray(_as_pointer(h[6]), (g_n + 3,), np.int64)
    params = numba.carray(_as_pointer(h[7]), (g_n + 3, 3), np.float64)
    offset = numba.carray(_as_pointer(h[8]), (g_n + 5,), np.int64)
    group_of_contrast = numba.carray(_as_pointer(h[9]), (p_n,), np.int64)
    obs_cells = numba.carray(_as_pointer(h[10]), (r_n,), np.int64)
    design = numba.carray(_as_pointer(h[11]), (c_n, p_n), np.float64)
    level_weight = numba.carray(_as_pointer(h[12]), (p_n, k_n), np.float64)
    cell_weight = numba.carray(_as_pointer(h[13]), (c_n, k_n), np.float64)
    whiten = numba.carray(_as_pointer(h[14]), (r_n, k_n, k_n), np.float64)
    z_obs = numba.carray(_as_pointer(h[15]), (r_n, k_n), np.float64)
    x = numba.carray(x_ptr, (n_dim,))
    grad = numba.carray(grad_ptr, (n_dim,))
    out = numba.carray(logp_ptr, ())
    lp = log_density(
        x,
        grad,
        k_n,
        c_n,
        p_n,
        g_n,
        family,
        params,
        offset,
        group_of_contrast,
        obs_cells,
        design,
        level_weight,
        cell_weight,
        whiten,
        z_obs,
    )
    out[()] = lp
    if not np.isfinite(lp):
        return 4
    for i in range(n_dim):
        if not np.isfinite(grad[i]):
            return 3
    return 0


@numba.cfunc(_EXPAND_SIGNATURE, cache=True)
def _expand_callback(dim, n_expanded, x_ptr, out_ptr, user_data):  # pragma: no cover - numba
    # the trace stores the unconstrained coordinates; bayesdecide.model.sampling transforms them
    if n_expanded != dim:
        return -1
    x = numba.carray(x_ptr, (dim,))
    out = numba.carray(out_ptr, (dim,))
    for i in range(dim):
        out[i] = x[i]
    return 0


# ------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class Block:
    """One named block of the unconstrained vector: ``x[start:stop]`` reshaped to ``shape``."""

    name: str
    start: int
    shape: tuple[int, ...]
    log_transformed: bool

    @property
    def stop(self) -> int:
        return self.start + int(np.prod(self.shape, dtype=int))


@dataclass
class CompiledDensity:
    """The model's log density as arrays for the compiled callbacks, plus the coordinate layout."""

    blocks: list[Block]
    arrays: dict[str, np.ndarray]
    header: np.ndarray
    log_start: dict[str, float] = field(default_factory=dict)  # block -> central log value
    fixed: dict[str, float] = field(default_factory=dict)  # slot -> value of a Fixed prior

    @property
    def n_dim(self) -> int:
        return self.blocks[-1].stop

    def logp_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density and gradient at unconstrained ``x`` (the callbacks' function, from Python)."""
        a = self.arrays
        grad = np.zeros(self.n_dim)
        dims = self.header[1:5]
        lp = log_density(
            np.ascontiguousarray(x, dtype=float),
            grad,
            *(int(d) for d in dims),
            a["family"],
            a["params"],
            a["offset"],
            a["group_of_contrast"],
            a["obs_cells"],
            a["design"],
            a["level_weight"],
            a["cell_weight"],
            a["whiten"],
            a["z_obs"],
        )
        return float(lp), grad

    def initial_point(self, seed: int | None) -> np.ndarray:
        """Start: locations 0, spreads at their prior's central value, each jittered by U(-1, 1)."""
        x = np.zeros(self.n_dim)
        for b in self.blocks:
            if b.log_transformed:
                x[b.start : b.stop] = self.log_start[b.name]
        rng = np.random.default_rng(seed)
        return x + rng.uniform(-1.0, 1.0, self.n_dim)

    def constrained(self, trace: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Constrained parameter draws by block name from nutpie's trace of the coordinates.

        ``trace[name]`` has dims (chain, draw, block size); spreads are exponentiated.
        """
        out = {}
        for b in self.blocks:
            v = np.asarray(trace[b.name])
            v = v.reshape(*v.shape[:2], *b.shape)
            out[b.name] = np.exp(v) if b.log_transformed else v
        return out

    def nutpie_model(self) -> object:
        """A nutpie compiled model whose log density is :func:`_logp_callback` on these arrays."""
        from nutpie.compile_pymc import CompiledPyMCModel

        names = [b.name for b in self.blocks]
        slices = [slice(b.start, b.stop) for b in self.blocks]
        shapes = [(b.stop - b.start,) for b in self.blocks]
        return CompiledPyMCModel(
            dims={},
            _n_dim=self.n_dim,
            _shapes=dict(zip(names, shapes, strict=True)),
            _coords={},
            compiled_logp_func=_logp_callback,
            compiled_expand_func=_expand_callback,
            initial_point_func=self.initial_point,
            shared_data=dict(self.arrays),  # keeps the arrays behind the header alive
            user_data=self.header,
            n_expanded=self.n_dim,
            shape_info=(names, slices, shapes),
            logp_func=None,
            expand_func=None,
        )


def _prior_row(prior: Prior) -> tuple[int, list[float]]:
    code, names = FAMILY_CODES[prior.family]
    kw = prior.kwargs
    return code, [kw[n] for n in names] + [1.0] * (3 - len(names))


def _central_value(prior: Prior) -> float:
    """A central value of a positive prior (its support point in PyMC)."""
    kw = prior.kwargs
    return {
        "HalfNormal": lambda: kw["sigma"],
        "HalfCauchy": lambda: kw["beta"],
        "Exponential": lambda: 1.0 / kw["lam"],
        "HalfStudentT": lambda: kw["sigma"],
        "Gamma": lambda: kw["alpha"] / kw["beta"],
    }[prior.family]()


def compile_density(
    inputs: ModelInputs, priors: Mapping[str, Prior], structure: Structure
) -> CompiledDensity:
    """Lay out the unconstrained coordinates and pack the model's arrays for the callbacks."""
    k_n = len(inputs.independent)
    c_n = len(inputs.cells)
    p_n = structure.n_contrasts
    g_n = len(structure.groups)
    slots = ["mu", *(f"sigma_{g}" for g in structure.groups), "sigma_cell", "cell_nu"]
    family = np.zeros(g_n + 3, dtype=np.int64)
    params = np.ones((g_n + 3, 3))
    offset = np.full(g_n + 5, -1, dtype=np.int64)
    blocks: list[Block] = []
    log_start: dict[str, float] = {}
    fixed: dict[str, float] = {}
    start = 0
    for i, name in enumerate(slots):
        prior = priors[name]
        family[i], params[i] = _prior_row(prior)
        if prior.family == "Fixed":
            fixed[name] = prior.kwargs["value"]
            continue
        shape: tuple[int, ...] = () if name == "cell_nu" else (k_n,)
        block = Block(name, start, shape, log_transformed=name != "mu")
        if block.log_transformed:
            log_start[name] = math.log(_central_value(prior))
        blocks.append(block)
        offset[i] = start
        start = block.stop
    for i, (name, rows) in enumerate([("z_levels", p_n), ("z_cell", c_n)]):
        offset[g_n + 3 + i] = start
        if rows:
            blocks.append(Block(name, start, (rows, k_n), log_transformed=False))
            start = blocks[-1].stop
    arrays = {  # in the order of the callbacks' header (addresses h[6] to h[15])
        "family": family,
        "params": params,
        "offset": offset,
        "group_of_contrast": np.ascontiguousarray(structure.group_of_contrast, dtype=np.int64),
        "obs_cells": np.ascontiguousarray(inputs.obs_cells, dtype=np.int64),
        "design": np.ascontiguousarray(structure.design, dtype=float),
        "level_weight": np.ascontiguousarray(structure.contrast_weight, dtype=float),
        "cell_weight": np.ascontiguousarray(structure.cell_weight, dtype=float),
        "whiten": np.ascontiguousarray(inputs.whiten, dtype=float),
        "z_obs": np.ascontiguousarray(inputs.z, dtype=float),
    }
    header = np.zeros(_HEADER, dtype=np.int64)
    header[:6] = [start, k_n, c_n, p_n, g_n, len(inputs.obs_cells)]
    header[6:] = [a.ctypes.data for a in arrays.values()]
    return CompiledDensity(
        blocks=blocks, arrays=arrays, header=header, log_start=log_start, fixed=fixed
    )


__all__ = ["CompiledDensity", "FAMILY_CODES", "compile_density", "digamma", "log_density"]
