"""`DecisionSettings`: everything a decision needs beyond the posterior draws.

Nothing is assumed about the experiment: a value model and a launch population must be given
(a model card states them: :meth:`bayesdecide.card.ModelCard.decision_settings`); thresholds
default to :data:`bayesdecide.decide.defaults.DECISION_DEFAULTS`. :func:`retention_settings` holds
the seed case's settings for examples and tests, and is only used when asked for by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, replace
from typing import Any

from bayesdecide.decide.defaults import DECISION_DEFAULTS
from bayesdecide.decide.guardrails import Guardrail, as_guardrail, retention_guardrails
from bayesdecide.decide.policies import OPTIMAL, OPTIMAL_WITHOUT_GROUP_RULES, Policy, as_policy
from bayesdecide.decide.population import Population
from bayesdecide.decide.value import ValueModel, retention_value_model
from bayesdecide.errors import SpecError


@dataclass(frozen=True)
class DecisionSettings:
    """Everything a decision needs beyond the draws.

    Parameters
    ----------
    value_model:
        Weights on outcomes (dollars per unit of effect) and named cost assumptions.
    population:
        Launch size, mix, fixed cost, transport multiplier.
    policies:
        Named policies (rules or cell sets) besides ``treat_none``, ``treat_all`` and ``optimal``,
        which are always evaluated (``optimal`` when ``include_optimal``). A policy named
        ``treat_none``/``treat_all`` replaces the built-in one (e.g. to relabel it).
    guardrails:
        Pre-registered rules; they also constrain the optimal targeting.
    loss_threshold:
        X in P(launch value < -X), dollars.
    decision_threshold:
        Probability at which break-even thresholds are read (P(value > 0) = this).
    break_even_assumptions:
        Assumptions to report break-even values for; ``None``: transport multiplier, every named
        cost assumption of the value model, fixed cost and launch size.
    include_optimal:
        Evaluate the Bayes-optimal targeting policy.
    ci_prob:
        Probability of the equal-tailed posterior intervals (``lower``/``upper``) of every table.
    """

    value_model: ValueModel
    population: Population
    policies: tuple[Policy, ...] = ()
    guardrails: tuple[Guardrail, ...] = ()
    loss_threshold: float = DECISION_DEFAULTS["loss_threshold"]
    decision_threshold: float = DECISION_DEFAULTS["decision_threshold"]
    break_even_assumptions: tuple[str, ...] | None = None
    include_optimal: bool = DECISION_DEFAULTS["include_optimal"]
    ci_prob: float = DECISION_DEFAULTS["ci_prob"]

    def __post_init__(self) -> None:
        vm = self.value_model
        if isinstance(vm, Mapping):
            vm = ValueModel.from_dict(vm) if "weights" in vm else ValueModel(vm)
        pop = self.population
        if isinstance(pop, Mapping):
            pop = Population.from_dict(pop)
        object.__setattr__(self, "value_model", vm)
        object.__setattr__(self, "population", pop)
        object.__setattr__(self, "policies", tuple(as_policy(p) for p in self.policies))
        object.__setattr__(self, "guardrails", tuple(as_guardrail(g) for g in self.guardrails))
        if self.break_even_assumptions is not None:
            object.__setattr__(self, "break_even_assumptions", tuple(self.break_even_assumptions))
        if not 0 < self.decision_threshold < 1:
            raise SpecError(f"decision_threshold is {self.decision_threshold}; give it in (0, 1)")
        if not 0 < self.ci_prob < 1:
            raise SpecError(f"ci_prob is {self.ci_prob}; give it in (0, 1)")
        if not self.loss_threshold >= 0:
            raise SpecError(f"loss_threshold is {self.loss_threshold}; give dollars >= 0")
        for reserved in (OPTIMAL, OPTIMAL_WITHOUT_GROUP_RULES):
            if reserved in [p.name for p in self.policies]:
                raise SpecError(
                    f"{reserved!r} is reserved for the optimal targeting; rename the policy"
                )

    @classmethod
    def build(cls, **given: Any) -> DecisionSettings:
        """Settings from keyword arguments, with a clear error naming what is missing."""
        required = [
            f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
        ]
        missing = [k for k in required if k not in given]
        if missing:
            raise SpecError(
                f"decision settings need {missing}: give e.g. value_model=ValueModel({{outcome: "
                "dollars per unit}}) and population=Population(n_eligible=..., fixed_cost=...), "
                "or build the decision from a model card: card.decide(fit)"
            )
        return cls.from_dict(given)

    def with_changes(self, **changes: Any) -> DecisionSettings:
        """A copy with changes: any settings field, any :class:`Population` field (``n_eligible``,
        ``mix``, ``fixed_cost``, ``transport_multiplier`` ...), ``weights`` (``{outcome: weight}``
        merged into the value model) or a named cost assumption of the value model
        (``annoyance_penalty=50``: dollars per unit)."""
        setting_keys = {f.name for f in fields(self)}
        population_keys = {f.name for f in fields(Population)}
        assumptions = set(self.value_model.assumptions)
        unknown = set(changes) - setting_keys - population_keys - assumptions - {"weights"}
        if unknown:
            raise SpecError(
                f"unknown settings {sorted(unknown)}; use decision settings "
                f"{sorted(setting_keys)}, population fields {sorted(population_keys)}, 'weights' "
                f"or a named assumption {sorted(assumptions)}"
            )
        new = replace(self, **{k: v for k, v in changes.items() if k in setting_keys})
        pop = {k: v for k, v in changes.items() if k in population_keys}
        if pop:
            new = replace(new, population=replace(new.population, **pop))
        vm = new.value_model
        if changes.get("weights") is not None:
            vm = vm.with_weights(**dict(changes["weights"]))
        for name in assumptions & set(changes):
            vm = vm.with_assumption(name, changes[name])
        return replace(new, value_model=vm) if vm is not new.value_model else new

    def with_policies(self, *policies: Policy | Mapping[str, Any]) -> DecisionSettings:
        """A copy with ``policies`` added (one of the same name is replaced), the others kept."""
        added = [as_policy(p) for p in policies]
        names = {p.name for p in added}
        kept = [p for p in self.policies if p.name not in names]
        return replace(self, policies=(*kept, *added))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        d: dict[str, Any] = {
            "value_model": self.value_model.to_dict(),
            "population": self.population.to_dict(),
            "policies": [p.to_dict() for p in self.policies],
            "guardrails": [g.to_dict() for g in self.guardrails],
            "loss_threshold": self.loss_threshold,
            "decision_threshold": self.decision_threshold,
            "include_optimal": self.include_optimal,
            "ci_prob": self.ci_prob,
        }
        if self.break_even_assumptions is not None:
            d["break_even_assumptions"] = list(self.break_even_assumptions)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DecisionSettings:
        valid = {f.name for f in fields(cls)}
        unknown = set(d) - valid
        if unknown:
            raise SpecError(
                f"unknown decision settings {sorted(unknown)}; valid are {sorted(valid)}"
            )
        return cls(**dict(d))


def retention_settings(**changes: Any) -> DecisionSettings:
    """The seed's settings: 120,000 eligible customers, $280,000 fixed cost scaled with the treated
    share (5% floor), the seed's net margin, policies ``medium_high_risk`` and ``high_risk_only``,
    the seed's guardrails plus a region fairness floor, and a $500,000 large loss. ``changes`` as
    in :meth:`DecisionSettings.with_changes`."""
    base = DecisionSettings(
        value_model=retention_value_model(),
        population=Population(
            n_eligible=120_000, fixed_cost=280_000.0, fixed_cost_scaling="treated_share"
        ),
        policies=(
            Policy("medium_high_risk", rule={"risk_band": {"in": ["Medium risk", "High risk"]}}),
            Policy("high_risk_only", rule={"risk_band": {"in": ["High risk"]}}),
        ),
        guardrails=tuple(retention_guardrails()),
        loss_threshold=DECISION_DEFAULTS["loss_threshold"],
    )
    return base.with_changes(**changes)


__all__ = ["DecisionSettings", "retention_settings"]
