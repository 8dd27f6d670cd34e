"""From an EffectTable to the arrays the hierarchical model needs: scales, observed blocks, terms.

Everything here is deterministic numpy on the EffectTable, so a saved fit rebuilds the same inputs
from its stored table and options.

Units
-----
Three units per modelled outcome ``k``:

- *original*: the outcome's own unit per assigned unit (dollars, probability, tickets): ``tau``.
- *natural* (what priors and level effects are written in): the effect at a reference cell,
  ``theta_nat[c, k] = tau[c, k] / r[c, k]``. ``r`` is the cell's *pooling scale* relative to the
  experiment's typical cell (dimensionless, about 1 for a typical cell; see below). With
  ``pooling_scale="none"`` (or summary data without unit counts) ``r = 1`` and natural units are
  the original ones.
- *standardised* (what the sampler works in): ``theta_std = theta_nat / unit[k]``, with ``unit[k]``
  the typical size of the effects in natural units. Every prior family is a scale family, so
  priors convert exactly; the standardisation only conditions the numerics.

Pooling scale
-------------
Effects are pooled on the scale ``tau / r``. With ``pooling_scale="unit_sd"``, ``r`` is the
unit-level standard deviation of the outcome in the cell, smoothed over the main effects of every
grouping column of the data (not only the model's factors, so a model pooling over risk band still
knows that Enterprise customers' margins spread ten times wider than SMB's), divided by its
experiment-mix geometric mean. In these units precision is proportional to a cell's size, so
pooling shrinks toward the experiment-mix average rather than toward the low-variance cells
(docs/model.md: the Enterprise pitfall). With ``"control_mean"``, an outcome whose control-arm mean
is positive in every cell uses that mean, smoothed the same way, instead: effects pool as relative
lifts and each cell's lift is priced through its own baseline (seed 000's lift propagation). With
``"auto"`` (default) such an outcome pools as a relative lift only when its effects are closer to
additive in the factors on that scale (:func:`additivity_q`: residual Q per degree of freedom of the
main-effects fit, lower on the control-mean scale), since the level effects are additive on the
pooling scale.

Derived outcomes
----------------
When one outcome is an exact linear combination of others (net margin = gross - contact -
discount - 18 tickets - 35 annoyance), its sampling covariance is singular. Such outcomes are
detected from the null space of the pooled correlation of the estimates, checked against the
estimates themselves, and derived: the model is fitted on the independent outcomes and the
dependent one is their linear combination in every draw (exactly, as in the data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from bayesdecide.data.smoothing import predict_log, smooth_log_on_factors
from bayesdecide.errors import DataValidationError, SpecError
from bayesdecide.model.arms import ARM_UNITS
from bayesdecide.model.terms import Hierarchy, Term, build_hierarchy, factor_labels

POOLING_SCALES = ("auto", "unit_sd", "control_mean", "none")
_NULL_TOL = 1e-9


@dataclass
class ModelInputs:
    """The EffectTable in the units the model works in (module docstring).

    Attributes
    ----------
    hierarchy:
        The terms (:mod:`bayesdecide.model.terms`).
    outcomes, independent, derived:
        All outcomes (table order), the modelled ones, and those derived from them with
        ``derive_weights`` (derived, independent).
    obs_cells:
        Indices of the cells with an effect estimate; ``y`` (obs, K) and ``cov`` (obs, K, K) are
        their estimates and sampling covariance in standardised units, ``mask`` (obs, K) which
        outcomes each observed.
    r:
        (cells, K) pooling scale relative to the typical cell (dimensionless).
    unit:
        (K,) natural units per standardised unit.
    pooling_scale:
        The option the inputs were built with (``"auto"``, ``"unit_sd"``, ``"control_mean"``,
        ``"none"``).
    relative:
        Modelled outcomes pooled as relative lifts (``r`` from the control-arm mean); the others
        pool on the unit sd (or, with ``"none"``, in original units).
    scale_coef:
        The log-linear smoother of the unit sd (for cells of new levels); empty without counts.
    spread_guess:
        Moment estimates of the spreads (natural units), which scale the default priors.
    omitted:
        Grouping columns left out of the factors that explain the effects
        (:func:`omitted_columns`): (column, outcome, F, p).
    omitted_interactions:
        Two-way interactions of the factors, not among the model's terms, that explain the effects
        beyond them (:func:`omitted_interactions`): ((factor, factor), outcome, F, p).
    """

    table: xr.Dataset
    hierarchy: Hierarchy
    outcomes: list[str]
    independent: list[str]
    derived: list[str]
    derive_weights: np.ndarray
    obs_cells: np.ndarray
    y: np.ndarray
    cov: np.ndarray
    mask: np.ndarray
    r: np.ndarray
    unit: np.ndarray
    pooling_scale: str
    relative: list[str]
    scale_coef: dict[str, np.ndarray]
    scale_levels: dict[str, list[str]]
    s_ref: np.ndarray
    ctrl_obs: np.ndarray
    ctrl_center: np.ndarray
    ctrl_scale: np.ndarray
    ctrl_std: np.ndarray
    ctrl_se_std: np.ndarray
    n_units: np.ndarray | None
    spread_guess: dict[str, np.ndarray] = field(default_factory=dict)
    omitted: list[tuple[str, str, float, float]] = field(default_factory=list)
    omitted_interactions: list[tuple[tuple[str, str], str, float, float]] = field(
        default_factory=list
    )

    @property
    def left_out(self) -> list[str]:
        """One line per grouping column left out of the factors (:attr:`omitted`) and per two-way
        interaction of the factors left out of the terms (:attr:`omitted_interactions`) that
        explains the cell effects, with the outcomes, F and p."""
        return [f"column {c!r}: {t}" for c, t in by_finding(self.omitted).items()] + [
            f"interaction {a!r} x {b!r}: {t}"
            for (a, b), t in by_finding(self.omitted_interactions).items()
        ]

    @property
    def cells(self) -> list[str]:
        return list(self.hierarchy.cells)

    @property
    def factors(self) -> list[str]:
        return list(self.hierarchy.factors)

    @property
    def scale(self) -> np.ndarray:
        """(cells, K): original units per standardised unit."""
        return self.r * self.unit[None, :]

    def relative_scale_for(self, levels: Mapping[str, str]) -> np.ndarray:
        """Pooling scale ``r`` (K,) for a (possibly new) combination of group levels: the
        smoother's prediction, with a new level at its factor's average."""
        if not self.scale_coef:
            return np.ones(len(self.independent))
        logs = self.scale_coef["intercept"].copy()
        for group, lv in self.scale_levels.items():
            if levels.get(group) in lv:
                logs = logs + self.scale_coef[group][lv.index(levels[group])]
        return np.exp(logs) / self.s_ref


def _find_derived(
    effect: np.ndarray, cov: np.ndarray, obs: np.ndarray, names: list[str]
) -> tuple[list[int], list[int], np.ndarray]:
    """Detect outcomes that are exact linear combinations of others (singular covariance)."""
    k = len(names)
    full = obs.all(axis=1)
    if k < 2 or full.sum() == 0:
        return list(range(k)), [], np.zeros((0, k))
    pooled = cov[full].sum(axis=0)
    d = np.sqrt(np.clip(np.diag(pooled), 0, None))
    if np.any(d <= 0):
        return list(range(k)), [], np.zeros((0, k))
    corr = pooled / np.outer(d, d)
    independent = list(range(k))
    derived: list[int] = []
    while len(independent) > 1:
        sub = corr[np.ix_(independent, independent)]
        vals, vecs = np.linalg.eigh(sub)
        if vals[0] > _NULL_TOL * vals[-1]:
            break
        v = vecs[:, 0]
        big = np.flatnonzero(np.abs(v) > 0.05 * np.abs(v).max())
        dep = independent[big[0]]  # first outcome (table order) taking part in the identity
        derived.append(dep)
        independent.remove(dep)
    if not derived:
        return independent, [], np.zeros((0, k))
    ii = np.ix_(independent, independent)
    weights = np.linalg.solve(pooled[ii], pooled[np.ix_(independent, derived)]).T  # (D, I)
    # the identity must hold for the estimates too, else it is not an exact identity
    pred = effect[full][:, independent] @ weights.T
    actual = effect[full][:, derived]
    tol = 1e-6 * (np.abs(actual) + np.abs(effect[full][:, independent]) @ np.abs(weights).T + 1e-12)
    if not np.all(np.abs(pred - actual) <= tol + 1e-9 * d[derived]):
        raise DataValidationError(
            f"the sampling covariance of outcomes {[names[j] for j in derived]} is singular but "
            "the estimates do not satisfy the implied linear identity; check effect_cov"
        )
    return independent, derived, weights


def _cell_scale(
    table: xr.Dataset,
    columns: list[int],
    v_diag: np.ndarray,
    obs: np.ndarray,
    control: np.ndarray | None,
) -> tuple[np.ndarray | None, dict[str, np.ndarray], dict[str, list[str]], np.ndarray | None]:
    """Smoothed per-cell scale (cells, K) over every grouping column of the table, its smoother
    coefficients and levels, and the cells' unit counts; (None, {}, {}, None) without counts.
    ``columns`` are the table's outcomes that ``v_diag`` (cells, K) holds.

    The scale is the unit-level sd of the outcome in the cell, or, for an outcome whose
    ``control`` mean (cells, K; None: not used) is positive in every observed cell, that control
    mean (so effects pool as relative lifts; :func:`relative_outcomes` says which)."""
    if "n_control" not in table or "n_treatment" not in table:
        return None, {}, {}, None
    n_c = np.asarray(table["n_control"].values, dtype=float)
    n_units = n_c + np.asarray(table["n_treatment"].values, dtype=float)
    if not np.all(np.isfinite(n_units)):
        return None, {}, {}, None
    # each outcome's treated units: the arm's own in a flattened multi-arm table
    if ARM_UNITS in table:
        n_t = np.asarray(table[ARM_UNITS].values, dtype=float)[:, columns]
    else:
        n_t = np.asarray(table["n_treatment"].values, dtype=float)[:, None]
    groups = [g for g in table.attrs.get("factors", []) if g in table.coords]
    levels: dict[str, list[str]] = {}
    codes: dict[str, np.ndarray] = {}
    for g in groups:
        labels = factor_labels(table, g)
        levels[g] = list(dict.fromkeys(labels))
        codes[g] = np.array([levels[g].index(v) for v in labels], np.int64)
    c, k = v_diag.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.sqrt(v_diag / (1 / n_t + 1 / n_c[:, None]))
    if control is not None:
        raw = np.where(relative_outcomes(control, obs)[None, :], control, raw)
    good = obs & np.isfinite(raw) & (raw > 0)
    s_unit = np.ones((c, k))
    coef: dict[str, np.ndarray] = {"intercept": np.zeros(k)}
    for g in groups:
        coef[g] = np.zeros((len(levels[g]), k))
    for j in range(k):
        g_ok = good[:, j]
        if not g_ok.any():
            continue
        if groups and g_ok.sum() > 1:
            fitted = smooth_log_on_factors(
                np.log(raw[g_ok, j])[:, None],
                n_units[g_ok],
                {g: codes[g][g_ok] for g in groups},
                levels,
            )
            s_unit[:, j] = np.exp(predict_log(fitted, codes)[:, 0])
            coef["intercept"][j] = fitted["intercept"][0]
            for g in groups:
                coef[g][:, j] = fitted[g][:, 0]
        else:
            value = np.average(np.log(raw[g_ok, j]), weights=n_units[g_ok])
            s_unit[:, j] = np.exp(value)
            coef["intercept"][j] = value
    return s_unit, coef, levels, n_units


def relative_outcomes(control: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """(K,) which outcomes can pool as relative lifts: control-arm mean (cells, K) finite and
    positive in every cell with an estimate (``obs``, cells x K)."""
    seen = obs & np.isfinite(control)
    return np.array(
        [seen[:, j].any() and bool(np.all(control[seen[:, j], j] > 0)) for j in range(obs.shape[1])]
    )


def additivity_q(
    effect: np.ndarray, var: np.ndarray, obs: np.ndarray, scale: np.ndarray, hierarchy: Hierarchy
) -> np.ndarray:
    """(K,) residual Q per degree of freedom of the precision-weighted fit of ``effect / scale``
    (cells, K) on the main effects of the hierarchy's factors: how far the effects are from
    additive in the factors on that scale (about 1 when the factors explain every difference
    beyond sampling noise). NaN where fewer cells than parameters were observed."""
    terms = [t for t in hierarchy.level_terms if len(t.members) == 1]
    out = np.full(effect.shape[1], np.nan)
    for j in range(effect.shape[1]):
        m = obs[:, j]
        x = _onehots([t.codes[m] for t in terms], [len(t.levels) for t in terms], int(m.sum()))
        q, df = _wls_q(x, effect[m, j] / scale[m, j], scale[m, j] ** 2 / var[m, j])
        if df > 0:
            out[j] = q / df
    return out


def _onehots(codes: Sequence[np.ndarray], sizes: Sequence[int], n: int) -> np.ndarray:
    """Intercept and one indicator column per level of each coded factor (n, 1 + sum sizes)."""
    cols = [np.ones((n, 1))]
    for c, size in zip(codes, sizes, strict=True):
        onehot = np.zeros((n, size))
        onehot[np.arange(n), c] = 1.0
        cols.append(onehot)
    return np.concatenate(cols, axis=1)


def _spread_guess(
    y: np.ndarray, var: np.ndarray, mask: np.ndarray, hierarchy: Hierarchy, obs_cells: np.ndarray
) -> dict[str, np.ndarray]:
    """Moment estimates (K,) of every spread, in the units of ``y``: per factor, the sd of its
    levels' coefficients in a precision-weighted fit of the estimates on the factors' main effects,
    less their sampling noise; for interactions and cells, the residual spread of that fit by the
    method of moments of meta-regression (DerSimonian-Laird generalised: ``(Q - df) / (tr W -
    tr((X'WX)^-1 X'W^2 X))``, which does not let a few very precise cells hide the spread of the
    others). Zero where the noise explains everything; ``mu``: the root sum of squares of the
    spreads (how far the mean of a population of cells may sit from any one cell). Used only to
    scale the default priors (:func:`bayesdecide.model.priors.default_prior`)."""
    factors = [t for t in hierarchy.level_terms if len(t.members) == 1]
    codes = {t.name: t.codes[obs_cells] for t in factors}
    n, k = y.shape
    sizes = [len(t.levels) for t in factors]
    x = _onehots([codes[t.name] for t in factors], sizes, n)
    starts = 1 + np.cumsum([0, *sizes[:-1]])
    spans = {t.name: (int(s), size) for t, s, size in zip(factors, starts, sizes, strict=True)}
    ridge = np.full(x.shape[1], 1e-6)
    ridge[0] = 0.0
    out = {name: np.zeros(k) for name in hierarchy.prior_names}
    for j in range(k):
        g = mask[:, j]
        if g.sum() < 2:
            continue
        w = 1.0 / var[g, j]
        w = w / w.sum()  # normalised: the moments below are invariant to the weights' scale
        xg = x[g]
        xtwx_inv = np.linalg.pinv(xg.T @ (w[:, None] * xg) + np.diag(ridge))
        coef = xtwx_inv @ (xg.T @ (w * y[g, j]))
        resid = y[g, j] - xg @ coef
        df = g.sum() - np.linalg.matrix_rank(xg)
        q = np.sum(w * resid**2) * np.sum(1.0 / var[g, j])  # Q with the unnormalised weights
        denom = 1.0 - np.trace(xtwx_inv @ (xg.T @ ((w**2)[:, None] * xg)))  # in units of tr W
        between = (q - df) / (denom * np.sum(1.0 / var[g, j])) if df > 0 and denom > 0 else 0.0
        resid_sd = np.sqrt(between) if between > 0 else 0.0
        for t in hierarchy.level_terms:
            if t.name in spans:
                start, size = spans[t.name]
                prec = np.zeros(size)
                np.add.at(prec, codes[t.name][g], 1.0 / var[g, j])
                seen = prec > 0
                noise = np.mean(1.0 / prec[seen])
                b = coef[start : start + size][seen]
                out[f"sigma_{t.name}"][j] = np.sqrt(max(np.var(b) - noise, 0.0))
            else:
                out[f"sigma_{t.name}"][j] = resid_sd
        if "sigma_cell" in out:
            out["sigma_cell"][j] = resid_sd
        out["mu"][j] = np.sqrt(sum(out[n][j] ** 2 for n in out if n != "mu"))
    return out


def by_finding(found: Sequence[tuple[Any, str, float, float]]) -> dict[Any, str]:
    """Findings ``[(what, outcome, F, p)]`` of the left-out checks grouped by what was found:
    ``{what: "outcome (F = ..., p = ...); ..."}``."""
    grouped: dict[Any, list[str]] = {}
    for what, outcome, f_stat, p in found:
        grouped.setdefault(what, []).append(f"{outcome} (F = {f_stat:.1f}, p = {p:.1g})")
    return {what: "; ".join(parts) for what, parts in grouped.items()}


OMITTED_P = 0.001  # p-value below which a grouping column left out of the factors is reported
# pairs of factors with more observed combinations than this are not tested for an interaction
OMITTED_INTERACTION_LEVELS = 200


def _wls_q(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, int]:
    """Weighted residual sum of squares of y on x and its degrees of freedom."""
    sw = np.sqrt(w)
    coef, _, rank, _ = np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)
    return float(np.sum(w * (y - x @ coef) ** 2)), len(y) - int(rank)


def _f_test(base: tuple[float, int], wider: tuple[float, int]) -> tuple[float, float] | None:
    """(F, p) of a wider precision-weighted fit against a base one, each given as its
    :func:`_wls_q` (residual Q, degrees of freedom): F = (drop in Q per added degree of freedom) /
    (residual Q per degree of freedom); None when nothing is added or no degree of freedom is
    left."""
    from scipy import stats

    (q0, df0), (q1, df1) = base, wider
    extra = df0 - df1
    if extra <= 0 or df1 <= 0 or q1 <= 0:
        return None
    f_stat = ((q0 - q1) / extra) / (q1 / df1)
    return float(f_stat), float(stats.f.sf(f_stat, extra, df1))


def omitted_columns(
    table: xr.Dataset,
    hierarchy: Hierarchy,
    y: np.ndarray,
    var: np.ndarray,
    mask: np.ndarray,
    obs_cells: np.ndarray,
    outcomes: Sequence[str],
) -> list[tuple[str, str, float, float]]:
    """Grouping columns of the table that are not factors of the model but explain the cell
    effects: (column, outcome, F, p) for each with p < :data:`OMITTED_P`. The test compares the
    precision-weighted fit of the estimates on the factors' main effects with the same fit plus the
    column's levels, F = (drop in Q per added level) / (residual Q per degree of freedom), so
    heterogeneity the model would put in its cell deviations does not count as evidence. Such a
    column's levels are pooled together by the model (seed 808: Enterprise cells pooled with SMB
    ones when only the risk band is a factor)."""
    columns = [g for g in table.attrs.get("factors", []) if g in table.coords]
    left_out = [g for g in columns if g not in hierarchy.factors]
    if not left_out:
        return []
    candidates = []
    for g in left_out:
        labels = factor_labels(table, g)
        levels = list(dict.fromkeys(labels))
        if len(levels) >= 2:
            codes = np.array([levels.index(v) for v in labels], np.int64)[obs_cells]
            candidates.append((g, codes, len(levels)))
    mains = [t for t in hierarchy.level_terms if len(t.members) == 1]
    return _explaining(mains, candidates, y, var, mask, obs_cells, outcomes, bonferroni=False)


def _explaining(
    base_terms: Sequence[Term],
    candidates: Sequence[tuple[Any, np.ndarray, int]],
    y: np.ndarray,
    var: np.ndarray,
    mask: np.ndarray,
    obs_cells: np.ndarray,
    outcomes: Sequence[str],
    *,
    bonferroni: bool,
) -> list[tuple[Any, str, float, float]]:
    """The F test (:func:`_f_test`) of adding each candidate's levels (``(what, codes per
    observed cell, number of levels)``) to the precision-weighted fit of every outcome with at
    least 3 observed cells on ``base_terms``' levels: ``(what, outcome, F, p)`` for each with p
    below :data:`OMITTED_P` (divided by the number of tests with ``bonferroni``), candidate by
    candidate, outcome by outcome. The base fit is computed once per outcome."""
    testable = [j for j in range(len(outcomes)) if mask[:, j].sum() >= 3]
    threshold = OMITTED_P / max(1, len(candidates) * len(testable)) if bonferroni else OMITTED_P
    found: dict[tuple[int, int], tuple[Any, str, float, float]] = {}
    for j in testable:
        m = mask[:, j]
        n, w = int(m.sum()), 1.0 / var[m, j]
        base = _onehots(
            [t.codes[obs_cells][m] for t in base_terms], [len(t.levels) for t in base_terms], n
        )
        fit0 = _wls_q(base, y[m, j], w)
        for c, (what, codes, n_levels) in enumerate(candidates):
            added = _onehots([codes[m]], [n_levels], n)[:, 1:]
            result = _f_test(fit0, _wls_q(np.concatenate([base, added], axis=1), y[m, j], w))
            if result is not None and result[1] < threshold:
                found[c, j] = (what, outcomes[j], *result)
    return [found[key] for key in sorted(found)]


def omitted_interactions(
    hierarchy: Hierarchy,
    y: np.ndarray,
    var: np.ndarray,
    mask: np.ndarray,
    obs_cells: np.ndarray,
    outcomes: Sequence[str],
    max_levels: int = OMITTED_INTERACTION_LEVELS,
) -> list[tuple[tuple[str, str], str, float, float]]:
    """Two-way interactions of the model's factors, not among its terms, that explain the cell
    effects beyond them: ((factor, factor), outcome, F, p) for each with p below
    :data:`OMITTED_P` divided by the number of pairs and outcomes tested (Bonferroni: a
    hierarchy that leaves nothing out is reported in about 0.1% of fits).

    The test is :func:`omitted_columns`' F test with the model's terms (main effects and the
    interactions it has) as the base and the pair's observed combinations added. Heterogeneity
    that only the cell deviations can describe does not count; a pattern shared by the cells of a
    pair of levels does, and the model would shrink it away: one cell spread pulls those cells
    toward the additive pattern, which biases the levels' effects (multiplicative process, dollar
    effect = lift x own margin: the Self-serve channel +1.7 posterior sd without plan x channel,
    +0.2 with it). Pairs with more than ``max_levels`` observed combinations are not tested (the
    least-squares fits grow with their square)."""
    terms = hierarchy.level_terms
    present = {frozenset(t.members) for t in terms}
    mains = {t.members[0]: t for t in terms if len(t.members) == 1}
    pairs = []
    for i, a in enumerate(hierarchy.factors):
        for b in hierarchy.factors[i + 1 :]:
            if a in mains and b in mains and frozenset((a, b)) not in present:
                combo = mains[a].codes[obs_cells] * len(mains[b].levels) + mains[b].codes[obs_cells]
                _, codes = np.unique(combo, return_inverse=True)
                if 0 < codes.size and codes.max() + 1 <= max_levels:
                    pairs.append(((a, b), codes, int(codes.max()) + 1))
    return _explaining(terms, pairs, y, var, mask, obs_cells, outcomes, bonferroni=True)


def build_inputs(
    table: xr.Dataset,
    *,
    outcomes: Sequence[str] | str | None = None,
    factors: Sequence[str] | None = None,
    interactions: Sequence[Sequence[str]] = (),
    derive: bool = True,
    pooling_scale: str = "auto",
) -> ModelInputs:
    """Validate an EffectTable and compute the model's inputs (module docstring)."""
    for var in ("effect", "effect_cov"):
        if var not in table:
            raise DataValidationError(
                f"EffectTable has no {var!r} variable; build it with bayesdecide.cell_effects "
                "or fit_summary"
            )
    if pooling_scale not in POOLING_SCALES:
        raise SpecError(f"pooling_scale={pooling_scale!r}: use one of {POOLING_SCALES}")
    all_outcomes = [str(o) for o in table["outcome"].values]
    if outcomes is None:
        outcomes = all_outcomes
    else:
        outcomes = [outcomes] if isinstance(outcomes, str) else list(outcomes)
        unknown = [o for o in outcomes if o not in all_outcomes]
        if unknown:
            raise SpecError(f"outcomes {unknown} are not in the EffectTable ({all_outcomes})")
        table = table.sel(outcome=outcomes, outcome_b=outcomes)
    factors = list(table.attrs.get("factors", [])) if factors is None else list(factors)
    hierarchy = build_hierarchy(table, factors, interactions)

    effect = np.asarray(table["effect"].values, dtype=float)
    cov = np.asarray(table["effect_cov"].values, dtype=float)
    c, k = effect.shape
    diag = np.diagonal(cov, axis1=1, axis2=2)
    obs = np.isfinite(effect) & np.isfinite(diag) & (diag > 0)
    if "observed" in table:
        observed = np.asarray(table["observed"].values, dtype=bool)
        obs &= observed if observed.ndim == 2 else observed[:, None]
    if not obs.any():
        raise DataValidationError("the EffectTable has no finite effect estimates to fit")

    if derive:
        ind_idx, der_idx, weights = _find_derived(effect, cov, obs, outcomes)
    else:
        ind_idx, der_idx, weights = list(range(k)), [], np.zeros((0, k))
    ki = len(ind_idx)
    e_i = effect[:, ind_idx]
    v_i = cov[np.ix_(range(c), ind_idx, ind_idx)]
    obs_i = obs[:, ind_idx]
    var_i = np.diagonal(v_i, axis1=1, axis2=2)

    s_unit, scale_coef, scale_levels, n_units = _cell_scale(table, ind_idx, var_i, obs_i, None)
    relative = np.zeros(ki, bool)
    if s_unit is not None and pooling_scale in ("auto", "control_mean") and "control_mean" in table:
        control = np.asarray(table["control_mean"].values, dtype=float)[:, ind_idx]
        relative = relative_outcomes(control, obs_i)
        if relative.any():
            s_ctrl, coef_ctrl, _, _ = _cell_scale(table, ind_idx, var_i, obs_i, control)
            assert s_ctrl is not None
            if pooling_scale == "auto":
                q_sd = additivity_q(e_i, var_i, obs_i, s_unit, hierarchy)
                q_ctrl = additivity_q(e_i, var_i, obs_i, s_ctrl, hierarchy)
                relative &= q_ctrl < q_sd
            s_unit = np.where(relative[None, :], s_ctrl, s_unit)
            for key, value in scale_coef.items():
                scale_coef[key] = np.where(relative, coef_ctrl[key], value)
    if s_unit is None or pooling_scale == "none":
        s_unit, scale_coef, scale_levels = np.ones((c, ki)), {}, {}
        relative = np.zeros(ki, bool)
    weight = n_units if n_units is not None else np.ones(c)
    s_ref = np.exp(np.average(np.log(s_unit), axis=0, weights=weight))
    r = s_unit / s_ref

    # typical effect size in natural units: precision-weighted root mean square of the
    # estimates plus the median sampling variance (so a table of zeros still has a scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        nat = e_i / r
        var_nat = var_i / r**2
    unit = np.ones(ki)
    for j in range(ki):
        g = obs_i[:, j]
        w = 1.0 / var_nat[g, j]
        ms = np.sum(w * nat[g, j] ** 2) / np.sum(w) + np.median(var_nat[g, j])
        unit[j] = np.sqrt(ms) if np.isfinite(ms) and ms > 0 else 1.0

    scale = r * unit[None, :]
    obs_cells = np.flatnonzero(obs_i.any(axis=1))
    mask = obs_i[obs_cells]
    y = np.where(mask, e_i[obs_cells] / scale[obs_cells], 0.0)
    sc = scale[obs_cells]
    v_std = v_i[obs_cells] / (sc[:, :, None] * sc[:, None, :])
    both = mask[:, :, None] & mask[:, None, :]
    v_std = np.where(both, v_std, 0.0)
    for row in range(len(obs_cells)):
        m = mask[row]
        block = v_std[row][np.ix_(m, m)]
        try:
            np.linalg.cholesky(0.5 * (block + block.T))
        except np.linalg.LinAlgError:
            raise DataValidationError(
                f"effect_cov of cell {hierarchy.cells[obs_cells[row]]!r} is not positive "
                f"definite; outcomes {[outcomes[i] for i in ind_idx]}. Drop a redundant outcome "
                "or fix the table"
            ) from None

    # control-arm baselines (standardised per outcome; see bayesdecide.model.baseline)
    ctrl_center = np.zeros(ki)
    ctrl_scale = np.ones(ki)
    ctrl_obs = np.zeros((c, ki), bool)
    ctrl_std = np.zeros((c, ki))
    ctrl_se_std = np.ones((c, ki))
    if "control_mean" in table and "control_se" in table:
        cm = np.asarray(table["control_mean"].values, dtype=float)[:, ind_idx]
        cse = np.asarray(table["control_se"].values, dtype=float)[:, ind_idx]
        ctrl_obs = np.isfinite(cm) & np.isfinite(cse)
        for j in range(ki):
            g = ctrl_obs[:, j]
            if g.sum() == 0:
                continue
            ctrl_center[j] = np.mean(cm[g, j])
            sd = np.std(cm[g, j]) if g.sum() > 1 else 0.0
            ctrl_scale[j] = sd if sd > 0 else max(abs(ctrl_center[j]), scale[:, j].mean())
        ctrl_std = np.where(ctrl_obs, (cm - ctrl_center) / ctrl_scale, 0.0)
        ctrl_se_std = np.where(ctrl_obs, np.maximum(cse / ctrl_scale, 1e-3), 1.0)

    spread_guess = {
        name: guess * unit
        for name, guess in _spread_guess(
            y, np.diagonal(v_std, axis1=1, axis2=2), mask, hierarchy, obs_cells
        ).items()
    }
    omitted = omitted_columns(
        table,
        hierarchy,
        y,
        np.diagonal(v_std, axis1=1, axis2=2),
        mask,
        obs_cells,
        [outcomes[i] for i in ind_idx],
    )
    interactions_left_out = omitted_interactions(
        hierarchy,
        y,
        np.diagonal(v_std, axis1=1, axis2=2),
        mask,
        obs_cells,
        [outcomes[i] for i in ind_idx],
    )
    return ModelInputs(
        spread_guess=spread_guess,
        omitted=omitted,
        omitted_interactions=interactions_left_out,
        table=table,
        hierarchy=hierarchy,
        outcomes=list(outcomes),
        independent=[outcomes[i] for i in ind_idx],
        derived=[outcomes[i] for i in der_idx],
        derive_weights=weights,
        obs_cells=obs_cells,
        y=np.ascontiguousarray(y),
        cov=np.ascontiguousarray(v_std),
        mask=np.ascontiguousarray(mask),
        r=r,
        unit=unit,
        pooling_scale=pooling_scale,
        relative=[outcomes[i] for i, rel in zip(ind_idx, relative, strict=True) if rel],
        scale_coef=scale_coef,
        scale_levels=scale_levels,
        s_ref=s_ref,
        ctrl_obs=ctrl_obs,
        ctrl_center=ctrl_center,
        ctrl_scale=ctrl_scale,
        ctrl_std=ctrl_std,
        ctrl_se_std=ctrl_se_std,
        n_units=n_units,
    )


def assembly_matrix(inputs: ModelInputs) -> np.ndarray:
    """(K_ind, K) matrix taking modelled outcomes to all outcomes (derived ones combined)."""
    m = np.zeros((len(inputs.independent), len(inputs.outcomes)))
    for j, o in enumerate(inputs.outcomes):
        if o in inputs.independent:
            m[inputs.independent.index(o), j] = 1.0
        else:
            m[:, j] = inputs.derive_weights[inputs.derived.index(o)]
    return m


def assemble_outcomes(ind: np.ndarray, inputs: ModelInputs) -> np.ndarray:
    """Put modelled-outcome values (..., K_ind) and their derived combinations in table order."""
    if not inputs.derived:
        return ind
    # einsum, not ``@``: with K_ind a handful, NumPy's matmul of a (chain, draw, cell, K_ind)
    # stack runs 4-5x slower (3.3 s against 0.7 s at 4,320 cells x 4,000 draws)
    return np.einsum("...k,kj->...j", ind, assembly_matrix(inputs))


__all__ = [
    "POOLING_SCALES",
    "ModelInputs",
    "assemble_outcomes",
    "assembly_matrix",
    "additivity_q",
    "build_inputs",
    "relative_outcomes",
]
