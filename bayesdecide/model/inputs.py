"""From an EffectTable to the arrays the hierarchical model needs (scales, whitening, codes).

Everything here is deterministic numpy on the EffectTable, so a saved fit rebuilds the same inputs
from its stored table and options.

Scales
------
The model works in *standardised* units, one pair of scales per cell and outcome::

    tau[c, k] = scale[c, k] * theta[c, k],   scale[c, k] = s[c, k] * S[k]

- ``s[c, k]`` is the unit-level standard deviation of outcome ``k`` within cell ``c``
  (``sqrt(effect_var / (1/n_t + 1/n_c))``), smoothed by a weighted least-squares fit of its log on
  the factor main effects (so a 9-customer cell borrows its scale from its segment and risk band).
  In these units every cell's sampling error is about ``2/sqrt(n)``: precision is proportional to
  the cell's size, so pooling shrinks toward the *experiment-mix* average, not toward the
  low-variance cells (see docs/model.md: this is what keeps the high-margin Enterprise cells from
  being shrunk onto the SMB cells). Without unit counts (summary-level input) ``s = 1``.
- ``S[k]`` is the typical size of the effects in those units: the root of the precision-weighted
  mean square of the standardised estimates plus the median sampling variance. One set of priors
  then fits every outcome.

Derived outcomes
----------------
When one outcome is an exact linear combination of others (net margin = gross - contact -
discount - 18 tickets - 35 annoyance), its sampling covariance is singular. Such outcomes are
detected from the null space of the pooled correlation of the estimates, checked against the
estimates themselves, and *derived*: the model is fitted on the independent outcomes and the
dependent one is their linear combination in every draw (exactly, as in the data).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from bayesdecide.data.smoothing import predict_log, smooth_log_on_factors
from bayesdecide.errors import DataValidationError, SpecError

_MISSING_VAR = 1e8  # variance (standardised units) standing in for a missing estimate
_NULL_TOL = 1e-9


def interaction_name(members: tuple[str, ...]) -> str:
    return "_x_".join(members)


@dataclass
class ModelInputs:
    """Numeric inputs of :class:`~bayesdecide.model.hierarchical.HierarchicalEffects`."""

    table: xr.Dataset
    outcomes: list[str]
    factors: list[str]
    interactions: list[tuple[str, ...]]
    cells: list[str]
    levels: dict[str, list[str]]  # factor or interaction name -> level labels
    codes: dict[str, np.ndarray]  # factor or interaction name -> (C,) level index
    independent: list[str]
    derived: list[str]
    derive_weights: np.ndarray  # (len(derived), len(independent))
    s_unit: np.ndarray  # (C, K_ind) smoothed unit sd (1 without counts)
    s_coef: dict[str, np.ndarray] = field(default_factory=dict)  # log-scale smoothing fit
    outcome_scale: np.ndarray = field(default_factory=lambda: np.ones(0))  # (K_ind,)
    obs_cells: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    whiten: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))  # (C_obs, K, K)
    z: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (C_obs, K_ind)
    ctrl_obs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    ctrl_center: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ctrl_scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    ctrl_std: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    ctrl_se_std: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    n_units: np.ndarray | None = None  # (C,)
    # group/"cell" -> (L, K_ind) centring weights in [0, 1] (1 centred, 0 non-centred)
    centred: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        """Factor and interaction names (in model order)."""
        return [*self.factors, *(interaction_name(m) for m in self.interactions)]

    @property
    def scale(self) -> np.ndarray:
        """(C, K_ind): original units per standardised unit."""
        return self.s_unit * self.outcome_scale[None, :]

    def unit_scale_for(self, levels: dict[str, str]) -> np.ndarray:
        """Smoothed unit sd (K_ind,) for a (possibly new) combination of factor levels."""
        if not self.s_coef:
            return np.ones(len(self.independent))
        logs = self.s_coef["intercept"].copy()
        for f in self.factors:
            lv = self.levels[f]
            if levels.get(f) in lv:
                logs = logs + self.s_coef[f][lv.index(levels[f])]
        return np.exp(logs)


def _factor_levels(table: xr.Dataset, factor: str) -> tuple[list[str], np.ndarray]:
    if factor not in table.coords or table[factor].dims != ("cell",):
        raise SpecError(
            f"factor {factor!r} is not a coord along 'cell' of the EffectTable; "
            f"factors available: {[c for c in table.coords if table[c].dims == ('cell',) and c != 'cell']}"
        )
    values = [str(v) for v in table[factor].values]
    levels = list(dict.fromkeys(values))
    return levels, np.array([levels.index(v) for v in values], dtype=np.int64)


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


def _rough_spreads(
    y: np.ndarray,
    se: np.ndarray,
    obs: np.ndarray,
    codes: dict[str, np.ndarray],
    levels: dict[str, list[str]],
    factors: list[str],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Moment estimates of the residual cell spread and each factor's level spread (per outcome).

    Only used to choose, element by element, the centred or non-centred parameterisation.
    """
    c, k = y.shape
    cols = [np.ones((c, 1))]
    spans = {}
    for f in factors:
        onehot = np.zeros((c, len(levels[f])))
        onehot[np.arange(c), codes[f]] = 1.0
        spans[f] = (sum(x.shape[1] for x in cols), len(levels[f]))
        cols.append(onehot)
    x = np.concatenate(cols, axis=1)
    ridge = np.full(x.shape[1], 1e-6)
    ridge[0] = 0.0
    resid_sd = np.full(k, 1e-3)
    level_sd: dict[str, np.ndarray] = {f: np.full(k, 1e-3) for f in factors}
    for j in range(k):
        g = obs[:, j]
        if g.sum() < 2:
            continue
        w = 1.0 / se[g, j] ** 2
        w = w / w.sum()
        xg = x[g]
        coef = np.linalg.lstsq(
            xg.T @ (w[:, None] * xg) + np.diag(ridge), xg.T @ (w * y[g, j]), rcond=None
        )[0]
        resid = y[g, j] - xg @ coef
        between = np.sum(w * resid**2) - np.sum(w * se[g, j] ** 2)
        resid_sd[j] = np.sqrt(between) if between > 0 else 1e-3
        for f, (start, n) in spans.items():
            b = coef[start : start + n]
            prec = np.zeros(n)
            np.add.at(prec, codes[f][g], 1.0 / se[g, j] ** 2)
            noise = np.mean(1.0 / np.maximum(prec, 1e-300))
            level_sd[f][j] = np.sqrt(max(np.var(b) - noise, 1e-6))
    return resid_sd, level_sd


