"""Checks across the keys of a card, one small function per table, run when the card loads.

The schema (:mod:`bayesdecide.card.schema`) checks each key's type; these check what the keys say
together: names that must refer to an outcome, a factor, a documented column or a declared level;
numbers that must be finite and in range. Everything a run would find out from the card alone is
found here, before any data is read or any sampling starts. Each error names the key and the fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from bayesdecide.card.fit_settings import check_fit_settings
from bayesdecide.card.schema import suggest
from bayesdecide.decide._draws import ARM_DIM
from bayesdecide.decide.breakeven import assumption_names
from bayesdecide.decide.guardrails import guardrail_keys
from bayesdecide.decide.policies import OPTIMAL, OPTIMAL_WITHOUT_GROUP_RULES, policy_id
from bayesdecide.errors import CardError, SpecError

if TYPE_CHECKING:
    from bayesdecide.card.model_card import ModelCard

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _dups(names: Sequence[Any]) -> list[Any]:
    return sorted({n for n in names if list(names).count(n) > 1}, key=str)


def _name(card: ModelCard, src: str) -> None:
    name = card.info.name
    if not NAME_PATTERN.fullmatch(name):
        raise CardError(
            f"{src}: 'card.name' is {name!r}; it names the run folder, so use letters, digits, "
            "'_', '-' and '.' only, starting with a letter or digit (no '/' or '..'), e.g. "
            "name = 'retention_outreach'."
        )


def _sources(card: ModelCard, src: str) -> None:
    data = card.data
    if data.simulator is not None or data.path is not None or data.args:
        raise CardError(
            f"{src}: [data] lists [[data.sources]]; give each experiment's simulator, path or "
            "summary in its [[data.sources]] table and remove data.simulator/path/args."
        )
    labels = [s.label for s in data.sources]
    if _dups(labels):
        raise CardError(f"{src}: [[data.sources]] label(s) {_dups(labels)} used twice.")
    for i, s in enumerate(data.sources):
        where = f"'data.sources[{i}]'"
        if not NAME_PATTERN.fullmatch(s.label):
            raise CardError(
                f"{src}: {where}.label is {s.label!r}; use letters, digits, '_', '-' and '.' "
                "(it is a level of the experiment factor), e.g. label = '2025-wave-1'."
            )
        given = [k for k in ("simulator", "path", "summary") if getattr(s, k) is not None]
        if len(given) != 1:
            raise CardError(
                f"{src}: {where} ({s.label!r}) needs exactly one of simulator, path (rows) or "
                f"summary (published estimates); it gives {given or 'none'}."
            )
        if s.args and s.simulator is None:
            raise CardError(f"{src}: {where}.args only applies to a simulator; remove it.")
    if not any(s.kind == "rows" for s in data.sources):
        raise CardError(
            f"{src}: [[data.sources]] has no source with rows (simulator or path); published "
            "estimates join experiments whose rows the card reads."
        )
    factor = data.experiment_factor
    if factor not in card.factors:
        raise CardError(
            f"{src}: 'data.experiment_factor' is {factor!r}, which is not in hierarchy.factors "
            f"{list(card.factors)}; add it (e.g. factors = [{factor!r}, ...]) so the model pools "
            "the experiments."
        )
    _levels(card, factor, labels, "[[data.sources]] labels", src)
    target = card.launch.experiment
    if target is not None and target not in labels:
        raise CardError(
            f"{src}: 'launch.experiment' is {target!r}, not a [[data.sources]] label.{suggest(target, labels)} "
            f"Use one of {labels}."
        )


def _data(card: ModelCard, src: str) -> None:
    data = card.data
    if data.sources:
        _sources(card, src)
        return
    if card.launch.experiment is not None:
        raise CardError(
            f"{src}: 'launch.experiment' applies to cards that pool [[data.sources]]; remove it."
        )
    if (data.simulator is None) == (data.path is None):
        raise CardError(
            f"{src}: [data] needs exactly one of 'data.simulator' (with optional [data.args]) "
            "or 'data.path' (a Parquet/CSV file read by DuckDB)."
        )
    if data.args and data.simulator is None:
        raise CardError(f"{src}: 'data.args' only applies to a simulator; remove it.")


def _experiment(card: ModelCard, src: str) -> None:
    arms = card.experiment.arms
    labels = [str(a) for a in arms]
    if len(arms) < 2 or _dups(labels):
        raise CardError(
            f"{src}: key 'experiment.arms' is {list(arms)!r}; give two or more distinct values, "
            "control first: [control, treatment] (e.g. arms = [0, 1]) or [control, arm_1, ..., "
            "arm_k] (e.g. arms = ['control', 'outreach', 'email'])."
        )
    if len(arms) > 2 and card.pooled:
        raise CardError(
            f"{src}: this card pools [[data.sources]] and has {len(arms) - 1} treatment arms; "
            "pooling experiments with several treatment arms is not supported: give one data "
            "source, or two arms [control, treatment]."
        )
    shares = card.experiment.arm_shares
    if shares and len(arms) == 2:
        raise CardError(
            f"{src}: 'experiment.arm_shares' is for multi-arm cards; a two-arm card gives "
            "assignment_share (the treatment share) instead."
        )
    if shares and (
        len(shares) != len(arms)
        or not all(math.isfinite(x) and x > 0 for x in shares)
        or abs(sum(shares) - 1) > 1e-6
    ):
        raise CardError(
            f"{src}: key 'experiment.arm_shares' is {list(shares)!r}; give one positive share per "
            f"arm of {labels}, in that order, summing to 1 (e.g. {[round(1 / len(arms), 4)] * len(arms)})."
        )
    if len(arms) > 2 and "none" in labels:
        raise CardError(
            f"{src}: an arm of 'experiment.arms' is named 'none', which the memo uses for the "
            "status quo; rename that arm."
        )
    share = card.experiment.assignment_share
    if not 0 < share < 1:
        raise CardError(
            f"{src}: key 'experiment.assignment_share' is {share}; it must lie strictly between "
            "0 and 1 (the designed treatment share, e.g. 0.5)."
        )


def _outcomes(card: ModelCard, src: str) -> None:
    names = card.outcome_names
    if not names:
        raise CardError(f"{src}: 'outcomes' is empty; add at least one [[outcomes]] table.")
    if _dups(names):
        raise CardError(f"{src}: outcome(s) {_dups(names)} listed twice in [[outcomes]].")
    primaries = [o.name for o in card.outcomes if o.role == "primary"]
    if len(primaries) > 1:
        raise CardError(f"{src}: outcomes {primaries} all have role = 'primary'; mark exactly one.")


def _features(card: ModelCard, src: str) -> None:
    exp = card.experiment
    used = [
        exp.treatment,
        *card.outcome_names,
        *exp.covariates,
        *([exp.unit_id] if exp.unit_id else []),
    ]
    undocumented = [c for c in used if c not in card.features]
    if undocumented:
        raise CardError(
            f"{src}: column(s) {undocumented} are used but missing from the feature dictionary; "
            f"add a [features.{undocumented[0]}] table with description and role."
        )


def _hierarchy(card: ModelCard, src: str) -> None:
    factors = list(card.factors)
    if not factors:
        raise CardError(f"{src}: 'hierarchy.factors' is empty; list the grouping columns.")
    if _dups(factors):
        raise CardError(f"{src}: 'hierarchy.factors' lists {_dups(factors)} twice.")
    groups = [c for c, f in card.features.items() if f.role == "group"]
    for i, f in enumerate(factors):
        if f not in card.features:
            raise CardError(
                f"{src}: 'hierarchy.factors[{i}]' is {f!r}, which is not a column of the feature "
                f"dictionary.{suggest(f, groups or list(card.features))} Fix the factor, or add "
                f"a [features.{f}] table with description and role = 'group'."
            )
    allowed = [*factors, ARM_DIM] if card.multi_arm else factors
    if ARM_DIM in factors:
        raise CardError(
            f"{src}: 'hierarchy.factors' lists {ARM_DIM!r}, the name of the arm dim; rename the "
            "column (a multi-arm card pools over its arms without listing them)."
        )
    for i, inter in enumerate(card.hierarchy.interactions):
        if len(inter) < 2 or any(f not in allowed for f in inter) or _dups(list(inter)):
            arm = f" (or {ARM_DIM!r}, for an arm x factor term)" if card.multi_arm else ""
            raise CardError(
                f"{src}: 'hierarchy.interactions[{i}]' is {list(inter)!r}; give a list of two or "
                f"more distinct factors from hierarchy.factors = {factors}{arm}."
            )

    if card.hierarchy.cross_validate and card.multi_arm:
        raise CardError(
            f"{src}: 'hierarchy.cross_validate' covers two-arm cards; remove it, or run "
            "`bayesdecide validate` on a two-arm card."
        )
    for i, f in enumerate(card.hierarchy.cross_validate):
        if f not in factors:
            raise CardError(
                f"{src}: 'hierarchy.cross_validate[{i}]' is {f!r}; cross-validation holds out "
                f"levels of a pooled factor: one of hierarchy.factors = {factors}."
            )


def _priors(card: ModelCard, src: str) -> None:
    """Prior names are the model's (``mu``, ``sigma_<factor>``, ``sigma_<f1>_x_<f2>``,
    ``sigma_cell``); each is one table (every outcome) or one table per outcome; families and
    parameters are checked as :class:`bayesdecide.model.priors.Prior` checks them."""
    from bayesdecide.errors import SpecError
    from bayesdecide.model.priors import Prior
    from bayesdecide.model.terms import interaction_name

    names = ["mu", *(f"sigma_{f}" for f in card.factors)]
    names += [f"sigma_{interaction_name(m)}" for m in card.hierarchy.interactions]
    names.append("sigma_cell")
    outcomes = card.outcome_names
    example = 'e.g. [priors.{}] family = "HalfNormal", sigma = 5.0 (natural units)'
    for name, prior in card.priors.items():
        if name not in names:
            raise CardError(
                f"{src}: 'priors.{name}' is not a prior of this model.{suggest(name, names)} "
                f"Priors: {names}."
            )
        if not isinstance(prior, dict):
            raise CardError(f"{src}: 'priors.{name}' must be a table; {example.format(name)}.")
        tables = {"": prior} if "family" in prior else prior
        for outcome, table in tables.items():
            where = f"priors.{name}" + (f".{outcome}" if outcome else "")
            if outcome and outcome not in outcomes:
                raise CardError(
                    f"{src}: '{where}' names no outcome.{suggest(outcome, outcomes)} Outcomes: "
                    f"{outcomes}."
                )
            if not isinstance(table, dict) or "family" not in table:
                raise CardError(
                    f"{src}: '{where}' must be a table with a family and its parameters; "
                    f"{example.format(name)}."
                )
            try:
                Prior.from_dict(table)
            except SpecError as err:
                raise CardError(f"{src}: '{where}': {err}") from None


def _value(card: ModelCard, src: str) -> None:
    outcomes = card.outcome_names
    value = card.value
    for o, w in value.weights.items():
        if o not in outcomes:
            raise CardError(
                f"{src}: 'value.weights.{o}' names no outcome.{suggest(o, outcomes)} Weights must "
                f"be keyed by outcomes {outcomes}."
            )
        if not math.isfinite(w):
            raise CardError(f"{src}: 'value.weights.{o}' is {w}; give a finite number of dollars.")
    for name, o in value.assumptions.items():
        if o not in value.weights:
            raise CardError(
                f"{src}: 'value.assumptions.{name}' must name an outcome with a weight in "
                f"[value.weights] ({list(value.weights)}), not {o!r}.{suggest(o, value.weights)}"
            )
    for o in value.transport_outcomes:
        if o not in value.weights:
            raise CardError(
                f"{src}: 'value.transport_outcomes' lists {o!r}, which has no weight in "
                f"[value.weights] ({list(value.weights)}).{suggest(o, value.weights)}"
            )


def _levels(card: ModelCard, factor: str, levels: Sequence[Any], where: str, src: str) -> None:
    """Levels named in the card must be among the feature's declared ``levels`` (when declared)."""
    declared = [str(v) for v in card.features[factor].levels] if factor in card.features else []
    for level in levels:
        if declared and str(level) not in declared:
            raise CardError(
                f"{src}: {where} names level {level!r} of {factor!r}, which is not among its "
                f"declared levels {declared} ([features.{factor}].levels).{suggest(level, declared)}"
            )


