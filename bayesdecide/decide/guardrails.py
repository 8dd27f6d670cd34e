"""Pre-registered guardrails: rules as data, each evaluated per policy as a posterior probability.

Rule types (``type`` key in the dict form a model card holds):

``effect_bound`` (:class:`EffectBound`)
    P(lower <= policy's average effect on ``outcome`` <= upper) >= ``min_prob``. The effect is per
    eligible customer at launch (untreated customers contribute 0; ``per="treated"`` averages over
    treated customers only), in the outcome's unit (tickets per customer, probability points as
    fractions: 0.015 = 1.5 pp); ``outcome=None`` bounds net value per customer (dollars).
    With ``for_each = <factor>`` it is a **group rule**, held for every level of the factor
    separately (see below).
``value_positive`` (:class:`ValuePositive`)
    P(launch value > ``min_value`` dollars) >= ``min_prob``.
``loss_limit`` (:class:`LossLimit`)
    P(launch value < -``loss`` dollars) <= ``max_prob``.
``fairness_floor`` (:class:`FairnessFloor`)
    P(every level of ``factor`` that the policy treats has average effect >= ``floor`` among its
    treated customers) >= ``min_prob``: joint over levels, per draw. ``outcome=None`` uses net
    value per customer (dollars). A policy that treats nobody in a level is not held to it there.

Group rules
-----------
An ``effect_bound`` with ``for_each = "region"`` is evaluated for every level ``l`` of ``region``.
Its estimand, for a policy treating cells ``treat[c]`` with launch mix ``mix[c]``, is the level's
average effect (:meth:`bayesdecide.decide.evaluate.PolicyDraws.level_draws`)::

    per = "eligible":  E_l = sum_{c in l} mix[c] treat[c] x[c] / sum_{c in l} mix[c]
                       (effect per eligible customer of the level; untreated customers count 0)
    per = "treated":   E_l = sum_{c in l} mix[c] treat[c] x[c] / sum_{c in l} mix[c] treat[c]
                       (effect per treated customer of the level; a level the policy does not
                       treat is not held to the rule)

and with ``relative_to = "overall"`` the gap ``E_l - E`` to the same quantity over the whole
launch population (per eligible or per treated customer). The bounded event is
``lower <= E_l (or E_l - E) <= upper`` and the rule needs, **for every level** held,
``P_l = P(event) >= min_prob``; the rule's probability is the smallest ``P_l`` and the level
that attains it is the *worst level*. "For every region, P(renewal effect < -1 pp) <= 10%" is
``outcome = "renewed", lower = -0.01, min_prob = 0.9``; "no region's net value per eligible
customer more than $5 below the overall" is ``relative_to = "overall", lower = -5``. A level with
no customers at launch is not held. ``fairness_floor`` is a group rule too (its probability is
joint over levels; its level table gives each level's marginal probability).

:func:`guardrail_table` returns the tidy table ``rule, description, policy, probability,
threshold, comparison, passes, definition, factor, worst_level``; :func:`group_rule_table` the
levels x probabilities of the group rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from bayesdecide.decide._draws import interval_probs
from bayesdecide.decide.defaults import DECISION_DEFAULTS
from bayesdecide.decide.evaluate import LevelDraws, PolicyDraws
from bayesdecide.errors import SpecError


def _check_prob(p: float, what: str) -> float:
    p = float(p)
    if not 0 <= p <= 1:
        raise SpecError(f"{what} is {p:g}; give a probability in [0, 1]")
    return p


@dataclass(frozen=True)
class LevelProbabilities:
    """A group rule's results per level of its factor for a set of policies.

    ``probability`` (P, L): each level's posterior probability (NaN where the level is not held
    to the rule); ``draws``: the bounded quantity's draws (:class:`LevelDraws`).
    """

    factor: str
    levels: list[Any]
    probability: np.ndarray
    draws: LevelDraws
    margin: np.ndarray

    def worst(self, comparison: str = ">=") -> list[Any | None]:
        """Per policy, the level with the least favourable probability (lowest for a ``>=``
        rule, highest for ``<=``), ties broken by the smallest ``margin`` (the posterior mean's
        distance inside the bound, in the quantity's unit); ``None`` when no level is held."""
        p = self.probability if comparison == ">=" else -self.probability
        out: list[Any | None] = []
        for row, margin in zip(p, self.margin, strict=True):
            held = ~np.isnan(row)
            if not held.any():
                out.append(None)
                continue
            idx = np.flatnonzero(held)
            order = np.lexsort((margin[idx], row[idx]))  # by probability, then margin
            out.append(self.levels[int(idx[order[0]])])
        return out


class Guardrail:
    """Base of guardrail rules: ``probability`` per policy compared with ``threshold``."""

    type: ClassVar[str] = ""
    comparison: ClassVar[str] = ">="
    name: str | None
    description: str | None

    @property
    def group_factor(self) -> str | None:
        """The factor a group rule is evaluated over, level by level; ``None`` otherwise."""
        return None

    @property
    def levelwise(self) -> bool:
        """True when the rule can only pass if every level's own probability passes, and each
        level's probability depends on that level's cells alone. Then a policy's cells in one
        level can be checked without the others (:mod:`.optimal`): exactly for a group
        ``effect_bound`` without ``relative_to``, as a necessary condition for ``fairness_floor``
        (a joint probability is at most each marginal one)."""
        return False

    def level_probabilities(self, pd_: PolicyDraws) -> LevelProbabilities | None:
        """Per-level results of a group rule; ``None`` for a rule on the totals."""
        return None

    @property
    def label(self) -> str:
        return self.name or self.describe()

    def describe(self) -> str:  # pragma: no cover - overridden
        """The rule generated from its parameters, in words."""
        raise NotImplementedError

    def text(self) -> str:
        """The rule in words: its pre-registered ``description``, else :meth:`describe`."""
        return self.description or self.describe()

    @property
    def threshold(self) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def probability(self, pd_: PolicyDraws) -> np.ndarray:  # pragma: no cover - overridden
        """(P,) posterior probability for each policy."""
        raise NotImplementedError

    def passes(self, probability: np.ndarray) -> np.ndarray:
        p = np.asarray(probability)
        if self.comparison == ">=":
            return p >= self.threshold
        return p <= self.threshold

    def to_dict(self) -> dict[str, Any]:
        d = {"type": self.type}
        d.update({k: v for k, v in asdict(self).items() if v is not None})  # type: ignore[arg-type]
        return d


def _bounds_text(lower: float | None, upper: float | None) -> str:
    parts = [
        f">= {lower:g}" if lower is not None else "",
        f"<= {upper:g}" if upper is not None else "",
    ]
    return " and ".join(b for b in parts if b)


def _in_bounds(x: np.ndarray, lower: float | None, upper: float | None) -> np.ndarray:
    ok = np.ones(x.shape, dtype=bool)
    if upper is not None:
        ok &= x <= upper
    if lower is not None:
        ok &= x >= lower
    return ok


@dataclass(frozen=True)
class EffectBound(Guardrail):
    """The policy's average effect on ``outcome`` stays within ``[lower, upper]``.

    Parameters
    ----------
    outcome:
        Outcome name (e.g. ``support_tickets``); ``None``: net value per customer (dollars).
    upper, lower:
        Bounds in the outcome's unit (at least one; ``lower <= upper``).
    min_prob:
        Required posterior probability of staying within the bounds (for every level of
        ``for_each``, when given).
    per:
        ``"eligible"`` (default; average over all eligible customers at launch, untreated ones
        counting 0) or ``"treated"`` (average over treated customers only).
    for_each:
        A factor (e.g. ``region``): the bound is held for each of its levels separately, the
        effect averaged over the level's eligible (or treated) customers (module docstring).
    relative_to:
        With ``for_each``: ``"overall"`` bounds each level's effect minus the same average over
        the whole launch population (a gap, same unit).
    """

    outcome: str | None = None
    upper: float | None = None
    lower: float | None = None
    min_prob: float = 0.8
    per: str = "eligible"
    for_each: str | None = None
    relative_to: str | None = None
    name: str | None = None
    description: str | None = None
    type: ClassVar[str] = "effect_bound"

    def __post_init__(self) -> None:
        what = f"effect_bound on {self.outcome or 'net value'!r}"
        if self.upper is None and self.lower is None:
            raise SpecError(f"{what}: give upper and/or lower")
        for k in ("upper", "lower"):
            v = getattr(self, k)
            if v is not None and not np.isfinite(v):
                raise SpecError(f"{what}: {k} is {v}; give a finite bound")
        if self.upper is not None and self.lower is not None and self.lower > self.upper:
            raise SpecError(
                f"{what}: lower ({self.lower:g}) is above upper ({self.upper:g}); swap them"
            )
        if self.per not in ("eligible", "treated"):
            raise SpecError(f"effect_bound per={self.per!r}; use 'eligible' or 'treated'")
        if self.relative_to not in (None, "overall"):
            raise SpecError(
                f"{what}: relative_to={self.relative_to!r}; use 'overall' or leave it out"
            )
        if self.relative_to is not None and self.for_each is None:
            raise SpecError(
                f"{what}: relative_to needs for_each (the factor whose levels are compared with "
                "the overall), e.g. for_each='region'"
            )
        object.__setattr__(self, "min_prob", _check_prob(self.min_prob, "effect_bound min_prob"))

    def _quantity_text(self) -> str:
        if self.outcome is None:
            return "net value (dollars)"
        return f"effect on {self.outcome}"

    def describe(self) -> str:
        rng = _bounds_text(self.lower, self.upper)
        what = self._quantity_text()
        if self.for_each is None:
            return f"P({what} per {self.per} customer {rng}) >= {self.min_prob:.0%}"
        f = self.for_each.replace("_", " ")
        gap = f" minus that per {self.per} customer overall" if self.relative_to else ""
        zero = " (untreated customers count as 0)" if self.per == "eligible" else ""
        return (
            f"for every {f}: P({what} per {self.per} customer of the {f}{gap} {rng}) >= "
            f"{self.min_prob:.0%}{zero}"
        )

    @property
    def threshold(self) -> float:
        return self.min_prob

    @property
    def group_factor(self) -> str | None:
        return self.for_each

    @property
    def levelwise(self) -> bool:
        return self.for_each is not None and self.relative_to is None

    def level_probabilities(self, pd_: PolicyDraws) -> LevelProbabilities | None:
        if self.for_each is None:
            return None
        ld = pd_.level_draws(self.for_each, self.outcome, self.per, self.relative_to)
        held = ~np.isnan(ld.draws[0])  # (P, L): the denominators do not vary over draws
        prob = np.where(held, _in_bounds(ld.draws, self.lower, self.upper).mean(axis=0), np.nan)
        mean = ld.draws.mean(axis=0)  # NaN exactly where not held
        margin = np.fmin(
            mean - (-np.inf if self.lower is None else self.lower),
            (np.inf if self.upper is None else self.upper) - mean,
        )
        return LevelProbabilities(self.for_each, ld.levels, prob, ld, margin)

    def probability(self, pd_: PolicyDraws) -> np.ndarray:
        lp = self.level_probabilities(pd_)
        if lp is not None:
            p = lp.probability
            held = ~np.isnan(p)
            # the worst level held; a policy holding no level has nothing to bound
            return np.where(held.any(axis=1), np.where(held, p, np.inf).min(axis=1), 1.0)
        eff = pd_.outcome_effect(self.outcome, self.per)
        ok = _in_bounds(eff, self.lower, self.upper)
        if self.per == "treated":
            ok |= np.isnan(eff)  # nobody treated: nothing to bound
        return ok.mean(axis=0)


@dataclass(frozen=True)
class ValuePositive(Guardrail):
    """P(launch value > ``min_value`` dollars) >= ``min_prob``."""

    min_prob: float = 0.8
    min_value: float = 0.0
    name: str | None = None
    description: str | None = None
    type: ClassVar[str] = "value_positive"

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_prob", _check_prob(self.min_prob, "value_positive min_prob"))

    def describe(self) -> str:
        return f"P(launch value > ${self.min_value:,.0f}) >= {self.min_prob:.0%}"

    @property
    def threshold(self) -> float:
        return self.min_prob

    def probability(self, pd_: PolicyDraws) -> np.ndarray:
        return (pd_.value > self.min_value).mean(axis=0)


@dataclass(frozen=True)
class LossLimit(Guardrail):
    """P(launch value < -``loss`` dollars) <= ``max_prob``."""

    loss: float
    max_prob: float = 0.1
    name: str | None = None
    description: str | None = None
    type: ClassVar[str] = "loss_limit"
    comparison: ClassVar[str] = "<="

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_prob", _check_prob(self.max_prob, "loss_limit max_prob"))
        if self.loss < 0:
            raise SpecError(f"loss_limit loss is {self.loss:g}; give a loss >= 0 dollars")

    def describe(self) -> str:
        return f"P(launch loses more than ${self.loss:,.0f}) <= {self.max_prob:.0%}"

    @property
    def threshold(self) -> float:
        return self.max_prob

    def probability(self, pd_: PolicyDraws) -> np.ndarray:
        return (pd_.value < -self.loss).mean(axis=0)


@dataclass(frozen=True)
class FairnessFloor(Guardrail):
    """No treated level of ``factor`` has an average effect below ``floor``.

    ``outcome=None`` uses net value per customer (dollars); otherwise the outcome's unit. The
    effect is per treated customer of the level; the probability is joint over the treated
    levels (every one at or above the floor in the same draw).
    """

    factor: str = "region"
    floor: float = 0.0
    outcome: str | None = None
    min_prob: float = 0.8
    name: str | None = None
    description: str | None = None
    type: ClassVar[str] = "fairness_floor"

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_prob", _check_prob(self.min_prob, "fairness_floor min_prob"))

    def describe(self) -> str:
        what = self.outcome or "net value"
        return (
            f"P(every treated {self.factor} has {what} effect >= {self.floor:g}) >= "
            f"{self.min_prob:.0%}"
        )

    @property
    def threshold(self) -> float:
        return self.min_prob

    @property
    def group_factor(self) -> str | None:
        return self.factor

    @property
    def levelwise(self) -> bool:
        return True  # the joint probability is at most each treated level's marginal one

    def level_probabilities(self, pd_: PolicyDraws) -> LevelProbabilities:
        """Each treated level's marginal P(effect among its treated customers >= floor)."""
        ld = pd_.level_draws(self.factor, self.outcome, per="treated")
        held = ~np.isnan(ld.draws[0])
        prob = np.where(held, (ld.draws >= self.floor).mean(axis=0), np.nan)
        margin = ld.draws.mean(axis=0) - self.floor  # NaN where not held
        return LevelProbabilities(self.factor, ld.levels, prob, ld, margin)

    def probability(self, pd_: PolicyDraws) -> np.ndarray:
        eff = pd_.level_draws(self.factor, self.outcome, per="treated").draws  # NaN = untreated
        ok = np.isnan(eff) | (eff >= self.floor)
        return ok.all(axis=2).mean(axis=0)


GUARDRAIL_TYPES: dict[str, type[Guardrail]] = {
    cls.type: cls for cls in (EffectBound, ValuePositive, LossLimit, FairnessFloor)
}


def guardrail_from_dict(d: Mapping[str, Any]) -> Guardrail:
    """A guardrail from its dict form, e.g. ``{"type": "effect_bound", "outcome": ..., ...}``."""
    d = dict(d)
    kind = d.pop("type", None)
    if kind not in GUARDRAIL_TYPES:
        raise SpecError(f"guardrail type {kind!r} is not one of {sorted(GUARDRAIL_TYPES)}")
    cls = GUARDRAIL_TYPES[kind]
    valid = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(d) - valid
    if unknown:
        raise SpecError(
            f"guardrail {kind!r} has unknown keys {sorted(unknown)}; valid are {sorted(valid)}"
        )
    return cls(**d)


def as_guardrail(g: Guardrail | Mapping[str, Any]) -> Guardrail:
    return g if isinstance(g, Guardrail) else guardrail_from_dict(g)


def retention_guardrails(region_floor: float = 0.0, min_prob: float = 0.8) -> list[Guardrail]:
    """The seed's pre-registered rules, plus a fairness floor by region.

    Support tickets rise by at most 0.04 per customer; annoyance by at most 1.5 percentage points
    (0.015); P(value > 0) >= 0.8; P(loss > $500k) <= 0.1; no treated region's net value per
    customer below ``region_floor`` dollars.
    """
    return [
        EffectBound("support_tickets", upper=0.04, min_prob=min_prob, name="support_load"),
        EffectBound("annoyance", upper=0.015, min_prob=min_prob, name="annoyance"),
        ValuePositive(min_prob=0.8, name="primary_value"),
        LossLimit(loss=DECISION_DEFAULTS["loss_threshold"], max_prob=0.1, name="large_downside"),
        FairnessFloor("region", floor=region_floor, min_prob=min_prob, name="region_fairness"),
    ]


def guardrail_keys(kind: str) -> tuple[list[str], list[str]]:
    """``(required, optional)`` parameter keys of guardrail type ``kind`` (besides ``name`` and
    ``description``), read from its class: the one definition a model card's rules check against."""
    cls = GUARDRAIL_TYPES[kind]
    required, optional = [], []
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in ("name", "description"):
            continue
        no_default = f.default is MISSING and f.default_factory is MISSING
        (required if no_default else optional).append(f.name)
    return required, optional


def check_guardrails(
    guardrails: Sequence[Guardrail], outcomes: Sequence[str], factors: Sequence[str]
) -> None:
    """Clear errors for guardrails naming unknown outcomes or factors."""
    for g in guardrails:
        outcome = getattr(g, "outcome", None)
        if outcome is not None and outcome not in outcomes:
            raise SpecError(
                f"guardrail {g.label!r} names unknown outcome {outcome!r}; outcomes are "
                f"{list(outcomes)}"
            )
        factor = g.group_factor
        if factor is not None and factor not in factors:
            raise SpecError(
                f"guardrail {g.label!r} names unknown factor {factor!r}; factors are {list(factors)}"
            )


def guardrail_probabilities(
    guardrails: Sequence[Guardrail], pd_: PolicyDraws
) -> tuple[np.ndarray, np.ndarray]:
    """(G, P) probabilities and pass flags."""
    if not guardrails:
        n = len(pd_.names)
        return np.zeros((0, n)), np.zeros((0, n), dtype=bool)
    probs = np.stack([g.probability(pd_) for g in guardrails])
    passes = np.stack([g.passes(p) for g, p in zip(guardrails, probs, strict=True)])
    return probs, passes


def guardrail_table(guardrails: Sequence[Guardrail], pd_: PolicyDraws) -> pd.DataFrame:
    """Tidy table: ``rule, description, policy, probability, threshold, comparison, passes,
    definition, factor, worst_level``. ``description`` is the rule as pre-registered (its
    ``description``, else ``definition``); ``definition`` the rule generated from its parameters
    (estimand and event). For a group rule ``factor`` is its factor, ``probability`` the worst
    level's (joint over levels for ``fairness_floor``) and ``worst_level`` that level (``None``
    when the policy holds no level to it, and for rules on the totals)."""
    probs, passes = guardrail_probabilities(guardrails, pd_)
    rows = []
    for g, pr, ok in zip(guardrails, probs, passes, strict=True):
        lp = g.level_probabilities(pd_)
        worst = lp.worst(g.comparison) if lp is not None else [None] * len(pd_.names)
        for name, p, o, w in zip(pd_.names, pr, ok, worst, strict=True):
            rows.append(
                {
                    "rule": g.label,
                    "description": g.text(),
                    "policy": name,
                    "probability": float(p),
                    "threshold": float(g.threshold),
                    "comparison": g.comparison,
                    "passes": bool(o),
                    "definition": g.describe(),
                    "factor": g.group_factor,
                    "worst_level": None if w is None else str(w),
                }
            )
    return pd.DataFrame(rows, columns=GUARDRAIL_COLUMNS)


def result_text(
    rule: str,
    probability: float,
    threshold: float,
    comparison: str,
    factor: str | None = None,
    worst_level: str | None = None,
) -> str:
    """A rule's result in words, e.g. ``Renewal by region (region EMEA: P = 3%, needs ≥ 90%)``."""
    where = ""
    if factor is not None and worst_level is not None and not pd.isna(worst_level):
        where = f"{str(factor).replace('_', ' ')} {worst_level}: "
    need = "≥" if comparison == ">=" else "≤"
    return f"{rule} ({where}P = {probability:.0%}, needs {need} {threshold:.0%})"


GUARDRAIL_COLUMNS = [
    "rule",
    "description",
    "policy",
    "probability",
    "threshold",
    "comparison",
    "passes",
    "definition",
    "factor",
    "worst_level",
]
GROUP_RULE_COLUMNS = [
    "rule",
    "factor",
    "policy",
    "level",
    "share",
    "treated_share",
    "mean",
    "lower",
    "upper",
    "probability",
    "threshold",
    "comparison",
    "held",
    "passes",
    "worst",
]


def group_rule_table(
    guardrails: Sequence[Guardrail], pd_: PolicyDraws, ci_prob: float
) -> pd.DataFrame:
    """Levels x probabilities of the group rules, one row per rule x policy x level.

    Columns: ``rule``, ``factor``, ``policy``, ``level``; ``share`` (the level's share of the
    launch population), ``treated_share`` (share of the level's eligible customers the policy
    treats); ``mean``, ``lower``, ``upper`` (posterior mean and equal-tailed ``ci_prob``
    interval of the bounded quantity: the level's effect in the rule's unit, per eligible or per
    treated customer, minus the overall one for ``relative_to``); ``probability`` (the level's
    posterior probability of the rule's event; NaN when not held), ``threshold``,
    ``comparison``, ``held`` (whether the level is held to the rule), ``passes`` (the level's
    probability meets the threshold; true when not held) and ``worst`` (the policy's worst
    level). For ``fairness_floor`` the level probabilities are marginal; the rule itself is
    joint over levels (:func:`guardrail_table`).
    """
    lo_q, hi_q = interval_probs(ci_prob)
    rows = []
    for g in guardrails:
        lp = g.level_probabilities(pd_)
        if lp is None:
            continue
        d = lp.draws.draws  # (S, P, L)
        held = ~np.isnan(lp.probability)
        mean = d.mean(axis=0)  # NaN exactly where the level is not held
        lower, upper = np.quantile(d, [lo_q, hi_q], axis=0)
        worst = lp.worst(g.comparison)
        for i, name in enumerate(pd_.names):
            for j, level in enumerate(lp.levels):
                p = float(lp.probability[i, j])
                ok = bool(g.passes(np.asarray(p))) if held[i, j] else True
                rows.append(
                    {
                        "rule": g.label,
                        "factor": lp.factor,
                        "policy": name,
                        "level": str(level),
                        "share": float(lp.draws.share[j]),
                        "treated_share": float(lp.draws.treated[i, j]),
                        "mean": float(mean[i, j]),
                        "lower": float(lower[i, j]),
                        "upper": float(upper[i, j]),
                        "probability": p,
                        "threshold": float(g.threshold),
                        "comparison": g.comparison,
                        "held": bool(held[i, j]),
                        "passes": ok,
                        "worst": worst[i] is not None and level == worst[i],
                    }
                )
    return pd.DataFrame(rows, columns=GROUP_RULE_COLUMNS)
