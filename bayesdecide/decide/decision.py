"""`Decision`: a fit's posterior draws together with its decision settings.

It gathers every decision table for one set of settings (value model, launch population, policies,
guardrails, loss and decision thresholds) and is what the memo reads (:meth:`Decision.to_dict` is
the memo's ``summary.json``). Nothing is refitted: :meth:`Decision.with_settings` re-renders with
other costs, weights, mix or rules in milliseconds.

Recommendation rule (explicit): among all evaluated policies (treat none, treat all, the named
policies and the optimal targeting), recommend the one with the highest expected launch value among
those that pass **every** guardrail; ties go to the policy listed first (named policies come before
``optimal``). If no policy passes, recommend ``treat_none`` (hold: do not launch).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.decide._draws import (
    DEFAULT_SAMPLE_DIMS,
    as_sample_dims,
    factor_names,
    flatten,
    summarize,
)
from bayesdecide.decide.breakeven import break_even_draws, break_even_table
from bayesdecide.decide.compare import LevelComparison, compare_levels
from bayesdecide.decide.evaluate import LaunchDraws, PolicyDraws, policy_table
from bayesdecide.decide.guardrails import (
    Guardrail,
    as_guardrail,
    check_guardrails,
    guardrail_probabilities,
    guardrail_table,
    retention_guardrails,
)
from bayesdecide.decide.information import value_of_information
from bayesdecide.decide.optimal import OptimalResult, optimal_policy
from bayesdecide.decide.policies import (
    OPTIMAL,
    TREAT_ALL,
    TREAT_NONE,
    Policy,
    as_policy,
    treat_all,
    treat_none,
)
from bayesdecide.decide.population import Population
from bayesdecide.decide.sensitivity import sensitivity_table
from bayesdecide.decide.value import ValueModel, retention_value_model
from bayesdecide.errors import SpecError

_POPULATION_KEYS = {f.name for f in fields(Population)}


@dataclass(frozen=True)
class DecisionSettings:
    """Everything a decision needs beyond the draws.

    Parameters
    ----------
    value_model:
        Weights on outcomes (dollars per unit of effect).
    population:
        Launch size, mix, fixed cost, transport multiplier.
    policies:
        Named policies (rules or cell sets) besides ``treat_none``, ``treat_all`` and ``optimal``,
        which are always evaluated (``optimal`` when ``include_optimal``).
    guardrails:
        Pre-registered rules; they also constrain the optimal targeting.
    loss_threshold:
        X in P(loss > X), dollars.
    decision_threshold:
        Probability at which break-even thresholds are read (P(value > 0) = this).
    break_even_assumptions:
        Assumptions to report break-even values for; ``None``: transport multiplier, fixed cost,
        launch size and the penalty of every outcome priced at other than -1 dollar per unit
        (e.g. ``annoyance_penalty``, ``support_tickets_penalty``).
    include_optimal:
        Evaluate the Bayes-optimal targeting policy.
    ci_prob:
        Central interval probability for effect and break-even summaries.
    """

    value_model: ValueModel
    population: Population
    policies: tuple[Policy, ...] = ()
    guardrails: tuple[Guardrail, ...] = ()
    loss_threshold: float = 500_000.0
    decision_threshold: float = 0.8
    break_even_assumptions: tuple[str, ...] | None = None
    include_optimal: bool = True
    ci_prob: float = 0.95

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
        if self.loss_threshold < 0:
            raise SpecError(f"loss_threshold is {self.loss_threshold}; give dollars >= 0")
        names = [p.name for p in self.policies]
        if OPTIMAL in names:
            raise SpecError(f"{OPTIMAL!r} is reserved for the optimal targeting; rename the policy")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for a TOML model card)."""
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
    and the seed's guardrails plus a region fairness floor. ``changes`` go through
    :meth:`Decision.with_settings`'s keys (settings fields, population fields, ``weights``)."""
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
    )
    return _apply_changes(base, changes)