def _factor(card: ModelCard, factor: str, where: str, src: str) -> None:
    if factor not in card.factors:
        raise CardError(
            f"{src}: {where} is {factor!r}, not a hierarchy factor.{suggest(factor, card.factors)} "
            f"Use one of {list(card.factors)}."
        )


def _launch(card: ModelCard, src: str) -> None:
    launch = card.launch
    if launch.eligible <= 0:
        raise CardError(f"{src}: 'launch.eligible' must be a positive number of customers.")
    for k in ("fixed_cost", "large_loss"):
        v = getattr(launch, k)
        if not (math.isfinite(v) and v >= 0):
            raise CardError(f"{src}: 'launch.{k}' is {v}; give a finite number of dollars >= 0.")
    if not (math.isfinite(launch.transport_multiplier) and launch.transport_multiplier > 0):
        raise CardError(
            f"{src}: 'launch.transport_multiplier' is {launch.transport_multiplier}; give the "
            "share of the experiment's benefit kept at launch, > 0 (1 = no decay)."
        )
    if not 0 <= launch.min_cost_share <= 1:
        raise CardError(f"{src}: 'launch.min_cost_share' is {launch.min_cost_share}; give [0, 1].")
    for factor, shares in (launch.mix or {}).items():
        _factor(card, factor, f"'launch.mix.{factor}'", src)
        _levels(card, factor, list(shares), f"'launch.mix.{factor}'", src)


