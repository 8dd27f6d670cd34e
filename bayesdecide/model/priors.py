"""Typed priors, in the outcome's natural units, and the defaults scaled to the data.

Every prior is a small frozen :class:`Prior` (a family and its parameters, PyMC's names) and every
one can be set by name when fitting, for all modelled outcomes at once or per outcome::

    bd.fit(table, priors={
        "mu": bd.Prior("Normal", mu=0, sigma=10),                  # dollars, every outcome
        "sigma_region": {"net_margin": bd.Prior("HalfNormal", sigma=5),
                         "renewed": bd.Prior("HalfNormal", sigma=0.02)},
    })

Names: ``mu`` (the hypermean: the effect at a typical cell averaged over levels), ``sigma_<term>``
(spread of a factor's or an interaction's level effects, e.g. ``sigma_region``,
``sigma_segment_x_risk_band``), ``sigma_cell`` (spread of the cells' own deviations) and
``cell_nu`` (``Prior("Fixed", value=4)`` makes the cell deviations Student-t with that many degrees
of freedom, shared by a cell's outcomes; not given: normal) and ``level_nu`` (the same for the level
effects of every factor and interaction: each level's effects are Student-t, so one outlying region
or product escapes the pooling that its spread would otherwise impose; not given: normal).

Units. Priors are in the outcome's *natural* units: the effect at a typical cell, in the outcome's
own unit (dollars per customer, probability, tickets); see :mod:`bayesdecide.model.inputs` for how
cells with wider or narrower outcomes relate to the typical one. ``prior_scale="data"`` (default)
fills every prior not given with a default scaled by ``unit``, the typical size of the observed
effects of that outcome; ``prior_scale="fixed"`` uses no data-dependent scale: every prior must be
given. :func:`prior_table` shows the priors a fit used, in natural units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayesdecide.errors import SpecError
from bayesdecide.model.terms import INTERCEPT, Hierarchy

# codes of the spread families in the marginal density's kernel (bayesdecide.model.marginal)
HALF_NORMAL, HALF_CAUCHY, EXPONENTIAL, HALF_STUDENT_T, GAMMA = range(1, 6)

LOCATION_FAMILIES = {"Normal": ("mu", "sigma")}
POSITIVE_FAMILIES = {
    "HalfNormal": ("sigma",),
    "HalfCauchy": ("beta",),
    "Exponential": ("lam",),
    "HalfStudentT": ("nu", "sigma"),
    "Gamma": ("alpha", "beta"),
    "Fixed": ("value",),
}
PRIOR_SCALES = ("data", "fixed")
TAIL = "cell_nu"  # degrees of freedom of Student-t cell deviations (optional)
LEVEL_TAIL = "level_nu"  # degrees of freedom of Student-t level effects (optional)
_DEFAULT_PARAMS = {"Normal": {"mu": 0.0}}
_FAMILY_CODE = {
    "HalfNormal": HALF_NORMAL,
    "HalfCauchy": HALF_CAUCHY,
    "Exponential": EXPONENTIAL,
    "HalfStudentT": HALF_STUDENT_T,
    "Gamma": GAMMA,
}
# the kernel's two parameters (pa, pb) of each spread family, in PyMC's names
_KERNEL_PARAMS = {
    "HalfNormal": ("sigma", None),
    "HalfCauchy": ("beta", None),
    "Exponential": ("lam", None),
    "HalfStudentT": ("nu", "sigma"),
    "Gamma": ("alpha", "beta"),
}


@dataclass(frozen=True)
class Prior:
    """A prior distribution: ``Prior("HalfNormal", sigma=5.0)`` (natural units).

    ``family`` is ``Normal`` (for ``mu``) or one of HalfNormal, HalfCauchy, Exponential,
    HalfStudentT, Gamma (spreads, positive); ``Fixed`` (``value=``) pins a spread. Parameters are
    the keyword arguments of the PyMC distribution of the same name.
    """

    family: str
    params: tuple[tuple[str, float], ...] = field(default=())

    def __init__(self, family: str, **params: float) -> None:
        known = {**LOCATION_FAMILIES, **POSITIVE_FAMILIES}
        if family not in known:
            raise SpecError(f"prior family {family!r} is not supported; use one of {sorted(known)}")
        allowed = known[family]
        extra = set(params) - set(allowed)
        if extra:
            raise SpecError(
                f"Prior({family!r}) got unknown parameter(s) {sorted(extra)}; "
                f"its parameters are {list(allowed)}"
            )
        merged = {**_DEFAULT_PARAMS.get(family, {}), **params}
        missing = [p for p in allowed if p not in merged]
        if missing:
            raise SpecError(f"Prior({family!r}) needs parameter(s) {missing}")
        for name, value in merged.items():
            v = float(value)
            if not np.isfinite(v) or (name != "mu" and not v > 0):
                raise SpecError(
                    f"Prior({family!r}): parameter {name}={value} must be "
                    + ("finite" if name == "mu" else "positive and finite")
                )
        object.__setattr__(self, "family", family)
        object.__setattr__(self, "params", tuple(sorted((k, float(v)) for k, v in merged.items())))

    @property
    def kwargs(self) -> dict[str, float]:
        return dict(self.params)

    @property
    def positive(self) -> bool:
        return self.family in POSITIVE_FAMILIES

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **self.kwargs}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Prior:
        d = dict(d)
        return cls(d.pop("family"), **d)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:.4g}" for k, v in self.params)
        return f"Prior({self.family!r}{', ' if args else ''}{args})"

    def scaled(self, factor: float) -> Prior:
        """The same prior for the quantity multiplied by ``factor`` (> 0): every family here is
        a scale family, so this is exact (rates are divided, locations and scales multiplied)."""
        kw = self.kwargs
        if self.family == "Normal":
            return Prior("Normal", mu=kw["mu"] * factor, sigma=kw["sigma"] * factor)
        if self.family == "HalfNormal":
            return Prior("HalfNormal", sigma=kw["sigma"] * factor)
        if self.family == "HalfCauchy":
            return Prior("HalfCauchy", beta=kw["beta"] * factor)
        if self.family == "Exponential":
            return Prior("Exponential", lam=kw["lam"] / factor)
        if self.family == "HalfStudentT":
            return Prior("HalfStudentT", nu=kw["nu"], sigma=kw["sigma"] * factor)
        if self.family == "Gamma":
            return Prior("Gamma", alpha=kw["alpha"], beta=kw["beta"] / factor)
        return Prior("Fixed", value=kw["value"] * factor)

    def median(self) -> float:
        """Prior median (natural units): the location of ``Normal``, the median of a spread."""
        from scipy import stats

        kw = self.kwargs
        if self.family == "Normal":
            return kw["mu"]
        if self.family == "Fixed":
            return kw["value"]
        if self.family == "HalfNormal":
            return float(stats.norm.ppf(0.75) * kw["sigma"])
        if self.family == "HalfCauchy":
            return kw["beta"]
        if self.family == "Exponential":
            return float(np.log(2.0) / kw["lam"])
        if self.family == "HalfStudentT":
            return float(stats.t(kw["nu"]).ppf(0.75) * kw["sigma"])
        return float(stats.gamma(kw["alpha"], scale=1.0 / kw["beta"]).median())

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        """Draws from this prior (natural units)."""
        kw = self.kwargs
        if self.family == "Normal":
            return rng.normal(kw["mu"], kw["sigma"], size)
        if self.family == "Fixed":
            return np.full(size, kw["value"])
        if self.family == "HalfNormal":
            return np.abs(rng.normal(0.0, kw["sigma"], size))
        if self.family == "HalfCauchy":
            return np.abs(kw["beta"] * rng.standard_cauchy(size))
        if self.family == "Exponential":
            return rng.exponential(1.0 / kw["lam"], size)
        if self.family == "HalfStudentT":
            return np.abs(kw["sigma"] * rng.standard_t(kw["nu"], size))
        return rng.gamma(kw["alpha"], 1.0 / kw["beta"], size)


PriorSpec = Prior | Mapping[str, Any]
PriorArg = Mapping[str, PriorSpec | Mapping[str, PriorSpec]]


FEW_LEVELS = 5  # a factor with fewer levels than this is not pooled by default


def default_prior(name: str, unit: float, guess: float = 0.0, levels: int | None = None) -> Prior:
    """The data-scaled default of prior ``name`` for an outcome whose observed effects are about
    ``unit`` in size, with ``guess`` a moment estimate of the spread (natural units) and
    ``levels`` the number of levels of the factor (main effects only; None: not a factor).

    - ``mu ~ Normal(0, 5 sqrt(unit^2 + guess^2))``, ``guess`` the root sum of squares of the
      spreads' guesses: weak next to what the levels say about the hypermean. With iid level
      effects the data pin ``mu`` down only to about ``sigma / sqrt(levels)`` per factor, so a
      prior of a few typical effects would pull every level toward zero.
    - ``sigma_<factor>`` of a factor with fewer than :data:`FEW_LEVELS` levels:
      ``Fixed(5 sqrt(unit^2 + guess^2))``, the weak prior of ``mu``: the factor's levels are not
      pooled (fixed effects). Two to four levels cannot estimate their spread, and an estimated
      one lets the most extreme level be pulled in: measured on the retention and markets
      processes (20 replicates), High risk -0.73 posterior sd and Enterprise -0.61 with a pooled
      spread, -0.45 and -0.03 unpooled (docs/model.md, "Few levels").
    - ``sigma_<factor> ~ HalfNormal(max(2 guess, unit / 2))`` otherwise: wide around what the
      unpooled level means suggest, so a factor with a few far-apart levels is not pulled
      together by the prior, while small spreads stay in reach (complete pooling when the data
      say so).
    - ``sigma_<f1>_x_<f2>``, ``sigma_cell ~ HalfNormal(max(2 guess, unit / 4))``, the guess being
      the cells' spread around the main effects.
    """
    if name == INTERCEPT:
        return Prior("Normal", mu=0.0, sigma=5.0 * float(np.hypot(unit, guess)))
    if levels is not None and levels < FEW_LEVELS:
        return Prior("Fixed", value=5.0 * float(np.hypot(unit, guess)))
    floor = 0.25 * unit if (name == "sigma_cell" or "_x_" in name) else 0.5 * unit
    return Prior("HalfNormal", sigma=max(2.0 * guess, floor))


def _as_prior(value: Any, name: str) -> Prior:
    if isinstance(value, Prior):
        prior = value
    elif isinstance(value, Mapping) and "family" in value:
        prior = Prior.from_dict(value)
    else:
        raise SpecError(
            f"prior {name!r}: give a bd.Prior (or a table with 'family'), not {value!r}"
        )
    if name == INTERCEPT and prior.family not in LOCATION_FAMILIES:
        raise SpecError(
            f"prior 'mu' is a location: use Normal (got {prior.family}); it is integrated out "
            "exactly, which needs a normal prior"
        )
    if name != INTERCEPT and not prior.positive:
        raise SpecError(
            f"prior {name!r} is a spread and must be positive: use one of "
            f"{sorted(POSITIVE_FAMILIES)} (got {prior.family})"
        )
    return prior


def resolve_priors(
    hierarchy: Hierarchy,
    outcomes: Sequence[str],
    unit: np.ndarray,
    overrides: PriorArg | None,
    prior_scale: str = "data",
    all_outcomes: Sequence[str] | None = None,
    guess: Mapping[str, np.ndarray] | None = None,
) -> dict[str, list[Prior]]:
    """Prior name -> one :class:`Prior` per modelled outcome (natural units): the user's where
    given (for all outcomes or per outcome), else the data-scaled default (``prior_scale="data"``);
    with ``prior_scale="fixed"`` a prior that is not given is an error naming it."""
    if prior_scale not in PRIOR_SCALES:
        raise SpecError(f"prior_scale={prior_scale!r}: use one of {PRIOR_SCALES}")
    names = hierarchy.prior_names
    overrides = dict(overrides or {})
    optional = ([TAIL] if hierarchy.cell_deviation else []) + (
        [LEVEL_TAIL] if hierarchy.level_terms else []
    )
    unknown = [n for n in overrides if n not in names + optional]
    if unknown:
        raise SpecError(f"unknown prior(s) {unknown}; priors of this model are {names + optional}")
    known_outcomes = list(all_outcomes or outcomes)
    # number of levels of each main effect's factor (the few-levels default)
    levels = {t.prior_name: len(t.levels) for t in hierarchy.level_terms if len(t.members) == 1}
    resolved: dict[str, list[Prior]] = {}
    missing: list[str] = []
    for name in names:
        given = overrides.get(name)
        per_outcome: dict[str, Prior] = {}
        if isinstance(given, Mapping) and "family" not in given:
            bad = [o for o in given if o not in known_outcomes]
            if bad:
                raise SpecError(
                    f"prior {name!r} names outcome(s) {bad}; outcomes are {known_outcomes}"
                )
            derived = [o for o in given if o not in outcomes]
            if derived:
                raise SpecError(
                    f"prior {name!r} names outcome(s) {derived}, which the model derives from "
                    f"the others ({list(outcomes)}) instead of modelling; set their priors"
                )
            per_outcome = {o: _as_prior(v, name) for o, v in given.items()}
        elif given is not None:
            one = _as_prior(given, name)
            per_outcome = {o: one for o in outcomes}
        row = []
        for j, o in enumerate(outcomes):
            if o in per_outcome:
                row.append(per_outcome[o])
            elif prior_scale == "data":
                g = float(guess[name][j]) if guess and name in guess else 0.0
                row.append(default_prior(name, float(unit[j]), g, levels.get(name)))
            else:
                missing.append(f"{name}[{o}]")
                row.append(Prior("Fixed", value=1.0))
        resolved[name] = row
    if missing:
        raise SpecError(
            f"prior_scale='fixed' uses no data-dependent default, so every prior must be given; "
            f"missing: {missing}. Give them in priors= (natural units), or use prior_scale='data'"
        )
    for name in (TAIL, LEVEL_TAIL):
        if name in overrides:
            resolved[name] = [_degrees_of_freedom(name, overrides[name])] * len(outcomes)
    return resolved


def _degrees_of_freedom(name: str, given: Any) -> Prior:
    """The ``Prior("Fixed", value=nu)`` of a Student-t tail (``cell_nu``, ``level_nu``)."""
    tail = given if isinstance(given, Prior) else Prior.from_dict(given)
    if tail.family != "Fixed" or not tail.kwargs["value"] > 0:
        raise SpecError(
            f"prior {name!r} takes Prior('Fixed', value=nu) with nu > 0 degrees of freedom "
            f"(got {tail!r})"
        )
    return tail


@dataclass(frozen=True)
class KernelPriors:
    """The priors as the marginal density's arrays (standardised units).

    ``pidx`` (terms, K): index into the free parameters ``x`` (log spreads) or -1 when fixed,
    with ``fixed_var`` the fixed variance; ``pidx_cell``/``fixed_var_cell`` (K,) likewise for the
    cell deviations (variance 0 when the model has none); ``fam``, ``pa``, ``pb`` (P,) the prior
    family code and parameters of every free parameter; ``mu_shift`` (K,) the prior mean of
    ``mu``; ``names`` (P,) ``"sigma_region[net_margin]"``-style labels; ``nu`` and ``level_nu``
    the degrees of freedom of Student-t cell deviations and level effects (0: normal).
    """

    pidx: np.ndarray
    fixed_var: np.ndarray
    pidx_cell: np.ndarray
    fixed_var_cell: np.ndarray
    fam: np.ndarray
    pa: np.ndarray
    pb: np.ndarray
    mu_shift: np.ndarray
    names: list[str]
    groups: list[str]  # spread name of each free parameter ("sigma_region")
    nu: float = 0.0  # Student-t degrees of freedom of the cell deviations (0: normal)
    level_nu: float = 0.0  # Student-t degrees of freedom of the level effects (0: normal)

    @property
    def n_free(self) -> int:
        return len(self.names)


def kernel_priors(
    hierarchy: Hierarchy,
    outcomes: Sequence[str],
    unit: np.ndarray,
    priors: Mapping[str, list[Prior]],
) -> KernelPriors:
    """Convert natural-unit priors to the standardised arrays of :mod:`bayesdecide.model.marginal`."""
    k = len(outcomes)
    n_terms = len(hierarchy.terms)
    pidx = -np.ones((n_terms, k), np.int64)
    fixed_var = np.zeros((n_terms, k))
    pidx_cell = -np.ones(k, np.int64)
    fixed_var_cell = np.zeros(k)
    fam: list[int] = []
    pa: list[float] = []
    pb: list[float] = []
    names: list[str] = []
    groups: list[str] = []
    mu_shift = np.zeros(k)

    def add(prior: Prior, label: str, group: str) -> int:
        kw = prior.kwargs
        first, second = _KERNEL_PARAMS[prior.family]
        fam.append(_FAMILY_CODE[prior.family])
        pa.append(kw[first])
        pb.append(kw[second] if second else 0.0)
        names.append(label)
        groups.append(group)
        return len(names) - 1

    for t, term in enumerate(hierarchy.terms):
        for j, o in enumerate(outcomes):
            prior = priors[term.prior_name][j].scaled(1.0 / unit[j])
            if term.is_intercept:
                mu_shift[j] = prior.kwargs["mu"]
                fixed_var[t, j] = prior.kwargs["sigma"] ** 2
            elif prior.family == "Fixed":
                fixed_var[t, j] = prior.kwargs["value"] ** 2
            else:
                pidx[t, j] = add(prior, f"{term.prior_name}[{o}]", term.prior_name)
    if hierarchy.cell_deviation:
        for j, o in enumerate(outcomes):
            prior = priors["sigma_cell"][j].scaled(1.0 / unit[j])
            if prior.family == "Fixed":
                fixed_var_cell[j] = prior.kwargs["value"] ** 2
            else:
                pidx_cell[j] = add(prior, f"sigma_cell[{o}]", "sigma_cell")
    return KernelPriors(
        pidx=pidx,
        fixed_var=fixed_var,
        pidx_cell=pidx_cell,
        fixed_var_cell=fixed_var_cell,
        fam=np.asarray(fam, np.int64),
        pa=np.asarray(pa, float),
        pb=np.asarray(pb, float),
        mu_shift=mu_shift,
        names=names,
        groups=groups,
        nu=float(priors[TAIL][0].kwargs["value"]) if TAIL in priors else 0.0,
        level_nu=float(priors[LEVEL_TAIL][0].kwargs["value"]) if LEVEL_TAIL in priors else 0.0,
    )


def prior_table(priors: Mapping[str, list[Prior]], outcomes: Sequence[str]) -> pd.DataFrame:
    """One row per prior and modelled outcome: family and parameters in natural units."""
    rows = []
    for name, row in priors.items():
        for o, p in zip(outcomes, row, strict=True):
            rows.append(
                {
                    "prior": name,
                    "outcome": o,
                    "family": p.family,
                    "parameters": ", ".join(f"{k}={v:.4g}" for k, v in p.params),
                }
            )
    return pd.DataFrame(rows).set_index(["prior", "outcome"])


def encode_priors(overrides: PriorArg | None) -> dict[str, Any]:
    """User priors as plain JSON-able tables (for saving a fit)."""
    out: dict[str, Any] = {}
    for name, value in (overrides or {}).items():
        if isinstance(value, Prior):
            out[name] = value.to_dict()
        elif isinstance(value, Mapping) and "family" not in value:
            out[name] = {
                o: (v.to_dict() if isinstance(v, Prior) else dict(v)) for o, v in value.items()
            }
        else:
            out[name] = dict(value)
    return out


def decode_priors(encoded: Mapping[str, Any] | None) -> dict[str, Any]:
    """Inverse of :func:`encode_priors`: typed :class:`Prior` objects."""
    out: dict[str, Any] = {}
    for name, value in (encoded or {}).items():
        if "family" in value:
            out[name] = Prior.from_dict(value)
        else:
            out[name] = {o: Prior.from_dict(v) for o, v in value.items()}
    return out


__all__ = [
    "LEVEL_TAIL",
    "PRIOR_SCALES",
    "TAIL",
    "KernelPriors",
    "Prior",
    "decode_priors",
    "default_prior",
    "encode_priors",
    "kernel_priors",
    "prior_table",
    "resolve_priors",
]
