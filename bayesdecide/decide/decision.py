"""`Decision`: a fit's posterior draws together with stated decision settings and checks.

It gathers every decision table for one set of settings (value model, launch population, policies
with their display labels, guardrails, thresholds) and the recommendation of
:mod:`bayesdecide.decide.recommend`, gated by the data and sampler checks. Nothing is refitted:
:meth:`Decision.with_settings` and :meth:`Decision.with_policies` answer new questions in
milliseconds. Build one from a model card with ``card.decide(fit)``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.data.effects import arm_effects, is_multi_arm
from bayesdecide.decide._draws import (
    ARM_DIM,
    DEFAULT_SAMPLE_DIMS,
    as_sample_dims,
    factor_levels,
    factor_names,
)
from bayesdecide.decide.arms import NONE, best_arm_cells, best_arm_levels, best_arm_overall
from bayesdecide.decide.breakeven import break_even_draws, break_even_table
from bayesdecide.decide.checks import CheckResult, Checks, CheckThresholds, evaluate_checks
from bayesdecide.decide.compare import LevelComparison, compare_levels
from bayesdecide.decide.evaluate import LaunchDraws, PolicyDraws, policy_table
from bayesdecide.decide.fairness import group_effects, left_out
from bayesdecide.decide.guardrails import (
    Guardrail,
    check_guardrails,
    group_rule_table,
    guardrail_table,
)
from bayesdecide.decide.information import value_of_information
from bayesdecide.decide.optimal import OptimalResult, optimal_policy
from bayesdecide.decide.policies import (
    DEFAULT_LABELS,
    OPTIMAL,
    OPTIMAL_WITHOUT_GROUP_RULES,
    TREAT_ALL,
    TREAT_NONE,
    Policy,
    policy_at_level,
    treat_all,
    treat_all_id,
    treat_none,
)
from bayesdecide.decide.population import MixSpec
from bayesdecide.decide.recommend import Recommendation, recommend
from bayesdecide.decide.sensitivity import sensitivity_table
from bayesdecide.decide.settings import DecisionSettings
from bayesdecide.errors import SpecError


def fit_checks(
    fit: Any,
    thresholds: CheckThresholds,
    assignment_share: float,
    arm_shares: Mapping[str, float] | None = None,
) -> Checks:
    """Checks a fit alone allows: the sample ratio from its EffectTable's arm counts and the
    sampler diagnostics. Covariate balance needs the cell statistics; without them it reads
    "not checked" (see :func:`bayesdecide.decide.checks.run_checks` for the full set). A
    multi-arm EffectTable is tested over every arm against ``arm_shares`` (default equal)."""
    effects = fit.effects
    counts = None
    if is_multi_arm(effects):
        control = str(effects.attrs.get("control_arm", "control"))
        counts = {control: float(effects["n_control"].sum())}
        for a in effects[ARM_DIM].values:
            counts[str(a)] = float(effects["n_treatment"].sel({ARM_DIM: a}).sum())
    checks = evaluate_checks(
        float(effects["n_control"].sum()),
        float(effects["n_treatment"].sum()),
        pd.DataFrame(columns=["mean_control", "mean_treatment", "smd"]),
        dict(fit.diagnostics),
        thresholds,
        assignment_share=assignment_share,
        arm_counts=counts,
        arm_shares=arm_shares,
    )
    unchecked = CheckResult(
        "Covariate balance",
        True,
        float("nan"),
        thresholds.max_abs_smd,
        "not checked: covariate balance needs the cell statistics (card.decide(fit, cells=...))",
    )
    results = tuple(unchecked if r.name == unchecked.name else r for r in checks.results)
    return Checks(results, checks.balance)


class Decision:
    """Decision tables for posterior cell effects under one set of decision settings.

    Parameters
    ----------
    tau:
        Cell effect draws, dims ``(*sample_dims, cell, outcome)``, per assigned customer (ITT),
        with factor label coords on ``cell``; with several treatment arms ``(*sample_dims, cell,
        treatment_arm, outcome)``, each arm against the shared control. Policies then give each
        cell one arm or none; treat-all is one policy per arm (``treat_all_<arm>``) and the
        best-arm tables (:mod:`bayesdecide.decide.arms`) say which arm is best where.
    cell_share:
        The experiment's mix over ``cell`` (sums to 1).
    settings:
        :class:`DecisionSettings` (stated: nothing is assumed about the experiment).
    effects:
        Optional EffectTable (``effect``, ``effect_cov``) for the raw-vs-pooled tables.
    checks:
        Data and sampler checks that gate the recommendation; ``None``: not gated.
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
        checks: Checks | None = None,
        sample_dims: str | Sequence[str] = DEFAULT_SAMPLE_DIMS,
    ) -> None:
        if not isinstance(settings, DecisionSettings):
            raise SpecError(
                f"settings must be DecisionSettings, got {type(settings).__name__}; build them "
                "with DecisionSettings.build(value_model=..., population=...) or card.decide(fit)"
            )
        self.tau = tau
        self.cell_share = cell_share
        self.settings = settings
        self.effects = effects
        self.checks = checks
        self.sample_dims = as_sample_dims(sample_dims)
        launch = self.launch  # validates tau, weights and mix now
        check_guardrails(settings.guardrails, launch.outcomes, factor_names(tau))
        self.masks  # noqa: B018 - validates the policies now

    @classmethod
    def from_fit(
        cls,
        fit: Any,
        settings: DecisionSettings | None = None,
        *,
        thresholds: CheckThresholds | None = None,
        assignment_share: float = 0.5,
        arm_shares: Mapping[str, float] | None = None,
        checks: Checks | None = None,
        **changes: Any,
    ) -> Decision:
        """From a fit: ``fit.tau``, ``fit.cell_share``, ``fit.effects`` and ``fit.diagnostics``.

        ``settings`` (or, without them, ``changes`` holding at least ``value_model`` and
        ``population``) must be stated. ``checks`` default to :func:`fit_checks` with
        ``thresholds`` (default :class:`CheckThresholds`), so failed diagnostics block the
        recommendation; ``arm_shares`` are a multi-arm design's shares per arm (default equal).
        """
        try:
            tau, cell_share = fit.tau, fit.cell_share
        except AttributeError as err:
            raise SpecError("from_fit needs fit.tau and fit.cell_share (a Fit)") from err
        if settings is None:
            settings = DecisionSettings.build(**changes)
        elif changes:
            settings = settings.with_changes(**changes)
        if checks is None:
            checks = fit_checks(fit, thresholds or CheckThresholds(), assignment_share, arm_shares)
        return cls(tau, cell_share, settings, effects=fit.effects, checks=checks)

    def _replace(self, settings: DecisionSettings) -> Decision:
        return Decision(
            self.tau,
            self.cell_share,
            settings,
            effects=self.effects,
            checks=self.checks,
            sample_dims=self.sample_dims,
        )

    def with_settings(self, **changes: Any) -> Decision:
        """A new Decision with changed settings, no refit (keys: see
        :meth:`DecisionSettings.with_changes`)."""
        return self._replace(self.settings.with_changes(**changes))

    def with_policies(self, *policies: Policy | Mapping[str, Any]) -> Decision:
        """A new Decision with ``policies`` added to the others (same name: replaced)."""
        return self._replace(self.settings.with_policies(*policies))

    def for_new_level(
        self,
        level: Mapping[str, str],
        fit: Any,
        *,
        n_eligible: float,
        fixed_cost: float,
        mix: MixSpec = None,
        seed: int | None = None,
        **changes: Any,
    ) -> Decision:
        """The decision of launching in a level with no data yet (a new region, a new product).

        The level's cell effects are :meth:`bayesdecide.Fit.predict_new` of ``fit`` (the fit
        this decision was built from): one cell per combination of ``level`` with the fitted
        levels of the other factors, a new level's effect drawn from the fitted spread of its
        factor on every posterior draw. The launch is a new population: ``n_eligible`` customers
        of the level and a ``fixed_cost`` in dollars (both must be stated: the decision's own
        are for the fitted levels), mixed over the cells by ``mix`` (a
        :class:`~bayesdecide.decide.Population` mix; default the experiment's mix over the other
        factors, ``predict_new``'s ``cell_share``). The value model, transport multiplier,
        fixed-cost rule, guardrails, thresholds and checks (the sampler diagnostics gate this
        decision too) are kept; the policies are restated for the level
        (:func:`~bayesdecide.decide.policies.policy_at_level`: a rule naming other regions treats
        nobody there). ``changes`` as in :meth:`with_settings`; ``seed`` seeds the new level's
        draws (default: the fit's seed).

        Its tables read as for any launch: ``policy_table()`` (dollars for the level's launch),
        ``effects_table()`` (the mix-weighted effect per eligible customer of the level, the
        outcomes' units), ``break_even_table()``, ``guardrail_table()``::

            new = decision.for_new_level({"region": "Middle East"}, fit,
                                         n_eligible=200_000, fixed_cost=400_000)
            new.policy_table()
        """
        if not isinstance(level, Mapping) or not level:
            raise SpecError(
                "level must be a mapping {factor: label}, e.g. {'region': 'Middle East'}"
            )
        self._check_fitted_by(fit)
        tau = fit.predict_new(dict(level), seed=seed)
        known = {f: factor_levels(self.tau, f) for f in level if f in factor_names(self.tau)}
        cells = [str(c) for c in tau["cell"].values]
        settings = replace(
            self.settings,
            population=replace(
                self.settings.population, n_eligible=n_eligible, fixed_cost=fixed_cost, mix=mix
            ),
            policies=tuple(policy_at_level(p, level, cells, known) for p in self.settings.policies),
        ).with_changes(**changes)
        return Decision(
            tau,
            tau["cell_share"],
            settings,
            checks=self.checks,
            sample_dims=self.sample_dims,
        )

    def _check_fitted_by(self, fit: Any) -> None:
        """``fit.tau`` must be this decision's draws (the same fit, not another hierarchy's)."""
        try:
            tau = fit.tau
            fit.predict_new  # noqa: B018 - a Fit, not just draws
        except AttributeError as err:
            raise SpecError(
                f"fit must be the Fit this decision was built from, got {type(fit).__name__}"
            ) from err
        mine = self.tau
        same = (
            set(tau.dims) == set(mine.dims)
            and all(tau.sizes[d] == mine.sizes[d] for d in mine.dims)
            and list(map(str, tau["cell"].values)) == list(map(str, mine["cell"].values))
            and np.array_equal(tau.transpose(*mine.dims).values, mine.values)
        )
        if not same:
            raise SpecError(
                "fit.tau is not this decision's draws: pass the fit the decision was built from "
                "(card.decide(fit) or Decision.from_fit(fit, settings))"
            )

    # ---- building blocks -------------------------------------------------------------------

    @cached_property
    def launch(self) -> LaunchDraws:
        s = self.settings
        return LaunchDraws(self.tau, self.cell_share, s.value_model, s.population, self.sample_dims)

    @property
    def arms(self) -> list[str] | None:
        """The treatment arms (multi-arm draws), ``None`` for a two-arm experiment."""
        return self.launch.arms

    @property
    def all_policies(self) -> dict[str, str]:
        """Treatment arm -> id of the policy giving it to everyone (``{"treatment":
        "treat_all"}`` with two arms)."""
        if self.arms is None:
            return {"treatment": TREAT_ALL}
        return {a: treat_all_id(a) for a in self.arms}

    @cached_property
    def named_policies(self) -> list[Policy]:
        """treat_none, treat_all (one per treatment arm with several arms; unless the settings
        give their own) and the settings' policies."""
        names = [p.name for p in self.settings.policies]
        everyone = [treat_all()] if self.arms is None else [treat_all(arm=a) for a in self.arms]
        base = [p for p in (treat_none(), *everyone) if p.name not in names]
        return [*base, *self.settings.policies]

    @cached_property
    def optimal(self) -> OptimalResult:
        """The Bayes-optimal targeting under the guardrails (see :mod:`.optimal`)."""
        named = self.launch.masks(self.named_policies)
        return optimal_policy(self.launch, self.settings.guardrails, candidates=named)

    @property
    def group_rules(self) -> list[Guardrail]:
        """The rules held for every level of a factor (``for_each``, ``fairness_floor``)."""
        return [g for g in self.settings.guardrails if g.group_factor is not None]

    @property
    def total_rules(self) -> list[Guardrail]:
        """The rules on a policy's totals (every rule that is not a group rule)."""
        return [g for g in self.settings.guardrails if g.group_factor is None]

    @cached_property
    def optimal_without_group_rules(self) -> OptimalResult:
        """The Bayes-optimal targeting under the rules on totals only (the group rules left
        out), searched from the same candidates plus :attr:`optimal`, so its expected value is
        never below the optimum's. Equal to :attr:`optimal` without group rules."""
        if not self.group_rules:
            return self.optimal
        named = self.launch.masks(self.named_policies)
        cands = np.vstack([named, self.optimal.mask[None]])
        return optimal_policy(self.launch, self.total_rules, candidates=cands)

    @property
    def group_rules_bind(self) -> bool:
        """Whether the group rules change the optimal targeting: then the optimum without them
        is evaluated as policy ``optimal_without_group_rules`` beside ``optimal``."""
        if not (self.settings.include_optimal and self.group_rules):
            return False
        free, opt = self.optimal_without_group_rules, self.optimal
        return free.expected_value > opt.expected_value + 1e-9 and not np.array_equal(
            free.mask, opt.mask
        )

    @cached_property
    def masks(self) -> np.ndarray:
        """(P, C) 0/1 masks of :attr:`policy_names`."""
        named = self.launch.masks(self.named_policies)
        if not self.settings.include_optimal:
            return named
        searched = [self.optimal.mask]
        if self.group_rules_bind:
            searched.append(self.optimal_without_group_rules.mask)
        return np.vstack([named, *searched])

    @property
    def policy_names(self) -> list[str]:
        """Policy ids in table order: the named policies, then ``optimal`` (when
        ``include_optimal``) and ``optimal_without_group_rules`` (when group rules bind)."""
        names = [p.name for p in self.named_policies]
        if not self.settings.include_optimal:
            return names
        names.append(OPTIMAL)
        if self.group_rules_bind:
            names.append(OPTIMAL_WITHOUT_GROUP_RULES)
        return names

    @property
    def labels(self) -> dict[str, str]:
        """Policy id -> display name."""
        labels = {p.name: p.label for p in self.named_policies}
        return {n: labels.get(n, DEFAULT_LABELS.get(n, n)) for n in self.policy_names}

    @cached_property
    def policy_draws(self) -> PolicyDraws:
        return self.launch.evaluate(self.masks, self.policy_names)

    @property
    def policy_values(self) -> xr.DataArray:
        """Launch value draws in dollars, dims ``(*sample_dims, policy)``."""
        return self.policy_draws.value_da()

    def policy_cells(self, policy: str) -> list[str]:
        """Cells a policy treats (with any arm)."""
        return list(self.policy_assignment(policy))

    def policy_assignment(self, policy: str) -> dict[str, str]:
        """Cell -> the treatment arm a policy gives it, for the cells it treats (``treatment``
        with two arms)."""
        z = self.launch.assignments(self.masks[self._policy_index(policy)])[0]
        arms = self.arms or ["treatment"]
        return {str(c): arms[a] for c, a in zip(self.launch.cells, z, strict=True) if a >= 0}

    def arm_shares(self, policy: str) -> dict[str, float]:
        """Treatment arm -> share of eligible customers at launch a policy gives it."""
        z = self.launch.assignments(self.masks[self._policy_index(policy)])[0]
        mix = self.launch.cell_mix
        return {a: float(mix[z == i].sum()) for i, a in enumerate(self.arms or ["treatment"])}

    def _policy_index(self, policy: str) -> int:
        if policy not in self.policy_names:
            raise SpecError(f"unknown policy {policy!r}; policies are {self.policy_names}")
        return self.policy_names.index(policy)

    def _indices(self, policies: Sequence[str] | None) -> tuple[list[str], list[int]]:
        pols = self.policy_names if policies is None else list(policies)
        return pols, [self._policy_index(p) for p in pols]

    # ---- tables ----------------------------------------------------------------------------

    @cached_property
    def _policy_table(self) -> pd.DataFrame:
        d = self.policy_draws
        t = policy_table(d.value, d.names, d.treated_share, self.settings.loss_threshold)
        t["passes_guardrails"] = self._guardrail_table.groupby("policy", sort=False)["passes"].all()
        t["passes_guardrails"] = t["passes_guardrails"].fillna(True).astype(bool)
        return t

    def policy_table(self) -> pd.DataFrame:
        """Per policy id: expected_value, prob_positive, prob_large_loss, p10, p50, p90,
        expected_loss, prob_best (dollars at launch scale), treated_share, passes_guardrails."""
        return self._policy_table.copy()

    @cached_property
    def _guardrail_table(self) -> pd.DataFrame:
        return guardrail_table(self.settings.guardrails, self.policy_draws)

    def guardrail_table(self) -> pd.DataFrame:
        """Tidy: rule, description, policy, probability, threshold, comparison, passes."""
        return self._guardrail_table.copy()

    @cached_property
    def _group_rule_table(self) -> pd.DataFrame:
        return group_rule_table(self.group_rules, self.policy_draws, self.settings.ci_prob)

    def group_rule_table(self) -> pd.DataFrame:
        """Levels x probabilities of the group rules, one row per rule x policy x level (see
        :func:`bayesdecide.decide.guardrails.group_rule_table`); ``worst`` marks each policy's
        worst level."""
        return self._group_rule_table.copy()

    def group_effects(
        self, factor: str, outcomes: Sequence[str | None] | None = None
    ) -> pd.DataFrame:
        """Effect per eligible customer of each level of ``factor`` under every policy, and the
        share of the level each treats (:func:`bayesdecide.decide.fairness.group_effects`).
        ``outcomes`` default: net value per customer (``None``) and every outcome a group rule
        bounds."""
        if outcomes is None:
            bounded = [getattr(g, "outcome", None) for g in self.group_rules]
            outcomes = list(dict.fromkeys([None, *bounded]))
        return group_effects(
            self.launch, self.masks, self.policy_names, factor, outcomes, self.settings.ci_prob
        )

    def left_out(self, factor: str) -> pd.DataFrame:
        """The levels of ``factor`` each policy treats nobody in, and why: a named policy's rule,
        or for the optimal targeting the value or the rule that excludes them
        (:func:`bayesdecide.decide.fairness.left_out`)."""
        named = {p.name: p for p in self.named_policies}
        rules = {OPTIMAL: self.settings.guardrails, OPTIMAL_WITHOUT_GROUP_RULES: self.total_rules}
        return left_out(self.launch, self.masks, self.policy_names, factor, named, rules)

    @cached_property
    def recommendation(self) -> Recommendation:
        """The rule's recommendation (:mod:`bayesdecide.decide.recommend`), checks included."""
        return recommend(self._policy_table, self._guardrail_table, self.checks, self.labels)

    @property
    def recommended_policy(self) -> str | None:
        """The policy id to launch; ``None`` when the rule says do not launch or the checks
        block a recommendation (see :attr:`recommendation` for why)."""
        return self.recommendation.policy

    def effects_table(self) -> pd.DataFrame:
        """All-customer effect per outcome at the experiment's mix (outcome units per assigned
        customer): mean, sd, lower, upper (equal-tailed ``ci_prob``), prob_positive. With several
        treatment arms, one row per arm and outcome (index ``treatment_arm``, ``outcome``), each
        arm against the control as if everyone got it."""
        from bayesdecide.decide._draws import summarize

        launch = self.launch
        x = launch.x.reshape(launch.n_samples, len(launch.cells), launch.n_arms, -1)
        avg = np.einsum("scak,c->sak", x, launch.experiment_share)
        avg = avg.reshape(launch.n_samples, -1)  # (S, A * K): arm-major
        s = summarize(avg, self.settings.ci_prob)
        table = {k: s[k] for k in ("mean", "sd", "lower", "upper")}
        table["prob_positive"] = (avg > 0).mean(axis=0)
        if self.arms is None:
            index = pd.Index(launch.outcomes, name="outcome")
        else:
            index = pd.MultiIndex.from_product(
                [self.arms, launch.outcomes], names=[ARM_DIM, "outcome"]
            )
        return pd.DataFrame(table, index=index)

    @property
    def lead_arm(self) -> str | None:
        """The treatment arm whose treat-all policy has the highest expected launch value (the
        arm the per-level comparison reports by default); ``None`` with two arms."""
        if self.arms is None:
            return None
        ev = self._policy_table["expected_value"]
        return max(self.arms, key=lambda a: ev[self.all_policies[a]])

    def best_arm_cells(self) -> pd.DataFrame:
        """P(best) of none and of every arm in every cell, per customer (dollars), with the arm
        the optimal targeting gives (``optimal``); see :mod:`bayesdecide.decide.arms`."""
        t = best_arm_cells(self.launch, self.settings.ci_prob)
        if self.settings.include_optimal:
            chosen = {c: NONE for c in t["cell"].unique()}
            chosen.update(self.policy_assignment(OPTIMAL))
            t["optimal"] = [chosen[c] == j for c, j in zip(t["cell"], t["choice"], strict=True)]
        return t

    def best_arm_levels(self, factor: str) -> pd.DataFrame:
        """P(best) of none and of every arm in every level of ``factor`` when everyone in the
        level gets it (:func:`bayesdecide.decide.arms.best_arm_levels`)."""
        return best_arm_levels(self.launch, factor, self.settings.ci_prob)

    def best_arm_overall(self) -> pd.DataFrame:
        """P(best) among none and each arm to everyone, at launch scale (dollars; with the
        policy ids in ``policy``; :func:`bayesdecide.decide.arms.best_arm_overall`)."""
        t = best_arm_overall(self.launch, self.settings.ci_prob)
        ids = {NONE: TREAT_NONE, **self.all_policies}
        return t.assign(policy=[ids[c] for c in t["choice"]])

    @property
    def break_even_assumptions(self) -> list[str]:
        if self.settings.break_even_assumptions is not None:
            return list(self.settings.break_even_assumptions)
        named = list(self.settings.value_model.assumptions)
        return ["transport_multiplier", *named, "fixed_cost", "n_eligible"]

    @property
    def break_even_policy(self) -> str:
        """Policy the break-even values refer to: the rule's choice (the provisional one when
        the checks block), or treat_all (with several arms: the treat-all policy of
        :attr:`lead_arm`) when the rule says do not launch."""
        if self.recommendation.rule_policy:
            return self.recommendation.rule_policy
        return TREAT_ALL if self.arms is None else self.all_policies[str(self.lead_arm)]

    def break_even_table(
        self, assumptions: Sequence[str] | None = None, policies: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Break-even summary (see :func:`bayesdecide.decide.breakeven.break_even_table`)."""
        pols, idx = self._indices(policies)
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
        pols, idx = self._indices(policies)
        return sensitivity_table(
            self.launch, self.masks[idx], pols, assumption, grid, self.settings.loss_threshold
        )

    def value_of_information(self, factors: Sequence[str] | None = None) -> pd.DataFrame:
        """EVPI overall and per factor level (dollars); default factors: all on ``cell``."""
        fs = factor_names(self.tau) if factors is None else list(factors)
        return value_of_information(self.launch, self.masks, self.policy_names, fs)

    def compare(
        self, factor: str, outcome: str | None = None, arm: str | None = None
    ) -> LevelComparison:
        """Compare the levels of ``factor`` (see :func:`bayesdecide.decide.compare_levels`); with
        several treatment arms, for ``arm`` against the control (default :attr:`lead_arm`)."""
        if self.arms is None:
            return compare_levels(self.launch, factor, outcome, self.effects, self.settings.ci_prob)
        arm = self.lead_arm if arm is None else arm
        assert arm is not None
        effects = None if self.effects is None else arm_effects(self.effects, arm)
        return compare_levels(
            self.launch.arm_view(arm), factor, outcome, effects, self.settings.ci_prob
        )

    # ---- plots (thin wrappers over bayesdecide.report.plots) --------------------------------

    def plot_policy_values(self) -> Any:
        """Expected launch value per policy with its 10th-90th percentile; returns the axes."""
        from bayesdecide.report import plots

        table = self.policy_table().rename(index=self.labels)
        rec = self.recommendation.policy
        return plots.policy_values(table, recommended=self.labels.get(rec or "")).axes[0]

    def plot_value_posterior(self, policy: str | None = None) -> Any:
        """Launch value posterior of ``policy`` (default :attr:`break_even_policy`); the axes."""
        from bayesdecide.report import plots

        pol = self.break_even_policy if policy is None else policy
        self._policy_index(pol)
        values = self.policy_values.sel(policy=pol)
        fig = plots.value_posterior(
            values, policy=self.labels[pol], large_loss=self.settings.loss_threshold
        )
        return fig.axes[0]

    def plot_guardrails(self) -> Any:
        """Rule x policy grid of posterior probabilities with pass/fail; returns the axes."""
        from bayesdecide.report import plots

        rows = self.guardrail_table().rename(columns={"threshold": "required"})
        rows["policy"] = rows["policy"].map(self.labels)
        return plots.guardrail_probabilities(rows).axes[0]

    def plot_comparison(self, factor: str) -> Any:
        """Heatmap of P(row level > column level) on net value per customer; returns the axes."""
        from bayesdecide.report import plots

        return plots.region_comparison(self.compare(factor).pairwise).axes[0]

    # ---- display ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        rec = self.recommendation
        n = self.launch.n_samples
        what = rec.decision + (f" ({self.labels[rec.policy]})" if rec.policy else "")
        arms = "" if self.arms is None else f" x {len(self.arms)} arms"
        return (
            f"Decision({n} draws x {len(self.launch.cells)} cells{arms} x "
            f"{len(self.launch.outcomes)} outcomes; {len(self.policy_names)} policies; {what})"
        )

    def _repr_html_(self) -> str:
        rec = self.recommendation
        table = self.policy_table()[["expected_value", "prob_positive", "passes_guardrails"]]
        table = table.rename(index=self.labels)
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in rec.reasons)
        return (
            f"<p><strong>{html.escape(repr(self))}</strong></p><ul>{reasons}</ul>"
            + table.to_html(float_format=lambda x: f"{x:,.2f}")
        )


__all__ = ["Decision", "fit_checks"]