def _apply_changes(settings: DecisionSettings, changes: Mapping[str, Any]) -> DecisionSettings:
    setting_keys = {f.name for f in fields(DecisionSettings)}
    pop_changes = {k: v for k, v in changes.items() if k in _POPULATION_KEYS}
    weights = changes.get("weights")
    other = {k: v for k, v in changes.items() if k in setting_keys}
    unknown = set(changes) - setting_keys - _POPULATION_KEYS - {"weights"}
    if unknown:
        raise SpecError(
            f"unknown settings {sorted(unknown)}; use decision settings {sorted(setting_keys)}, "
            f"population fields {sorted(_POPULATION_KEYS)} or 'weights'"
        )
    new = replace(settings, **other) if other else settings
    if pop_changes:
        new = replace(new, population=replace(new.population, **pop_changes))
    if weights is not None:
        new = replace(new, value_model=new.value_model.with_weights(**dict(weights)))
    return new


def _json(x: Any) -> Any:
    """JSON-ready: numpy scalars to Python, non-finite floats to None."""
    if isinstance(x, Mapping):
        return {str(k): _json(v) for k, v in x.items()}
    if isinstance(x, list | tuple | np.ndarray):
        return [_json(v) for v in x]
    if isinstance(x, np.bool_ | bool):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


