"""The marginal engine: the hierarchy's arrays for :mod:`bayesdecide.model.marginal`, its log
density for a sampler, and exact draws of every effect given the sampled spreads.

:class:`MarginalModel` lays the terms of :mod:`bayesdecide.model.terms` out for the kernels: the
term with the most levels is the *sparse* term (eliminated level by level), the others form the
dense rest. NUTS samples only the log spreads; :meth:`MarginalModel.effect_draws` then draws the
level effects and cell effects from their conditional Gaussian, with random numbers keyed by
(seed, chain, draw) so that the same spreads and seed give bit-identical effects on every run and
after :meth:`~bayesdecide.model.fitting.Fit.load`.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from bayesdecide.model.inputs import ModelInputs
from bayesdecide.model.marginal import draw_effects, log_density
from bayesdecide.model.priors import KernelPriors, Prior, kernel_priors

_EFFECT_STREAM = 0xE77EC7  # keys the random numbers of the conditional effect draws


def _choose_sparse(n_levels: np.ndarray, k: int) -> int:
    """The term to eliminate level by level: the one that leaves the cheapest dense rest
    (cost ~ L_s K Qr^2 + Qr^3 / 3 with Qr = K x the levels of all other terms)."""
    total = int(n_levels.sum())
    best, best_cost = 0, np.inf
    for t, lt in enumerate(n_levels):
        qr = (total - int(lt)) * k
        cost = int(lt) * k * qr**2 + qr**3 / 3.0
        if cost < best_cost:
            best, best_cost = t, cost
    return best


@dataclass
class MarginalModel:
    """The marginal posterior of the log spreads and the conditional draws of the effects."""

    inputs: ModelInputs
    priors: dict[str, list[Prior]]
    kp: KernelPriors = field(init=False)
    sparse: int = field(init=False)
    n_levels: np.ndarray = field(init=False)
    rest_terms: list[int] = field(init=False)
    blk_term: np.ndarray = field(init=False)
    sp_code: np.ndarray = field(init=False)
    rest_blk: np.ndarray = field(init=False)
    obs_row: np.ndarray = field(init=False)
    y: np.ndarray = field(init=False)
    vinv: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        inp = self.inputs
        h = inp.hierarchy
        k = len(inp.independent)
        self.kp = kernel_priors(h, inp.independent, inp.unit, self.priors)
        self.n_levels = np.array([len(t.levels) for t in h.terms], np.int64)
        self._set_sparse(_choose_sparse(self.n_levels, k))
        self.obs_row = np.full(len(h.cells), -1, np.int64)
        self.obs_row[inp.obs_cells] = np.arange(len(inp.obs_cells))
        self.y = np.ascontiguousarray(np.where(inp.mask, inp.y - self.kp.mu_shift, 0.0))
        vinv = np.zeros_like(inp.cov)
        for row, m in enumerate(inp.mask):
            vinv[row][np.ix_(m, m)] = np.linalg.inv(inp.cov[row][np.ix_(m, m)])
        self.vinv = vinv
        self._mask = np.ascontiguousarray(inp.mask.astype(np.uint8))
        self._obs_cells = np.ascontiguousarray(inp.obs_cells.astype(np.int64))

    def _set_sparse(self, sparse: int) -> None:
        """Lay the terms out with term ``sparse`` eliminated first (any choice gives the same
        density; :func:`_choose_sparse` picks the cheapest)."""
        h = self.inputs.hierarchy
        self.sparse = sparse
        self.rest_terms = [t for t in range(len(h.terms)) if t != sparse]
        offsets, start = {}, 0
        for t in self.rest_terms:
            offsets[t] = start
            start += int(self.n_levels[t])
        codes = h.codes
        self.blk_term = np.array(
            [t for t in self.rest_terms for _ in range(int(self.n_levels[t]))], np.int64
        )
        self.sp_code = np.ascontiguousarray(codes[:, sparse])
        self.rest_blk = np.ascontiguousarray(
            np.stack([offsets[t] + codes[:, t] for t in self.rest_terms], axis=1)
            if self.rest_terms
            else np.zeros((len(h.cells), 0), np.int64)
        ).astype(np.int64)

    # ------------------------------------------------------------------ density
    @property
    def n_free(self) -> int:
        """Number of sampled parameters (log spreads)."""
        return self.kp.n_free

    @property
    def param_names(self) -> list[str]:
        return self.kp.names

    def logp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior density of the log spreads ``x`` and its gradient (both exact)."""
        kp = self.kp
        return log_density(
            np.ascontiguousarray(x, dtype=float),
            self.sp_code[self._obs_cells],
            self.rest_blk[self._obs_cells],
            self.blk_term,
            self.n_levels,
            self.sparse,
            self.y,
            self.inputs.cov,
            self._mask,
            kp.pidx,
            kp.fixed_var,
            kp.pidx_cell,
            kp.fixed_var_cell,
            kp.fam,
            kp.pa,
            kp.pb,
        )

    def initial_point(self, seed: int) -> np.ndarray:
        """A start for a chain: each log spread at its prior median, jittered by U(-1, 1)."""
        rng = np.random.default_rng([seed, 0x1417])
        centre = np.log(np.array([_median(self, p) for p in range(self.n_free)]))
        return centre + rng.uniform(-1.0, 1.0, self.n_free)

    # ------------------------------------------------------------------ effects
    @property
    def n_random(self) -> int:
        """Standard normal numbers one draw of the effects uses."""
        k = len(self.inputs.independent)
        return int(self.n_levels.sum()) * k + len(self.inputs.cells) * k

    def effect_draws(self, x: np.ndarray, seed: int, threads: int = 1) -> dict[str, np.ndarray]:
        """Exact conditional draws given the log spreads ``x`` (chain, draw, P).

        Returns standardised ``theta`` (chain, draw, cell, K), the level effects ``u_<term>``
        (chain, draw, level, K) of every term and ``loglik`` (chain, draw, observed cell). The
        random numbers of draw ``(c, d)`` come from ``default_rng([seed, stream, c, d])``.
        """
        n_chain, n_draw, _ = x.shape
        h = self.inputs.hierarchy
        k = len(self.inputs.independent)
        theta = np.empty((n_chain, n_draw, len(h.cells), k))
        u1 = np.empty((n_chain, n_draw, int(self.n_levels[self.sparse]), k))
        ur = np.empty((n_chain, n_draw, len(self.blk_term), k))
        loglik = np.empty((n_chain, n_draw, len(self.inputs.obs_cells)))
        kp = self.kp

        def run(chain: int, start: int, stop: int) -> None:
            z = np.stack(
                [
                    np.random.default_rng([seed, _EFFECT_STREAM, chain, d]).standard_normal(
                        self.n_random
                    )
                    for d in range(start, stop)
                ]
            )
            out = draw_effects(
                np.ascontiguousarray(x[chain, start:stop]),
                z,
                self.sp_code,
                self.rest_blk,
                self.obs_row,
                self._obs_cells,
                self.blk_term,
                self.n_levels,
                self.sparse,
                self.y,
                self.inputs.cov,
                self.vinv,
                self._mask,
                kp.pidx,
                kp.fixed_var,
                kp.pidx_cell,
                kp.fixed_var_cell,
            )
            theta[chain, start:stop] = out[0]
            u1[chain, start:stop] = out[1]
            ur[chain, start:stop] = out[2]
            loglik[chain, start:stop] = out[3]

        chunk = max(1, min(n_draw, 250))
        jobs = [
            (c, s, min(s + chunk, n_draw)) for c in range(n_chain) for s in range(0, n_draw, chunk)
        ]
        if threads <= 1:
            for job in jobs:
                run(*job)
        else:
            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda job: run(*job), jobs))

        # mu's prior mean was taken out of the data: put it back on the intercept
        theta += self.kp.mu_shift
        levels: dict[str, np.ndarray] = {}
        start = 0
        for t in self.rest_terms:
            n = int(self.n_levels[t])
            levels[h.terms[t].name] = ur[:, :, start : start + n]
            start += n
        levels[h.terms[self.sparse].name] = u1
        levels[h.terms[0].name] = levels[h.terms[0].name] + self.kp.mu_shift
        ordered = {t.name: levels[t.name] for t in h.terms}
        return {"theta": theta, "loglik": loglik, **{f"u_{n}": v for n, v in ordered.items()}}


