"""The marginal engine: the hierarchy's arrays for :mod:`bayesdecide.model.marginal`, its log
density for a sampler, and exact draws of every effect given the sampled spreads.

:class:`MarginalModel` lays the terms of :mod:`bayesdecide.model.terms` out for the kernels: the
term with the most levels is the *sparse* term (eliminated level by level), the others form the
dense rest. NUTS samples only the spreads (:meth:`MarginalModel.sampler_logp`: log spreads, the
spreads the data may not tell from zero signed); :meth:`MarginalModel.effect_draws` then draws the
level effects and cell effects from their conditional Gaussian, with random numbers keyed by
(seed, chain, draw) so that the same spreads and seed give bit-identical effects on every run and
after :meth:`~bayesdecide.model.fitting.Fit.load`.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayesdecide.model.arms import expand_priors
from bayesdecide.model.inputs import ModelInputs
from bayesdecide.model.linalg import one_blas_thread
from bayesdecide.model.marginal import draw_effects, log_density, signed_log_density
from bayesdecide.model.priors import (
    HALF_CAUCHY,
    HALF_NORMAL,
    HALF_STUDENT_T,
    KernelPriors,
    Prior,
    kernel_priors,
    resolve_priors,
)

# prior families of a spread whose mirror image onto the whole line is smooth at zero (the
# densities of Normal, Cauchy and Student-t): such a spread may be sampled signed
_MIRRORED = (HALF_NORMAL, HALF_CAUCHY, HALF_STUDENT_T)

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


def _block_offsets(n_levels: np.ndarray, sparse: int) -> np.ndarray:
    """First block of every term: the sparse term's levels first, then the others in order."""
    offset = np.zeros(len(n_levels), np.int64)
    start = int(n_levels[sparse])
    for t in range(len(n_levels)):
        if t != sparse:
            offset[t] = start
            start += int(n_levels[t])
    return offset


def layout_arrays(codes: np.ndarray, n_levels: np.ndarray, sparse: int) -> tuple:
    """The layout tuple the kernels of :mod:`bayesdecide.model.marginal` read, for the observed
    cells' level ``codes`` (cells, T) with term ``sparse`` eliminated first.

    Every level of every term is a *block* (K coordinates): the sparse term's levels first, then
    the other terms' in order. Each distinct pair of blocks that share a cell is one entry of the
    *store* of ``A = X' W X``: kind 0 (a sparse level's own block), 1 (sparse level a with rest
    block b) or 2 (rest blocks a <= b). Term pairs (t <= u) that involve the sparse term are kept
    per cell (``cell_pair_idx``); the others depend only on the cell's combination of the other
    terms' levels (``combo``, ``combo_pair_idx``). Coefficients are 1 for t == u and 2 otherwise.

    Returns ``(cell_pair_idx, cell_pair_coef, combo, combo_pair_idx, combo_pair_coef, term_blk,
    store_kind, store_a, store_b, blk_term, n_levels, n_sparse)``.
    """
    n_terms = len(n_levels)
    offset = _block_offsets(n_levels, sparse)
    n_sparse = int(n_levels[sparse])
    n_blocks = int(n_levels.sum())
    order = [sparse] + [t for t in range(n_terms) if t != sparse]
    blk_term = np.concatenate([np.full(int(n_levels[t]), t, np.int64) for t in order])
    term_blk = np.ascontiguousarray(codes + offset[None, :]).astype(np.int64)
    pairs = [(t, u) for t in range(n_terms) for u in range(t, n_terms)]
    cell_pairs = [pq for pq in pairs if sparse in pq]
    rest_pairs = [pq for pq in pairs if sparse not in pq]
    rest_terms = [t for t in range(n_terms) if t != sparse]
    combos, combo = np.unique(term_blk[:, rest_terms], axis=0, return_inverse=True)
    combo_blk = np.zeros((len(combos), n_terms), np.int64)
    combo_blk[:, rest_terms] = combos

    def keys(blk: np.ndarray, which: list[tuple[int, int]]) -> np.ndarray:
        if not which:
            return np.zeros((len(blk), 0), np.int64)
        idx = np.array(which, np.int64)
        g1, g2 = blk[:, idx[:, 0]], blk[:, idx[:, 1]]
        return np.minimum(g1, g2) * n_blocks + np.maximum(g1, g2)

    cell_keys, combo_keys = keys(term_blk, cell_pairs), keys(combo_blk, rest_pairs)
    store, inverse = np.unique(
        np.concatenate([cell_keys.ravel(), combo_keys.ravel()]), return_inverse=True
    )
    cell_pair_idx = inverse[: cell_keys.size].reshape(cell_keys.shape)
    combo_pair_idx = inverse[cell_keys.size :].reshape(combo_keys.shape)
    a, b = store // n_blocks, store % n_blocks
    kind = np.where(b < n_sparse, 0, np.where(a < n_sparse, 1, 2)).astype(np.int64)

    def coef(which: list[tuple[int, int]]) -> np.ndarray:
        return np.array([1.0 if t == u else 2.0 for t, u in which], float)

    return (
        np.ascontiguousarray(cell_pair_idx, np.int64),
        coef(cell_pairs),
        np.ascontiguousarray(np.ravel(combo), np.int64),
        np.ascontiguousarray(combo_pair_idx, np.int64),
        coef(rest_pairs),
        term_blk,
        kind,
        np.where(kind == 2, a - n_sparse, a).astype(np.int64),
        np.where(kind == 0, b, b - n_sparse).astype(np.int64),
        blk_term,
        np.asarray(n_levels, np.int64),
        np.int64(n_sparse),
    )