def _policies(card: ModelCard, src: str) -> None:
    ids = [card.policy_id(p) for p in card.policies]
    if _dups(ids):
        raise CardError(
            f"{src}: policy name(s) giving ids {_dups(ids)} used twice in [[policies]] (ids are "
            "names in lower case with '_'); rename one."
        )
    for i, pol in enumerate(card.policies):
        if policy_id(pol.name) in (OPTIMAL, OPTIMAL_WITHOUT_GROUP_RULES):
            raise CardError(
                f"{src}: 'policies[{i}].name' {pol.name!r} is reserved for the Bayes-optimal "
                "targeting; rename the policy."
            )
        _policy_arms(card, i, src)
        treats = [(f"'policies[{i}].treat", pol.treat or {})]
        treats += [(f"'policies[{i}].arms.{a}", t) for a, t in (pol.arms or {}).items()]
        for prefix, treat in treats:
            for factor, levels in treat.items():
                where = f"{prefix}.{factor}'"
                if factor in ("all", "none"):
                    if not isinstance(levels, bool):
                        raise CardError(f"{src}: {where} must be true or false.")
                    continue
                _factor(card, factor, where, src)
                if not isinstance(levels, list) or not all(isinstance(v, str) for v in levels):
                    raise CardError(f"{src}: {where} must be a list of level names.")
                _levels(card, factor, levels, where, src)