def _median(model: MarginalModel, p: int) -> float:
    """Prior median of free parameter ``p`` in standardised units."""
    name = model.kp.names[p]
    group, _, outcome = name.partition("[")
    outcome = outcome.rstrip("]")
    j = model.inputs.independent.index(outcome)
    return model.priors[group][j].median() / float(model.inputs.unit[j])


def spread_draws(model: MarginalModel, x: np.ndarray) -> dict[str, np.ndarray]:
    """Spread draws (chain, draw, K) in natural units per prior name (``Fixed`` ones broadcast)."""
    kp = model.kp
    unit = model.inputs.unit
    shape = (*x.shape[:2], len(unit))
    out: dict[str, np.ndarray] = {}
    h = model.inputs.hierarchy
    for t, term in enumerate(h.terms):
        if term.is_intercept:
            continue
        values = np.empty(shape)
        for j in range(len(unit)):
            p = kp.pidx[t, j]
            std = np.exp(x[..., p]) if p >= 0 else np.full(shape[:2], np.sqrt(kp.fixed_var[t, j]))
            values[..., j] = std * unit[j]
        out[term.prior_name] = values
    if h.cell_deviation:
        values = np.empty(shape)
        for j in range(len(unit)):
            p = kp.pidx_cell[j]
            std = np.exp(x[..., p]) if p >= 0 else np.full(shape[:2], np.sqrt(kp.fixed_var_cell[j]))
            values[..., j] = std * unit[j]
        out["sigma_cell"] = values
    return out


def free_parameters(names: list[str]) -> Mapping[str, list[int]]:
    """Prior name -> indices of its free parameters."""
    out: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        out.setdefault(n.partition("[")[0], []).append(i)
    return out


__all__ = ["MarginalModel", "free_parameters", "spread_draws"]