@dataclass
class MarginalModel:
    """The marginal posterior of the log spreads and the conditional draws of the effects."""

    inputs: ModelInputs
    priors: dict[str, list[Prior]]
    kp: KernelPriors = field(init=False)
    sparse: int = field(init=False)
    n_levels: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        inp = self.inputs
        h = inp.hierarchy
        k = len(inp.independent)
        self.kp = kernel_priors(h, inp.independent, inp.unit, self.priors)
        self.n_levels = np.array([len(t.levels) for t in h.terms], np.int64)
        self.obs_row = np.full(len(h.cells), -1, np.int64)
        self.obs_row[inp.obs_cells] = np.arange(len(inp.obs_cells))
        tri = [(i, j) for i in range(k) for j in range(i + 1)]  # packed lower triangle, by rows
        self._y = np.ascontiguousarray(np.where(inp.mask, inp.y - self.kp.mu_shift, 0.0).T)
        self._v = np.ascontiguousarray(np.stack([inp.cov[:, i, j] for i, j in tri]))
        self._mask = np.ascontiguousarray(inp.mask.T.astype(float))
        vinv = np.zeros_like(inp.cov)
        for row, m in enumerate(inp.mask):
            vinv[row][np.ix_(m, m)] = np.linalg.inv(inp.cov[row][np.ix_(m, m)])
        self._vinv = vinv
        self._set_sparse(_choose_sparse(self.n_levels, k))
        self._signed = self._signed_coordinates()

    @classmethod
    def build(
        cls, inputs: ModelInputs, priors: Mapping[str, Any] | None = None, prior_scale: str = "data"
    ) -> MarginalModel:
        """The model of ``inputs`` with the user's ``priors`` (natural units; per outcome, or per
        ``"<arm>:<outcome>"`` pair of a multi-arm table) and, with ``prior_scale="data"``, the
        data-scaled defaults (:func:`bayesdecide.model.priors.default_prior`) for the rest."""
        resolved = resolve_priors(
            inputs.hierarchy,
            inputs.independent,
            inputs.unit,
            expand_priors(priors, inputs.table.attrs.get("arms")),
            prior_scale,
            all_outcomes=inputs.outcomes,
            guess=inputs.spread_guess,
        )
        return cls(inputs, resolved)

    def _set_sparse(self, sparse: int) -> None:
        """Lay the blocks out with term ``sparse`` eliminated first (any choice gives the same
        density; :func:`_choose_sparse` picks the cheapest)."""
        self.sparse = sparse
        codes = self.inputs.hierarchy.codes
        self._layout = layout_arrays(codes[self.inputs.obs_cells], self.n_levels, sparse)
        self._term_blk_all = np.ascontiguousarray(
            codes + _block_offsets(self.n_levels, sparse)[None, :]
        ).astype(np.int64)
        # position in x of every level block's log scale-mixture weight (-1: mu, normal levels);
        # the weights are ordered by term and level (param_names), the blocks by elimination
        blk_w = np.full(int(self.n_levels.sum()), -1, np.int64)
        offsets = _block_offsets(self.n_levels, sparse)
        for t, positions in self.level_weight_positions().items():
            blk_w[offsets[t] : offsets[t] + len(positions)] = positions
        self._blk_w = blk_w
        # position in x of every observed cell's log scale-mixture weight (-1: normal cells)
        n_obs = len(self.inputs.obs_cells)
        self._cell_w = (
            np.arange(self.n_spreads, self.n_spreads + n_obs, dtype=np.int64)
            if self.kp.nu > 0
            else np.full(n_obs, -1, np.int64)
        )
        self._args = self._density_args()  # bound once: the sampler calls the density per step

    # ------------------------------------------------------------------ density
    @property
    def n_spreads(self) -> int:
        """Number of sampled spreads (their logs come first in the sampler's coordinates)."""
        return self.kp.n_free

    @property
    def fixed_terms(self) -> list[int]:
        """Indices of the level terms whose spread is fixed for every outcome (not sampled: by
        default the factors with fewer than five levels, which are not pooled)."""
        terms = self.inputs.hierarchy.terms
        return [
            t
            for t, term in enumerate(terms)
            if not term.is_intercept and np.all(self.kp.pidx[t] < 0)
        ]

    @property
    def _level_w0(self) -> int:
        """Position in ``x`` of the first level weight (after the cells' weights)."""
        return self.n_spreads + (len(self.inputs.obs_cells) if self.kp.nu > 0 else 0)

    def level_weight_positions(self) -> dict[int, np.ndarray]:
        """Term index -> positions in ``x`` of its levels' log scale-mixture weights (Student-t
        level effects; empty for normal ones), term by term after the cells' weights."""
        if not self.kp.level_nu > 0:
            return {}
        out, first = {}, self._level_w0
        for t, term in enumerate(self.inputs.hierarchy.terms):
            if not term.is_intercept:
                out[t] = np.arange(first, first + len(term.levels), dtype=np.int64)
                first += len(term.levels)
        return out

    @property
    def n_level_weights(self) -> int:
        """Number of level scale-mixture weights sampled (Student-t level effects)."""
        return sum(len(p) for p in self.level_weight_positions().values())

    @property
    def n_free(self) -> int:
        """Number of sampled coordinates: log spreads, then (Student-t cell deviations) each
        observed cell's log scale-mixture weight, then (Student-t level effects) each level's,
        term by term."""
        return self._level_w0 + self.n_level_weights

    @property
    def param_names(self) -> list[str]:
        names = list(self.kp.names)
        if self.kp.nu > 0:
            names += [f"cell_scale[{self.inputs.cells[c]}]" for c in self.inputs.obs_cells]
        if self.kp.level_nu > 0:
            names += [
                level_scale_name(term.name, level)
                for term in self.inputs.hierarchy.level_terms
                for level in term.levels
            ]
        return names

    def logp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior density of the log spreads ``x`` and its gradient (both exact)."""
        return log_density(np.ascontiguousarray(x, dtype=float), *self._args)

    @property
    def signed(self) -> np.ndarray:
        """Which of the sampler's coordinates are signed spreads (bool, ``n_free``): every cell
        spread, and every level spread whose moment estimate (``inputs.spread_guess``) is zero,
        whose prior is HalfNormal, HalfCauchy or HalfStudentT. The sampler moves ``z`` with
        ``|z|`` the spread (:func:`~bayesdecide.model.marginal.signed_log_density`); every other
        coordinate is a log spread or log weight, as in :meth:`logp`. The choice changes how
        NUTS moves, not the posterior.

        Why: where the data show no variation (the markets process has no cell deviations; the
        eight schools' estimates vary no more than their standard errors) a spread's posterior
        reaches zero, and its log has an exponential tail towards minus infinity that NUTS
        explores slowly (540 cells, fit seeds 1-3: tail ESS 60, 439, 499 at 11.8 leapfrog steps
        per draw; cell spreads signed: 703, 1,061, 1,176 at 7.5). A spread the data place away
        from zero stays a log: signed it has two modes, and a chain that crosses between them in
        warm-up adapts to their distance (the retention fit with every spread signed: 11-13
        steps per draw instead of 7). docs/model.md, "Sampling", has the measurements."""
        return self._signed.copy()

    def _signed_coordinates(self) -> np.ndarray:
        out = np.zeros(self.n_free, bool)
        for p in range(self.n_spreads):
            if self.kp.fam[p] in _MIRRORED:
                group, j = _prior_of(self, p)
                guess = self.inputs.spread_guess.get(group)
                out[p] = group == "sigma_cell" or (guess is not None and guess[j] == 0.0)
        return out

    def sampler_logp(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior density of the sampler's coordinates ``z`` (:attr:`signed`) and its
        gradient (both exact)."""
        return signed_log_density(np.ascontiguousarray(z, dtype=float), self._signed, *self._args)

    def log_spreads(self, z: np.ndarray) -> np.ndarray:
        """The sampler's coordinates ``z`` (..., ``n_free``) as log spreads and log weights."""
        x = np.array(z, dtype=float)
        x[..., self._signed] = np.log(np.abs(x[..., self._signed]))
        return x

    def _density_args(self) -> tuple:
        kp = self.kp
        return (
            self._layout,
            self._y,
            self._v,
            self._mask,
            kp.pidx,
            kp.fixed_var,
            kp.pidx_cell,
            kp.fixed_var_cell,
            kp.fam,
            kp.pa,
            kp.pb,
            kp.nu,
            self._cell_w,
            kp.level_nu,
            self._blk_w,
        )

    def initial_point(self, seed: int) -> np.ndarray:
        """A start for a chain in the sampler's coordinates: each log spread at its prior median,
        jittered by U(-1, 1) (a signed spread: the exponential of that, positive)."""
        rng = np.random.default_rng([seed, 0x1417])
        centre = np.log(np.array([_median(self, p) for p in range(self.n_spreads)]))
        centre = np.concatenate([centre, np.zeros(self.n_free - self.n_spreads)])
        start = centre + rng.uniform(-1.0, 1.0, self.n_free)
        start[self._signed] = np.exp(start[self._signed])
        return start

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
        blk_term = self._layout[9]
        u = np.empty((n_chain, n_draw, len(blk_term), k))
        loglik = np.empty((n_chain, n_draw, len(self.inputs.obs_cells)))
        kp = self.kp

        n_cells = len(h.cells)
        nu = self.kp.nu
        has_blk = self._blk_w >= 0

        def run(chain: int, start: int, stop: int) -> None:
            z = np.empty((stop - start, self.n_random))
            lam = np.ones((stop - start, n_cells))
            blk_lam = np.ones((stop - start, len(self._blk_w)))
            for i, d in enumerate(range(start, stop)):
                rng = np.random.default_rng([seed, _EFFECT_STREAM, chain, d])
                z[i] = rng.standard_normal(self.n_random)
                if nu > 0:  # Student-t deviations: weights of cells without data from the prior
                    lam[i] = mixture_weights(rng, nu, (n_cells,))
            if nu > 0:
                lam[:, self.inputs.obs_cells] = np.exp(x[chain, start:stop][:, self._cell_w])
            if has_blk.any():
                blk_lam[:, has_blk] = np.exp(x[chain, start:stop][:, self._blk_w[has_blk]])
            out = draw_effects(
                np.ascontiguousarray(x[chain, start:stop]),
                lam,
                blk_lam,
                z,
                self._term_blk_all,
                self.obs_row,
                self._layout,
                self._y,
                self._v,
                self._vinv,
                self._mask,
                kp.pidx,
                kp.fixed_var,
                kp.pidx_cell,
                kp.fixed_var_cell,
            )
            theta[chain, start:stop] = out[0]
            u[chain, start:stop] = out[1]
            loglik[chain, start:stop] = out[2]

        chunk = max(1, min(n_draw, 250))
        jobs = [
            (c, s, min(s + chunk, n_draw)) for c in range(n_chain) for s in range(0, n_draw, chunk)
        ]
        with one_blas_thread():
            if threads <= 1:
                for job in jobs:
                    run(*job)
            else:
                with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                    list(pool.map(lambda job: run(*job), jobs))

        # mu's prior mean was taken out of the data: put it back
        theta += self.kp.mu_shift
        out: dict[str, np.ndarray] = {"theta": theta, "loglik": loglik}
        if nu > 0:
            out["cell_scale"] = np.exp(x[..., self._cell_w])
        for t, positions in self.level_weight_positions().items():
            out[f"level_scale_{h.terms[t].name}"] = np.exp(x[..., positions])
        for t, term in enumerate(h.terms):
            first = int(np.flatnonzero(blk_term == t)[0])
            levels = u[:, :, first : first + int(self.n_levels[t])]
            out[f"u_{term.name}"] = levels + self.kp.mu_shift if term.is_intercept else levels
        return out


def mixture_weights(rng: np.random.Generator, nu: float, shape: tuple[int, ...]) -> np.ndarray:
    """Draws of the scale-mixture weights ``InvGamma(nu / 2, nu / 2)`` that make normal effects
    Student-t with ``nu`` degrees of freedom; all 1 when ``nu`` is 0 (normal effects)."""
    if not nu > 0:
        return np.ones(shape)
    return 1.0 / rng.gamma(0.5 * nu, 2.0 / nu, shape)


def level_scale_name(term: str, level: str) -> str:
    """Name of a level's scale-mixture weight: ``"level_scale[region: Metro]"``."""
    return f"level_scale[{term}: {level}]"


def _prior_of(model: MarginalModel, p: int) -> tuple[str, int]:  # p < n_spreads
    """Prior name and modelled-outcome index of free parameter ``p`` (``"sigma_region[renewed]"``
    -> ``("sigma_region", index of renewed)``)."""
    group, _, outcome = model.kp.names[p].partition("[")
    return group, model.inputs.independent.index(outcome.rstrip("]"))


def _median(model: MarginalModel, p: int) -> float:  # p < n_spreads
    """Prior median of free parameter ``p`` in standardised units."""
    group, j = _prior_of(model, p)
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


__all__ = [
    "MarginalModel",
    "free_parameters",
    "level_scale_name",
    "mixture_weights",
    "spread_draws",
]