def _information_fraction(spread: np.ndarray, se: np.ndarray, *, at_least_half: bool) -> np.ndarray:
    """Centring weight ``s^2 / (s^2 + se^2)``; with ``at_least_half``, ``s = max(spread, se)``.

    Elements without data (``se`` infinite) get 0 (non-centred: the prior alone)."""
    with np.errstate(invalid="ignore", over="ignore"):
        s = np.maximum(spread, se) if at_least_half else spread
        w = s**2 / (s**2 + se**2)
    return np.where(np.isfinite(se), w, 0.0)


def build_inputs(
    table: xr.Dataset,
    *,
    outcomes: list[str] | None = None,
    factors: list[str] | None = None,
    interactions: tuple[tuple[str, ...], ...] | list = (),
    derive: bool = True,
    centring: str = "auto",
) -> ModelInputs:
    """Validate an EffectTable and compute the model's standardised inputs."""
    for var in ("effect", "effect_cov"):
        if var not in table:
            raise DataValidationError(
                f"EffectTable has no {var!r} variable; build it with bayesdecide.cell_effects "
                "or fit_summary"
            )
    all_outcomes = [str(o) for o in table["outcome"].values]
    if outcomes is None:
        outcomes = all_outcomes
    else:
        outcomes = [outcomes] if isinstance(outcomes, str) else list(outcomes)
        unknown = [o for o in outcomes if o not in all_outcomes]
        if unknown:
            raise SpecError(f"outcomes {unknown} are not in the EffectTable ({all_outcomes})")
        table = table.sel(outcome=outcomes, outcome_b=outcomes)
    if factors is None:
        factors = list(table.attrs.get("factors", []))
    factors = list(factors)
    cells = [str(c) for c in table["cell"].values]
    levels: dict[str, list[str]] = {}
    codes: dict[str, np.ndarray] = {}
    for f in factors:
        levels[f], codes[f] = _factor_levels(table, f)
    inter: list[tuple[str, ...]] = []
    for members in interactions:
        members = (members,) if isinstance(members, str) else tuple(members)
        if len(members) < 2 or any(m not in factors for m in members):
            raise SpecError(f"interaction {members!r}: name two or more of the factors {factors}")
        inter.append(members)
        # the full grid of member levels (row-major), observed or not, so the interaction can be
        # constrained to sum to zero along every member's margin (see hierarchical.add_structure)
        grid = [" | ".join(combo) for combo in itertools.product(*(levels[m] for m in members))]
        flat = np.ravel_multi_index(
            tuple(codes[m] for m in members), tuple(len(levels[m]) for m in members)
        )
        levels[interaction_name(members)] = grid
        codes[interaction_name(members)] = flat.astype(np.int64)

    effect = np.asarray(table["effect"].values, dtype=float)
    cov = np.asarray(table["effect_cov"].values, dtype=float)
    c, k = effect.shape
    diag = np.diagonal(cov, axis1=1, axis2=2)
    obs = np.isfinite(effect) & np.isfinite(diag) & (diag > 0)
    if "observed" in table:
        obs &= np.asarray(table["observed"].values, dtype=bool)[:, None]
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

    # unit-level scale per cell
    n_units = None
    s_coef: dict[str, np.ndarray] = {}
    if "n_control" in table and "n_treatment" in table:
        n_c = np.asarray(table["n_control"].values, dtype=float)
        n_t = np.asarray(table["n_treatment"].values, dtype=float)
        n_units = n_c + n_t
    if n_units is not None and np.all(np.isfinite(n_units)):
        with np.errstate(divide="ignore", invalid="ignore"):
            raw_s = np.sqrt(np.diagonal(v_i, axis1=1, axis2=2) / (1 / n_t + 1 / n_c)[:, None])
        good = obs_i & np.isfinite(raw_s) & (raw_s > 0)
        s_unit = np.ones((c, ki))
        for j in range(ki):
            g = good[:, j]
            if g.sum() == 0:
                continue
            if factors and g.sum() > 1:
                coef = smooth_log_on_factors(
                    np.log(raw_s[g, j])[:, None],
                    n_units[g],
                    {f: codes[f][g] for f in factors},
                    levels,
                )
                s_unit[:, j] = np.exp(predict_log(coef, {f: codes[f] for f in factors})[:, 0])
                for key, val in coef.items():
                    s_coef.setdefault(
                        key, np.zeros((val.shape[0], ki)) if key != "intercept" else np.zeros(ki)
                    )
                    if key == "intercept":
                        s_coef[key][j] = val[0]
                    else:
                        s_coef[key][:, j] = val[:, 0]
            else:
                s_unit[:, j] = np.exp(np.average(np.log(raw_s[g, j]), weights=n_units[g]))
                s_coef.setdefault("intercept", np.zeros(ki))
                s_coef["intercept"][j] = np.log(s_unit[0, j])
                for f in factors:
                    s_coef.setdefault(f, np.zeros((len(levels[f]), ki)))
    else:
        s_unit = np.ones((c, ki))

    # outcome scale: typical standardised effect size
    with np.errstate(divide="ignore", invalid="ignore"):
        d = e_i / s_unit
        var_d = np.diagonal(v_i, axis1=1, axis2=2) / s_unit**2
    outcome_scale = np.ones(ki)
    for j in range(ki):
        g = obs_i[:, j]
        w = 1.0 / var_d[g, j]
        ms = np.sum(w * d[g, j] ** 2) / np.sum(w) + np.median(var_d[g, j])
        outcome_scale[j] = np.sqrt(ms) if np.isfinite(ms) and ms > 0 else 1.0

    scale = s_unit * outcome_scale[None, :]
    obs_cells = np.flatnonzero(obs_i.any(axis=1))
    y = np.where(obs_i, e_i, 0.0) / scale
    vs = v_i / (scale[:, :, None] * scale[:, None, :])
    whiten = np.zeros((len(obs_cells), ki, ki))
    z = np.zeros((len(obs_cells), ki))
    for row, ci in enumerate(obs_cells):
        m = obs_i[ci]
        vc = np.where(np.outer(m, m), vs[ci], 0.0)
        vc[~m, ~m] = _MISSING_VAR
        vc = 0.5 * (vc + vc.T) + np.eye(ki) * 1e-10 * np.max(np.diag(vc)[m])
        try:
            chol = np.linalg.cholesky(vc)
        except np.linalg.LinAlgError:
            raise DataValidationError(
                f"effect_cov of cell {cells[ci]!r} is not positive definite; outcomes "
                f"{[outcomes[i] for i in ind_idx]}. Drop a redundant outcome or fix the table"
            ) from None
        inv = np.linalg.solve(chol, np.eye(ki))
        whiten[row] = inv
        z[row] = inv @ y[ci]

    # control-arm baselines
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

    # parameterisation: a centring weight per element, the information fraction
    # spread^2 / (spread^2 + se^2) with the spread estimated from moments. For factor and
    # interaction levels the spread is never taken below the level's own standard error (an
    # estimate of zero spread is not trusted: the boundary-avoiding spread priors keep the posterior
    # spread away from zero), so well-measured levels of clearly heterogeneous outcomes are centred
    # (w -> 1) and the rest half-centred (w = 0.5), which mixes across the range of spreads the
    # posterior visits. Cell deviations use the estimate as is (non-centred where cells do not
    # vary). Measured on both cards: docs/model.md.
    se = np.where(obs_i, np.sqrt(np.diagonal(vs, axis1=1, axis2=2)), np.inf)
    centred: dict[str, np.ndarray] = {}
    if centring == "auto":
        resid_sd, level_sd = _rough_spreads(y, se, obs_i, codes, levels, factors)
        centred["cell"] = _information_fraction(resid_sd[None, :], se, at_least_half=False)
        for gname, code in codes.items():
            prec = np.zeros((len(levels[gname]), ki))
            np.add.at(prec, code, np.where(obs_i, 1.0 / se**2, 0.0))
            level_se = 1.0 / np.sqrt(np.maximum(prec, 1e-300))
            spread = level_sd.get(gname, resid_sd)[None, :]
            centred[gname] = _information_fraction(spread, level_se, at_least_half=True)
    else:
        flag = centring == "centred"
        if centring not in ("centred", "noncentred"):
            raise SpecError(f"centring={centring!r}: use 'auto', 'centred' or 'noncentred'")
        centred["cell"] = np.full((c, ki), float(flag))
        for gname in codes:
            centred[gname] = np.full((len(levels[gname]), ki), float(flag))

    return ModelInputs(
        centred=centred,
        table=table,
        outcomes=outcomes,
        factors=factors,
        interactions=inter,
        cells=cells,
        levels=levels,
        codes=codes,
        independent=[outcomes[i] for i in ind_idx],
        derived=[outcomes[i] for i in der_idx],
        derive_weights=weights,
        s_unit=s_unit,
        s_coef=s_coef,
        outcome_scale=outcome_scale,
        obs_cells=obs_cells,
        whiten=whiten,
        z=z,
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
    return ind @ assembly_matrix(inputs)


__all__ = [
    "ModelInputs",
    "assemble_outcomes",
    "assembly_matrix",
    "build_inputs",
    "interaction_name",
]
