"""Build the :class:`~bayesdecide.run.summary.RunSummary` and the run's CSV tables from a
decision: one small function per part of the summary.

The recommendation is the decision's (:attr:`bayesdecide.decide.Decision.recommendation`); the
sensitivity grids are the one place the run chooses grid ranges.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.card import ModelCard
from bayesdecide.decide import Decision, factor_level_effects
from bayesdecide.decide.policies import OPTIMAL, OPTIMAL_WITHOUT_GROUP_RULES
from bayesdecide.run.summary import (
    SCHEMA_VERSION,
    ArmChoice,
    ArmsSummary,
    AssumptionInfo,
    BalanceRow,
    BreakEven,
    CardRef,
    ChecksSummary,
    Comparison,
    DataInfo,
    EffectSummary,
    ExperimentInfo,
    Fairness,
    GroupEffect,
    GroupRuleLevel,
    GuardrailResult,
    HierarchyInfo,
    LeftOutGroup,
    LevelEffect,
    LevelValue,
    Lineage,
    OptimalPolicy,
    OutcomeInfo,
    PolicySummary,
    RunInfo,
    RunSummary,
    Sensitivity,
    SensitivityPoint,
    Settings,
    ValueOfInformation,
)

Tables = dict[str, pd.DataFrame]


def _record(cls: type, row: Mapping[str, Any], **extra: Any) -> Any:
    """A record from a table row (the record's fields picked by name)."""
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    values = {k: v for k, v in {**row, **extra}.items() if k in names}
    return cls(**values)


def _label(value: Any) -> str | None:
    """A label cell of a table: ``None`` for a missing one (pandas reads ``None`` as NaN)."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _effects(decision: Decision, fit: Any, tables: Tables) -> dict[str, EffectSummary]:
    """Outcome -> all-customer effect (two arms); with several arms ``{}`` (see :func:`_arms`)."""
    from bayesdecide.data.effects import average_effect

    table = decision.effects_table()
    tables["effects"] = table
    if decision.arms is not None:
        return {}
    raw = average_effect(fit.effects, fit.cell_share)
    out = {}
    for name, row in table.iterrows():
        out[str(name)] = _record(
            EffectSummary,
            row,
            raw_estimate=float(raw["estimate"].sel(outcome=name)),
            raw_std_error=float(raw["std_error"].sel(outcome=name)),
        )
    return out


def _arm_effects(decision: Decision, fit: Any) -> dict[str, dict[str, EffectSummary]]:
    """Arm -> outcome -> all-customer effect against the control, with the raw estimate."""
    from bayesdecide.data.effects import average_effect

    table = decision.effects_table()
    raw = average_effect(fit.effects, fit.cell_share)
    out: dict[str, dict[str, EffectSummary]] = {}
    for (arm, name), row in table.iterrows():
        sel = {"treatment_arm": arm, "outcome": name}
        out.setdefault(str(arm), {})[str(name)] = _record(
            EffectSummary,
            row,
            raw_estimate=float(raw["estimate"].sel(sel)),
            raw_std_error=float(raw["std_error"].sel(sel)),
        )
    return out


def _choices(table: pd.DataFrame, unit: str) -> list[ArmChoice]:
    return [_record(ArmChoice, r, unit=str(r[unit])) for r in table.to_dict("records")]


def _arms(card: ModelCard, decision: Decision, fit: Any, tables: Tables) -> ArmsSummary | None:
    """The multi-arm part of the summary (``None`` with two arms) and its tables."""
    if decision.arms is None:
        return None
    cells = decision.best_arm_cells()
    overall = decision.best_arm_overall().assign(unit="all")
    levels = {f: decision.best_arm_levels(f) for f in card.factors}
    tables["best_arm_cells"] = cells
    tables["best_arm_levels"] = pd.concat(levels.values(), ignore_index=True)
    tables["best_arm_overall"] = overall
    spec = card.spec
    return ArmsSummary(
        control=spec.arm_labels[0],
        treatment_arms=list(spec.treatment_arms),
        shares=dict(card.arm_shares or {}),
        effects=_arm_effects(decision, fit),
        all_policies=decision.all_policies,
        overall=_choices(overall, "unit"),
        by_level={f: _choices(t, "level") for f, t in levels.items()},
        by_cell=_choices(cells, "cell"),
    )


def _policies(decision: Decision, tables: Tables) -> dict[str, PolicySummary]:
    table = decision.policy_table()
    tables["policies"] = table
    text = {p.name: p.description for p in decision.named_policies}
    text[OPTIMAL_WITHOUT_GROUP_RULES] = (
        "the Bayes-optimal targeting under the rules on totals only (the group rules left out), "
        "reported to show what the group rules change"
    )
    multi = decision.arms is not None
    return {
        str(p): _record(
            PolicySummary,
            row,
            label=decision.labels[p],
            description=text.get(p, ""),
            arm_shares=decision.arm_shares(str(p)) if multi else {},
        )
        for p, row in table.iterrows()
    }


def _guardrails(decision: Decision, tables: Tables) -> list[GuardrailResult]:
    table = decision.guardrail_table()
    tables["guardrails"] = table
    return [
        _record(
            GuardrailResult,
            row,
            factor=_label(row["factor"]),
            worst_level=_label(row["worst_level"]),
        )
        for row in table.to_dict("records")
    ]


def _group_rules(decision: Decision, tables: Tables) -> list[GroupRuleLevel]:
    table = decision.group_rule_table()
    tables["group_rules"] = table
    return [_record(GroupRuleLevel, row) for row in table.to_dict("records")]


def _fairness(card: ModelCard, decision: Decision, tables: Tables) -> Fairness:
    factors = list(card.fairness_factors)
    effects = [decision.group_effects(f) for f in factors]
    left = [decision.left_out(f) for f in factors]
    if factors:
        tables["group_effects"] = pd.concat(effects, ignore_index=True)
        tables["left_out"] = pd.concat(left, ignore_index=True)
    return Fairness(
        factors=factors,
        effects=[
            _record(GroupEffect, r, outcome=_label(r["outcome"]))
            for t in effects
            for r in t.to_dict("records")
        ],
        left_out=[
            _record(LeftOutGroup, r, rules=list(r["rules"]))
            for t in left
            for r in t.to_dict("records")
        ],
        group_rules_bind=decision.group_rules_bind,
    )


def describe_cells(cells: Sequence[str], tau: xr.DataArray, share: xr.DataArray) -> str:
    """One sentence on the cells a policy treats (listed when few, counted per level when many)."""
    if not cells:
        return "treats nobody"
    frac = float(share.sel(cell=list(cells)).sum())
    text = f"treats {len(cells)} of {tau.sizes['cell']} cells ({frac:.0%} of customers)"
    if len(cells) <= 10:
        return text + ": " + "; ".join(cells) + "."
    parts = []
    for f in [str(c) for c in tau.coords if tau.coords[c].dims == ("cell",) and c != "cell"]:
        labels = pd.Series(tau[f].values, index=[str(c) for c in tau["cell"].values])
        chosen = labels.loc[list(cells)].value_counts()
        total = labels.value_counts(sort=False)
        parts.append(
            f"{f.replace('_', ' ')} "
            + ", ".join(f"{lv} {int(chosen.get(lv, 0))}/{int(total[lv])}" for lv in total.index)
        )
    return text + "; treated cells per level: " + "; ".join(parts) + "."


def describe_assignment(
    assignment: Mapping[str, str], tau: xr.DataArray, share: xr.DataArray, arms: Sequence[str]
) -> str:
    """One sentence on the arms a multi-arm policy gives (cells and customers per arm, and per
    level of each factor the arm most of its treated cells get)."""
    if not assignment:
        return "treats nobody"
    n_cells = tau.sizes["cell"]
    parts = []
    for arm in arms:
        cells = [c for c, a in assignment.items() if a == arm]
        if cells:
            frac = float(share.sel(cell=cells).sum())
            parts.append(f"{arm} to {len(cells)} of {n_cells} cells ({frac:.0%} of customers)")
    untreated = n_cells - len(assignment)
    if untreated:
        rest = [str(c) for c in tau["cell"].values if str(c) not in assignment]
        frac = float(share.sel(cell=rest).sum())
        parts.append(f"none to {untreated} ({frac:.0%})")
    text = "gives " + ", ".join(parts)
    levels = []
    for f in [str(c) for c in tau.coords if tau.coords[c].dims == ("cell",) and c != "cell"]:
        labels = pd.Series(tau[f].values, index=[str(c) for c in tau["cell"].values])
        given = pd.Series({c: assignment.get(c, "none") for c in labels.index})
        counts = [
            f"{lv} " + "/".join(f"{a} {int((given[labels == lv] == a).sum())}" for a in arms)
            for lv in pd.unique(labels)
        ]
        levels.append(f"{f.replace('_', ' ')}: " + "; ".join(counts))
    return text + ". Cells per arm by " + " | ".join(levels) + "."


def _optimal(decision: Decision) -> OptimalPolicy | None:
    if not decision.settings.include_optimal:
        return None
    cells = decision.policy_cells(OPTIMAL)
    if decision.arms is None:
        return OptimalPolicy(cells, describe_cells(cells, decision.tau, decision.cell_share))
    assignment = decision.policy_assignment(OPTIMAL)
    text = describe_assignment(assignment, decision.tau, decision.cell_share, decision.arms)
    return OptimalPolicy(cells, text, assignment)


def _break_even(decision: Decision, tables: Tables) -> dict[str, BreakEven]:
    table = decision.break_even_table(policies=[decision.break_even_policy])
    tables["break_even"] = table
    return {row["assumption"]: _record(BreakEven, row) for row in table.to_dict("records")}


def sensitivity_grids(
    decision: Decision, break_even: Mapping[str, BreakEven]
) -> dict[str, np.ndarray]:
    """Grids for the sensitivity curves, wide enough to show the break-even when it is near:
    the transport multiplier, every named cost assumption (dollars per unit) and the fixed cost."""

    def median(name: str) -> float:
        return break_even[name].median if name in break_even else float("nan")

    settings = decision.settings
    tm, b = settings.population.transport_multiplier, median("transport_multiplier")
    lo = min(0.4, 0.8 * b) if np.isfinite(b) and b > 0 else 0.4
    hi = max(1.2, 1.2 * tm, 1.2 * b if np.isfinite(b) and b < 3 else 0)
    grids = {"transport_multiplier": np.round(np.linspace(max(lo, 0.0), hi, 17), 4)}
    for name, value in settings.value_model.assumption_values().items():
        b = median(name)
        top = 3 * value if value > 0 else 100.0
        if np.isfinite(b) and top < b < 30 * max(value, 1.0):
            top = 1.25 * b
        grids[name] = np.linspace(0.0, top, 13)
    grids["fixed_cost"] = np.linspace(0.0, max(3 * settings.population.fixed_cost, 1.0), 13)
    return grids


def _sensitivity(
    decision: Decision, break_even: Mapping[str, BreakEven], tables: Tables
) -> dict[str, Sensitivity]:
    policy = decision.break_even_policy
    out, frames = {}, []
    for name, grid in sensitivity_grids(decision, break_even).items():
        t = decision.sensitivity(name, grid, policies=[policy])
        frames.append(t)
        out[name] = Sensitivity(
            policy, [_record(SensitivityPoint, r) for r in t.to_dict("records")]
        )
    tables["sensitivity"] = pd.concat(frames, ignore_index=True)
    return out


def _heterogeneity(
    card: ModelCard, decision: Decision, fit: Any, tables: Tables
) -> dict[str, list[LevelEffect]]:
    out, frames = {}, []
    for f in card.factors:
        out[f] = []
        for arm in decision.arms or [None]:
            t = factor_level_effects(
                fit.effects,
                decision.tau,
                card.primary_outcome,
                f,
                decision.settings.ci_prob,
                fit.cell_share,
                arm=arm,
            )
            out[f] += [_record(LevelEffect, r, level=lv, arm=arm) for lv, r in t.iterrows()]
            t = t.reset_index().assign(factor=f)
            frames.append(t if arm is None else t.assign(arm=arm))
    tables["heterogeneity"] = pd.concat(frames, ignore_index=True)
    return out


def _comparison(card: ModelCard, decision: Decision, tables: Tables) -> Comparison | None:
    factor = card.compare_factor
    if factor is None:
        return None
    arm = decision.lead_arm
    lc = decision.compare(factor, arm=arm)
    rank1 = lc.ranks[1] if 1 in lc.ranks.columns else pd.Series(dtype=float)
    tables["region_comparison"] = lc.summary
    tables["region_pairwise"] = lc.pairwise
    return Comparison(
        factor=factor,
        quantity=lc.quantity,
        levels=[
            _record(
                LevelValue, r, level=str(r["level"]), prob_best=float(rank1.get(r["level"], np.nan))
            )
            for r in lc.summary.to_dict("records")
        ],
        pairwise={
            str(a): {str(b): float(v) for b, v in row.items()} for a, row in lc.pairwise.iterrows()
        },
        arm=arm,
    )


def _value_of_information(
    decision: Decision, tables: Tables, warn: list[str]
) -> ValueOfInformation | None:
    try:
        voi = decision.value_of_information()
    except Exception as exc:  # noqa: BLE001 - optional in the memo; the reason is recorded
        warn.append(f"value of information not computed: {type(exc).__name__}: {exc}")
        return None
    tables["value_of_information"] = voi
    top = voi[voi["factor"] == "all"].iloc[0]
    return ValueOfInformation(float(top["evpi_policies"]), float(top["evpi_targeting"]))


def checks_summary(decision: Decision, thresholds: Any, tables: Tables) -> ChecksSummary:
    """The decision's checks as a record (and the balance table)."""
    checks = decision.checks
    balance = checks.balance.reset_index() if checks is not None else pd.DataFrame()
    tables["balance"] = balance
    return ChecksSummary(
        ok=checks is None or checks.ok,
        results=list(checks.results) if checks is not None else [],
        balance=[_record(BalanceRow, r) for r in balance.to_dict("records")],
        thresholds=thresholds,
        loosened=list(checks.loosened) if checks is not None else [],
    )


def _settings(card: ModelCard, decision: Decision) -> Settings:
    s = decision.settings
    pop, vm = s.population, s.value_model
    return Settings(
        n_eligible=pop.n_eligible,
        fixed_cost=pop.fixed_cost,
        fixed_cost_scaling=pop.fixed_cost_scaling,
        min_cost_share=pop.min_cost_share,
        transport_multiplier=pop.transport_multiplier,
        transport_outcomes=list(vm.benefit_outcomes),
        loss_threshold=s.loss_threshold,
        decision_threshold=s.decision_threshold,
        ci_prob=s.ci_prob,
        weights=dict(vm.weights),
        assumptions={name: AssumptionInfo(o, vm.penalty(o)) for name, o in vm.assumptions.items()},
        mix=card.launch.mix,
        value_description=vm.description,
        value_unit=vm.unit,
    )


def _context(card: ModelCard, fit: Any) -> dict[str, Any]:
    exp = card.experiment
    inputs = getattr(fit, "inputs", None)
    return {
        "card": CardRef(
            card.name,
            card.version,
            card.title,
            card.info.decision,
            card.info.description,
            card.info.owner,
            card.sha256,
        ),
        "experiment": ExperimentInfo(
            exp.estimand,
            exp.horizon,
            exp.population,
            exp.randomization_unit,
            list(exp.covariates),
            exp.assignment_share,
        ),
        "outcomes": {o.name: OutcomeInfo(o.label, o.kind, o.unit, o.role) for o in card.outcomes},
        "primary_outcome": card.primary_outcome,
        "hierarchy": HierarchyInfo(
            list(card.factors),
            [list(i) for i in card.hierarchy.interactions],
            list(getattr(inputs, "relative", [])),
            list(getattr(inputs, "left_out", [])),
        ),
    }


def _priors(card: ModelCard, fit: Any) -> dict[str, str]:
    """Every prior the fit used, ``"name[outcome]" -> "Family(parameters)"`` in the outcome's
    natural units (``fit.priors``); the card's overrides when the fit does not list its priors."""
    table = getattr(fit, "priors", None)
    if isinstance(table, pd.DataFrame) and not table.empty:
        return {
            f"{prior}[{outcome}]": f"{row['family']}({row['parameters']})"
            for (prior, outcome), row in table.iterrows()
        }
    return {k: ", ".join(f"{a}={b}" for a, b in v.items()) for k, v in card.priors.items()}


def build_summary(
    card: ModelCard,
    fit: Any,
    decision: Decision,
    run: RunInfo,
    data: DataInfo,
    *,
    parent_run: str | None = None,
) -> tuple[RunSummary, Tables]:
    """The run's summary and its tables (``tables/*.csv``)."""
    tables: Tables = {}
    warn: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN intervals of unobserved levels
        effects = _effects(decision, fit, tables)
        heterogeneity = _heterogeneity(card, decision, fit, tables)
    break_even = _break_even(decision, tables)
    summary = RunSummary(
        schema_version=SCHEMA_VERSION,
        **_context(card, fit),
        settings=_settings(card, decision),
        effects=effects,
        policies=_policies(decision, tables),
        guardrails=_guardrails(decision, tables),
        group_rules=_group_rules(decision, tables),
        recommendation=decision.recommendation,
        optimal=_optimal(decision),
        break_even=break_even,
        sensitivity=_sensitivity(decision, break_even, tables),
        heterogeneity=heterogeneity,
        comparison=_comparison(card, decision, tables),
        fairness=_fairness(card, decision, tables),
        value_of_information=_value_of_information(decision, tables, warn),
        diagnostics=dict(fit.diagnostics),
        priors=_priors(card, fit),
        checks=checks_summary(decision, card.checks, tables),
        data=data,
        run=run,
        lineage=Lineage(
            run_id=run.id,
            card_sha256=card.sha256,
            spec_fingerprint=card.spec.fingerprint(),
            data_fingerprint=data.fingerprint,
            data_source=data.source,
            parent_run=parent_run,
        ),
        warnings=warn,
        arms=_arms(card, decision, fit, tables),
    )
    return summary, tables


__all__ = [
    "build_summary",
    "checks_summary",
    "describe_assignment",
    "describe_cells",
    "sensitivity_grids",
]
