"""Pre-registered guardrails: rules as data, each evaluated per policy as a posterior probability.

Rule types (``type`` key in the dict form a model card holds):

``effect_bound`` (:class:`EffectBound`)
    P(lower <= policy's average effect on ``outcome`` <= upper) >= ``min_prob``. The effect is per
    eligible customer at launch (untreated customers contribute 0; ``per="treated"`` averages over
    treated customers only), in the outcome's unit (tickets per customer, probability points as
    fractions: 0.015 = 1.5 pp).
``value_positive`` (:class:`ValuePositive`)
    P(launch value > ``min_value`` dollars) >= ``min_prob``.
``loss_limit`` (:class:`LossLimit`)
    P(launch value < -``loss`` dollars) <= ``max_prob``.
``fairness_floor`` (:class:`FairnessFloor`)
    P(every level of ``factor`` that the policy treats has average effect >= ``floor`` among its
    treated customers) >= ``min_prob``: joint over levels, per draw. ``outcome=None`` uses net
    value per customer (dollars). A policy that treats nobody in a level is not held to it there.

:func:`guardrail_table` returns the tidy table ``rule, policy, probability, threshold, comparison,
passes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from bayesdecide.decide.evaluate import PolicyDraws
from bayesdecide.errors import SpecError


def _check_prob(p: float, what: str) -> float:
    p = float(p)
    if not 0 <= p <= 1:
        raise SpecError(f"{what} is {p:g}; give a probability in [0, 1]")
    return p


class Guardrail:
    """Base of guardrail rules: ``probability`` per policy compared with ``threshold``."""

    type: ClassVar[str] = ""
    comparison: ClassVar[str] = ">="
    name: str | None
    description: str | None

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


@dataclass(frozen=True)
class EffectBound(Guardrail):
    """The policy's average effect on ``outcome`` stays within ``[lower, upper]``.

    Parameters
    ----------
    outcome:
        Outcome name (e.g. ``support_tickets``).
    upper, lower:
        Bounds in the outcome's unit (at least one).
    min_prob:
        Required posterior probability of staying within the bounds.
    per:
        ``"eligible"`` (default; average over all eligible customers at launch) or ``"treated"``.
    """

    outcome: str
    upper: float | None = None
    lower: float | None = None
    min_prob: float = 0.8
    per: str = "eligible"
    name: str | None = None
    description: str | None = None
    type: ClassVar[str] = "effect_bound"

    def __post_init__(self) -> None:
        if self.upper is None and self.lower is None:
            raise SpecError(f"effect_bound on {self.outcome!r}: give upper and/or lower")
        if self.per not in ("eligible", "treated"):
            raise SpecError(f"effect_bound per={self.per!r}; use 'eligible' or 'treated'")
        object.__setattr__(self, "min_prob", _check_prob(self.min_prob, "effect_bound min_prob"))

    def describe(self) -> str:
        bounds = [f">= {self.lower:g}" if self.lower is not None else "", ""]
        bounds[1] = f"<= {self.upper:g}" if self.upper is not None else ""
        rng = " and ".join(b for b in bounds if b)
        return f"P(effect on {self.outcome} per {self.per} customer {rng}) >= {self.min_prob:.0%}"

    @property
    def threshold(self) -> float:
        return self.min_prob

    def probability(self, pd_: PolicyDraws) -> np.ndarray:
        eff = pd_.outcome_effect(self.outcome, self.per)
        ok = np.ones(eff.shape, dtype=bool)
        if self.upper is not None:
            ok &= eff <= self.upper
        if self.lower is not None:
            ok &= eff >= self.lower
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

    ``outcome=None`` uses net value per customer (dollars); otherwise the outcome's unit.
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

    def probability(self, pd_: PolicyDraws) -> np.ndarray:
        eff, _, _ = pd_.level_effect(self.factor, self.outcome)  # (S, P, L), NaN = untreated
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
        LossLimit(loss=500_000.0, max_prob=0.1, name="large_downside"),
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
        factor = getattr(g, "factor", None)
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
    """Tidy table: ``rule, policy, probability, threshold, comparison, passes``."""
    probs, passes = guardrail_probabilities(guardrails, pd_)
    rows = []
    for g, pr, ok in zip(guardrails, probs, passes, strict=True):
        for name, p, o in zip(pd_.names, pr, ok, strict=True):
            rows.append(
                {
                    "rule": g.label,
                    "description": g.text(),
                    "policy": name,
                    "probability": float(p),
                    "threshold": float(g.threshold),
                    "comparison": g.comparison,
                    "passes": bool(o),
                }
            )
    cols = ["rule", "description", "policy", "probability", "threshold", "comparison", "passes"]
    return pd.DataFrame(rows, columns=cols)