def _policy_arms(card: ModelCard, i: int, src: str) -> None:
    """A policy's ``treat``/``arm``/``arms`` fit the card's arms: exactly one of ``treat`` and
    ``arms``; ``arm``/``arms`` only in a multi-arm card, naming its treatment arms; a multi-arm
    policy that treats anyone names the arm."""
    pol = card.policies[i]
    arms = list(card.spec.treatment_arms)
    where = f"'policies[{i}]'"
    if (pol.treat is None) == (pol.arms is None):
        add = "treat = {...}" + (" or arms = {arm = {...}}" if card.multi_arm else "")
        raise CardError(
            f"{src}: {where} ({pol.name!r}) needs exactly one of 'treat' and 'arms'; add {add}."
        )
    if not card.multi_arm:
        if pol.arm is not None or pol.arms is not None:
            key_ = "arm" if pol.arm is not None else "arms"
            raise CardError(
                f"{src}: '{where[1:-1]}.{key_}' is for multi-arm cards; this card has two arms "
                f"{list(card.experiment.arms)}: remove it."
            )
        return
    named = [pol.arm] if pol.arm is not None else list(pol.arms or {})
    for a in named:
        if a not in arms:
            raise CardError(
                f"{src}: {where} ({pol.name!r}) names arm {a!r}, which is not a treatment arm."
                f"{suggest(a, arms)} The treatment arms are {arms} (the control "
                f"{card.spec.arm_labels[0]!r} is the status quo: treat none)."
            )
    if pol.arms is not None and pol.arm is not None:
        raise CardError(f"{src}: {where} ({pol.name!r}) gives 'arm' and 'arms'; keep one.")
    treat = pol.treat or {}
    if pol.arms is None and pol.arm is None and not treat.get("none"):
        raise CardError(
            f"{src}: {where} ({pol.name!r}) treats customers but names no arm; add arm = one of "
            f"{arms}, or give arms = {{{arms[0]} = {{...}}, ...}}."
        )