class Decision:
    """Decision tables for posterior cell effects under one set of decision settings.

    Parameters
    ----------
    tau:
        Cell effect draws, dims ``(*sample_dims, cell, outcome)``, per assigned customer (ITT),
        with factor label coords on ``cell``.
    cell_share:
        The experiment's mix over ``cell`` (sums to 1).
    settings:
        :class:`DecisionSettings`.
    effects:
        Optional EffectTable (``effect``, ``effect_cov``) for the raw-vs-pooled shrinkage table.
    sample_dims:
        Draw dims of ``tau``.
    """

    def __init__(
        self,
        tau: xr.DataArray,
        cell_share: xr.DataArray,
        settings: DecisionSettings,
        *,
        effects: xr.Dataset | None = None,
        sample_dims: str | Sequence[str] = DEFAULT_SAMPLE_DIMS,
    ) -> None:
        if not isinstance(settings, DecisionSettings):
            raise SpecError(f"settings must be DecisionSettings, got {type(settings).__name__}")
        self.tau = tau
        self.cell_share = cell_share
        self.settings = settings
        self.effects = effects
        self.sample_dims = as_sample_dims(sample_dims)
        launch = self.launch  # validates tau, weights and mix now
        check_guardrails(settings.guardrails, launch.outcomes, factor_names(tau))
        self.masks  # noqa: B018 - validates the policies now

    @classmethod
    def from_fit(
        cls, fit: Any, settings: DecisionSettings | None = None, **changes: Any
    ) -> Decision:
        """From a fit (duck-typed): ``fit.idata.posterior["tau"]``, ``fit.cell_share`` and, when
        present, ``fit.effects``. ``settings`` defaults to :func:`retention_settings`; ``changes``
        are applied as in :meth:`with_settings`."""
        try:
            tau = fit.idata.posterior["tau"]
            cell_share = fit.cell_share
        except (AttributeError, KeyError) as err:
            raise SpecError("from_fit needs fit.idata.posterior['tau'] and fit.cell_share") from err
        base = retention_settings() if settings is None else settings
        return cls(
            tau,
            cell_share,
            _apply_changes(base, changes),
            effects=getattr(fit, "effects", None),
            sample_dims=DEFAULT_SAMPLE_DIMS,
        )

    def with_settings(self, **changes: Any) -> Decision:
        """A new Decision with changed settings, no refit.

        Keys: any :class:`DecisionSettings` field (``policies``, ``guardrails``, ...), any
        :class:`Population` field (``n_eligible``, ``mix``, ``fixed_cost``,
        ``transport_multiplier``, ``fixed_cost_scaling``, ``min_cost_share``), ``weights``
        (``{outcome: weight}`` merged into the value model) or ``effects``.
        """
        effects = changes.pop("effects", self.effects)
        return Decision(
            self.tau,
            self.cell_share,
            _apply_changes(self.settings, changes),
            effects=effects,
            sample_dims=self.sample_dims,
        )

    # ---- building blocks -------------------------------------------------------------------

    @cached_property
    def launch(self) -> LaunchDraws:
        s = self.settings
        return LaunchDraws(self.tau, self.cell_share, s.value_model, s.population, self.sample_dims)

    @cached_property
    def named_policies(self) -> list[Policy]:
        """treat_none, treat_all (unless redefined) and the settings' policies, in order."""
        names = [p.name for p in self.settings.policies]
        base = [p for p in (treat_none(), treat_all()) if p.name not in names]
        return [*base, *self.settings.policies]

    @cached_property
    def optimal(self) -> OptimalResult:
        """The Bayes-optimal targeting under the guardrails (see :mod:`.optimal`)."""
        named = self.launch.masks(self.named_policies)
        return optimal_policy(self.launch, self.settings.guardrails, candidates=named)

    @cached_property
    def masks(self) -> np.ndarray:
        """(P, C) 0/1 masks of :attr:`policy_names`."""
        named = self.launch.masks(self.named_policies)
        if not self.settings.include_optimal:
            return named
        return np.vstack([named, self.optimal.mask[None]])

    @property
    def policy_names(self) -> list[str]:
        names = [p.name for p in self.named_policies]
        return [*names, OPTIMAL] if self.settings.include_optimal else names

    @cached_property
    def policy_draws(self) -> PolicyDraws:
        return self.launch.evaluate(self.masks, self.policy_names)

    @property
    def policy_values(self) -> xr.DataArray:
        """Launch value draws in dollars, dims ``(*sample_dims, policy)``."""
        return self.policy_draws.value_da()

    def policy_cells(self, policy: str) -> list[str]:
        """Cells a policy treats."""
        i = self._policy_index(policy)
        return [str(c) for c, t in zip(self.launch.cells, self.masks[i], strict=True) if t > 0]

    def _policy_index(self, policy: str) -> int:
        if policy not in self.policy_names:
            raise SpecError(f"unknown policy {policy!r}; policies are {self.policy_names}")
        return self.policy_names.index(policy)

    # ---- tables ----------------------------------------------------------------------------

    @cached_property
    def _policy_table(self) -> pd.DataFrame:
        pd_ = self.policy_draws
        return policy_table(pd_.value, pd_.names, pd_.treated_share, self.settings.loss_threshold)

    def policy_table(self) -> pd.DataFrame:
        """Per policy: expected_value, prob_positive, prob_large_loss, p10, p50, p90,
        expected_loss, prob_best (dollars at launch scale), treated_share, passes_guardrails."""
        t = self._policy_table.copy()
        t["passes_guardrails"] = self._passes_all
        return t

    @cached_property
    def _guardrails(self) -> tuple[np.ndarray, np.ndarray]:
        return guardrail_probabilities(self.settings.guardrails, self.policy_draws)

    @cached_property
    def _passes_all(self) -> np.ndarray:
        return self._guardrails[1].all(axis=0)

    def guardrail_table(self) -> pd.DataFrame:
        """Tidy: rule, description, policy, probability, threshold, comparison, passes."""
        return guardrail_table(self.settings.guardrails, self.policy_draws)

    @property
    def recommended_policy(self) -> str:
        """Highest expected value among policies passing every guardrail; else ``treat_none``."""
        ev = self._policy_table["expected_value"].to_numpy()
        best, best_ev = TREAT_NONE, -np.inf
        for name, e, ok in zip(self.policy_names, ev, self._passes_all, strict=True):
            if ok and e > best_ev:
                best, best_ev = name, e
        return best

    def effects_table(self) -> pd.DataFrame:
        """All-customer effect per outcome at the experiment's mix (outcome units per assigned
        customer): mean, sd, ci_lower, ci_upper (central ``ci_prob``)."""
        launch = self.launch
        avg = np.einsum("sck,c->sk", launch.x, launch.experiment_share)
        s = summarize(avg, self.settings.ci_prob)
        return pd.DataFrame(
            {k: s[k] for k in ("mean", "sd", "ci_lower", "ci_upper")},
            index=pd.Index(launch.outcomes, name="outcome"),
        )

    @property
    def break_even_assumptions(self) -> list[str]:
        if self.settings.break_even_assumptions is not None:
            return list(self.settings.break_even_assumptions)
        priced = [
            f"penalty:{k}"
            for k, w in self.settings.value_model.weights.items()
            if w < 0 and w != -1
        ]
        return ["transport_multiplier", *priced, "fixed_cost", "n_eligible"]

    @property
    def break_even_policy(self) -> str:
        """Policy the memo's break-even values refer to: the recommendation, or treat_all when
        the recommendation is to hold."""
        rec = self.recommended_policy
        if rec == TREAT_NONE and TREAT_ALL in self.policy_names:
            return TREAT_ALL
        return rec

    def break_even_table(
        self, assumptions: Sequence[str] | None = None, policies: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Break-even summary (see :func:`bayesdecide.decide.breakeven.break_even_table`)."""
        pols = self.policy_names if policies is None else list(policies)
        idx = [self._policy_index(p) for p in pols]
        return break_even_table(
            self.launch,
            self.masks[idx],
            pols,
            self.break_even_assumptions if assumptions is None else list(assumptions),
            self.settings.decision_threshold,
            self.settings.ci_prob,
        )

    def break_even(self, assumption: str, policy: str | None = None) -> xr.DataArray:
        """Break-even draws of ``assumption`` for ``policy`` (default :attr:`break_even_policy`)."""
        pol = self.break_even_policy if policy is None else policy
        i = self._policy_index(pol)
        return break_even_draws(self.launch, self.masks[[i]], [pol], assumption).isel(
            policy=0, drop=True
        )

    def sensitivity(
        self,
        assumption: str,
        grid: Sequence[float] | np.ndarray,
        policies: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Expected value, P(value > 0), P(large loss), P10/P90 over a grid of one assumption."""
        pols = self.policy_names if policies is None else list(policies)
        idx = [self._policy_index(p) for p in pols]
        return sensitivity_table(
            self.launch, self.masks[idx], pols, assumption, grid, self.settings.loss_threshold
        )

    def value_of_information(self, factors: Sequence[str] | None = None) -> pd.DataFrame:
        """EVPI overall and per factor level (dollars); default factors: all on ``cell``."""
        fs = factor_names(self.tau) if factors is None else list(factors)
        return value_of_information(self.launch, self.masks, self.policy_names, fs)

    def compare(self, factor: str = "region", outcome: str | None = None) -> LevelComparison:
        """Compare the levels of ``factor`` (see :func:`bayesdecide.decide.compare_levels`)."""
        return compare_levels(self.launch, factor, outcome, self.effects, self.settings.ci_prob)

    # ---- summary ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the memo's ``summary.json``); money in dollars at launch scale."""
        eff = self.effects_table()
        pt = self.policy_table()
        gt = self.guardrail_table()
        be_policy = self.break_even_policy
        bt = self.break_even_table(policies=[be_policy])
        pop = self.settings.population
        out = {
            "effects": {
                str(k): {c: row[c] for c in ("mean", "sd", "ci_lower", "ci_upper")}
                for k, row in eff.iterrows()
            },
            "policies": {
                str(name): {
                    c: row[c]
                    for c in (
                        "expected_value",
                        "prob_positive",
                        "prob_large_loss",
                        "p10",
                        "p50",
                        "p90",
                        "prob_best",
                        "treated_share",
                        "expected_loss",
                        "passes_guardrails",
                    )
                }
                for name, row in pt.iterrows()
            },
            "recommended_policy": self.recommended_policy,
            "guardrails": [
                {c: row[c] for c in ("rule", "policy", "probability", "threshold", "passes")}
                for _, row in gt.iterrows()
            ],
            "break_even": {
                row["assumption"]: {
                    "median": row["median"],
                    "ci_lower": row["ci_lower"],
                    "ci_upper": row["ci_upper"],
                    "current": row["current"],
                    "threshold": row["threshold"],
                    "direction": row["direction"],
                    "policy": be_policy,
                }
                for _, row in bt.iterrows()
            },
            "optimal_cells": self.policy_cells(OPTIMAL) if self.settings.include_optimal else None,
            "settings": {
                "n_eligible": pop.n_eligible,
                "fixed_cost": pop.fixed_cost,
                "fixed_cost_scaling": pop.fixed_cost_scaling,
                "transport_multiplier": pop.transport_multiplier,
                "loss_threshold": self.settings.loss_threshold,
                "decision_threshold": self.settings.decision_threshold,
                "ci_prob": self.settings.ci_prob,
            },
        }
        return _json(out)

    def __repr__(self) -> str:
        n = flatten(self.tau, self.sample_dims, ("cell", "outcome")).shape
        return (
            f"Decision({n[0]} draws x {n[1]} cells x {n[2]} outcomes; policies "
            f"{self.policy_names}; recommended {self.recommended_policy!r})"
        )