def _rules(card: ModelCard, src: str) -> None:
    names = [r.name for r in card.rules]
    if _dups(names):
        raise CardError(f"{src}: rule name(s) {_dups(names)} used twice in [[rules]].")
    for i, rule in enumerate(card.rules):
        required, optional = guardrail_keys(rule.type)
        threshold = "max_prob" if "max_prob" in (*required, *optional) else "min_prob"
        required = list(dict.fromkeys([*required, threshold]))
        allowed = ["name", "type", "description", *required, *optional]
        params = rule.params()
        extra = [k for k in params if k not in allowed]
        if extra:
            raise CardError(
                f"{src}: 'rules[{i}].{extra[0]}' does not apply to type = {rule.type!r}; its keys "
                f"are {allowed}."
            )
        missing = [k for k in required if k not in params]
        if missing:
            raise CardError(
                f"{src}: missing required key 'rules[{i}].{missing[0]}' for type = "
                f"{rule.type!r} (rule {rule.name!r}); add {missing[0]} = ..."
            )
        if rule.type == "effect_bound" and rule.upper is None and rule.lower is None:
            raise CardError(
                f"{src}: rule {rule.name!r} (effect_bound) needs 'upper' and/or 'lower'."
            )
        if rule.upper is not None and rule.lower is not None and rule.lower > rule.upper:
            raise CardError(
                f"{src}: 'rules[{i}].lower' ({rule.lower:g}) is above 'rules[{i}].upper' "
                f"({rule.upper:g}) in rule {rule.name!r}; no effect can lie between them. Swap "
                "them, or keep one bound."
            )
        if rule.for_each is not None:
            _factor(card, rule.for_each, f"'rules[{i}].for_each'", src)
        if rule.relative_to is not None and rule.for_each is None:
            raise CardError(
                f"{src}: 'rules[{i}].relative_to' needs 'rules[{i}].for_each' (rule "
                f"{rule.name!r}): add for_each = <factor> (one of {list(card.factors)}), whose "
                "levels are compared with the overall."
            )
        if rule.outcome is not None and rule.outcome not in card.outcome_names:
            raise CardError(
                f"{src}: 'rules[{i}].outcome' is {rule.outcome!r}.{suggest(rule.outcome, card.outcome_names)} "
                f"Use one of {card.outcome_names}."
            )
        if rule.factor is not None:
            _factor(card, rule.factor, f"'rules[{i}].factor'", src)
        for k in ("min_prob", "max_prob"):
            v = params.get(k)
            if v is not None and not 0 <= v <= 1:
                raise CardError(f"{src}: 'rules[{i}].{k}' must lie in [0, 1], not {v}.")
        for k, v in params.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise CardError(f"{src}: 'rules[{i}].{k}' is {v}; give a finite number.")


def _decision(card: ModelCard, src: str) -> None:
    dec = card.decision
    if dec.compare_factor is not None:
        _factor(card, dec.compare_factor, "'decision.compare_factor'", src)
    for i, f in enumerate(dec.fairness_factors or ()):
        _factor(card, f, f"'decision.fairness_factors[{i}]'", src)
    if dec.fairness_factors is not None and _dups(list(dec.fairness_factors)):
        raise CardError(
            f"{src}: 'decision.fairness_factors' lists {_dups(list(dec.fairness_factors))} twice."
        )
    for k in ("decision_threshold", "ci_prob"):
        v = getattr(dec, k)
        if not 0 < v < 1:
            raise CardError(f"{src}: 'decision.{k}' is {v}; give a probability in (0, 1).")
    valid = assumption_names(card.value_model())
    for i, name in enumerate(dec.break_even or ()):
        kind, _, outcome = name.partition(":")
        if name in valid or (kind in ("weight", "penalty") and outcome in card.outcome_names):
            continue
        raise CardError(
            f"{src}: 'decision.break_even[{i}]' is {name!r}.{suggest(name, valid)} Use one of "
            f"{valid}, 'weight:<outcome>' or 'penalty:<outcome>'."
        )


def _checks(card: ModelCard, src: str) -> None:
    t = card.checks
    bad = {
        "srm_alpha": not 0 < t.srm_alpha < 1,
        "max_abs_smd": not t.max_abs_smd > 0,
        "max_rhat": not t.max_rhat >= 1,
        "min_ess_bulk": not t.min_ess_bulk >= 0,
        "max_divergences": not t.max_divergences >= 0,
    }
    for k, is_bad in bad.items():
        if is_bad:
            raise CardError(
                f"{src}: 'checks.{k}' is {getattr(t, k)}; give srm_alpha in (0, 1), "
                "max_abs_smd > 0, max_rhat >= 1, min_ess_bulk >= 0 and max_divergences >= 0."
            )


def _monitoring(card: ModelCard, src: str) -> None:
    mon = card.monitoring
    if mon.holdout_share is not None and not 0 < mon.holdout_share < 1:
        raise CardError(
            f"{src}: 'monitoring.holdout_share' is {mon.holdout_share}; give the share of eligible "
            "customers kept as a randomized holdout, strictly between 0 and 1."
        )
    names = [r.name for r in mon.rules]
    if _dups(names):
        raise CardError(f"{src}: [[monitoring.rules]] name(s) {_dups(names)} used twice.")
    for i, r in enumerate(mon.rules):
        where = f"'monitoring.rules[{i}]'"
        if not 0 < r.min_prob < 1:
            raise CardError(
                f"{src}: {where}.min_prob is {r.min_prob}; give a probability in (0, 1)."
            )
        if r.threshold is not None and not math.isfinite(r.threshold):
            raise CardError(f"{src}: {where}.threshold is {r.threshold}; give a finite number.")
        if r.type == "transport_below":
            if r.outcome is not None:
                raise CardError(
                    f"{src}: {where}.outcome does not apply to type = 'transport_below' (the "
                    "multiplier is on [value].transport_outcomes); remove it."
                )
            if r.threshold is not None and r.threshold <= 0:
                raise CardError(f"{src}: {where}.threshold must be a multiplier > 0.")
            continue
        if r.outcome is None or r.threshold is None:
            raise CardError(
                f"{src}: {where} ({r.type}, rule {r.name!r}) needs outcome and threshold (in the "
                "outcome's unit per assigned customer)."
            )
        if r.outcome not in card.outcome_names:
            raise CardError(
                f"{src}: {where}.outcome is {r.outcome!r}.{suggest(r.outcome, card.outcome_names)} "
                f"Use one of {card.outcome_names}."
            )


def _fit(card: ModelCard, src: str) -> None:
    check_fit_settings(card.sampling.given(), f"{src}: [fit]")


CHECKS: tuple[Callable[[ModelCard, str], None], ...] = (
    _name,
    _data,
    _experiment,
    _outcomes,
    _features,
    _hierarchy,
    _priors,
    _fit,
    _value,
    _launch,
    _policies,
    _rules,
    _decision,
    _checks,
    _monitoring,
)


def check_card(card: ModelCard, src: str) -> None:
    """Run every cross-key check; then build the spec and the decision settings, so whatever the
    decision stage would reject is rejected now."""
    for check in CHECKS:
        check(card, src)
    try:
        card.spec  # noqa: B018
        card.decision_settings()
    except CardError:
        raise
    except SpecError as exc:
        raise CardError(f"{src}: {exc}") from None


__all__ = ["NAME_PATTERN", "check_card"]
