"""Post-launch updating: a run refitted with its rollout's randomized holdout, and re-decided.

:func:`update_run` (``bayesdecide update RUN --data ROLLOUT``) reads the rollout's rows (the
card's columns; ``treatment`` 1 for launched customers, 0 for the randomized holdout), aggregates
them with the card's spec, adds them to the run's effect table as a new level of the experiment
factor (``experiment`` unless the card pools experiments under another name) and refits the
card's hierarchy with that factor. Then:

- the **transport multiplier** gets a posterior (:mod:`bayesdecide.run.transport`: the rollout's
  mix-weighted benefit over the experiment's on the same cells) in place of the card's assumed
  value;
- the **decision** is re-made on the experiment's cells with every benefit effect multiplied by
  the multiplier draw by draw (the card's own multiplier is replaced, so the remaining
  ``transport_multiplier`` setting is 1: no decay beyond the estimated one);
- the **change** from the earlier decision is reported policy by policy (expected launch value
  before and after, dollars), with the expected regret of keeping the earlier choice;
- the monitoring plan's **stop rules** (``[[monitoring.rules]]``) are evaluated on the rollout
  level's posterior (and its raw, unpooled estimate).

The result is a new run folder ``<card>-update-<stamp>`` next to the run (atomic, like every
run): ``summary.json`` of the new decision, ``update.json`` (:class:`UpdateSummary`), a memo
showing the earlier run and the update side by side, the refitted ``fit.nc`` (so ``memo`` and a
further ``update`` work on it), tables and lineage; it is registered with the run as parent.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide._json import to_jsonable
from bayesdecide.card import ModelCard
from bayesdecide.data.combine import combine_effects, experiment_levels
from bayesdecide.errors import CardError, RunFolderError
from bayesdecide.model.defaults import SAMPLERS, default_tune
from bayesdecide.run.folders import interrupt_guard, staged_folder
from bayesdecide.run.lineage import lineage
from bayesdecide.run.pipeline import FIT_FILE, check_fit, given_fit_settings, run_info
from bayesdecide.run.records import UPDATE_FILE
from bayesdecide.run.registry import (
    RegistryArg,
    register_or_warn,
    resolve_location,
    run_registry_location,
)
from bayesdecide.run.render import Progress, RunResult, Steps, finish, stderr, write_json
from bayesdecide.run.rerendering import load_fit, load_run_card
from bayesdecide.run.summary import DataInfo, RunSummary, read_summary
from bayesdecide.run.transport import TransportDraws, TransportedView, transported_view

UPDATE_SCHEMA_VERSION = 1
REFERENCE_LEVEL = "experiment"  # the experiment's level when the run pooled none
TRANSPORT_CI = 0.90  # probability of the transport multiplier's reported interval


@dataclass(frozen=True)
class PolicyChange:
    """One policy's launch value before (the earlier run) and after the update (dollars at launch
    scale, after fixed cost)."""

    policy: str
    label: str
    expected_value_before: float | None
    expected_value_after: float
    change: float | None
    prob_positive_before: float | None
    prob_positive_after: float


@dataclass(frozen=True)
class StopRuleResult:
    """One ``[[monitoring.rules]]`` rule evaluated on the rollout.

    ``probability`` is the posterior probability of the rule's event (effect above / below the
    threshold, or multiplier below it); the rule *fires* when it is at least ``min_prob``.
    ``mean``/``lower``/``upper`` summarise the quantity (the rollout effect in the outcome's unit
    per assigned customer, or the multiplier); ``raw_estimate``/``raw_std_error`` are the
    rollout's unpooled, covariate-adjusted estimate (effect rules only).
    """

    name: str
    type: str
    description: str
    outcome: str | None
    threshold: float
    threshold_source: str
    mean: float
    lower: float
    upper: float
    probability: float
    min_prob: float
    fires: bool
    raw_estimate: float | None = None
    raw_std_error: float | None = None


@dataclass(frozen=True)
class UpdateSummary:
    """``update.json``: what an update estimated and how the decision moved."""

    schema_version: int
    parent_run: str
    parent_folder: str
    factor: str
    reference: str
    rollout: str
    levels: list[str]
    holdout_share: float
    rollout_data: dict[str, Any]
    transport: dict[str, Any]
    decision_before: dict[str, Any]
    decision_after: dict[str, Any]
    decision_changed: bool
    regret_of_earlier_choice: float | None
    policies: list[PolicyChange]
    stop_rules: list[StopRuleResult]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(to_jsonable(self), indent=2, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------------------------
# the experiment factor of a run
# ---------------------------------------------------------------------------------------------


def read_update(folder: Path) -> dict[str, Any]:
    """``update.json`` of an update's run folder (``{}`` for other runs)."""
    path = folder / UPDATE_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{path} cannot be read ({exc}): the run folder is damaged") from None


def reference_of_run(run_folder: Path, card: ModelCard) -> tuple[str, str]:
    """(experiment factor, the level the run's decision is about) of a saved run."""
    info = read_update(run_folder)
    if info:
        return str(info["factor"]), str(info["reference"])
    factor = card.data.experiment_factor
    return factor, str(card.target_experiment) if card.pooled else REFERENCE_LEVEL


def benefit_weights(card: ModelCard) -> dict[str, float]:
    """The card's benefit outcomes (``[value].transport_outcomes``) and their value weights."""
    vm = card.value_model()
    return {o: float(vm.weights[o]) for o in vm.benefit_outcomes}


def transported_view_of_run(run_folder: Path, card: ModelCard, fit: Any) -> TransportedView:
    """The decision's view of an update's saved fit (for re-rendering it)."""
    info = read_update(run_folder)
    return transported_view(
        fit,
        str(info["factor"]),
        str(info["reference"]),
        str(info["rollout"]),
        benefit_weights(card),
    )


def update_factors(run_folder: Path, card: ModelCard) -> tuple[str, ...] | None:
    """The factors an update's fit pooled over (``None`` for other runs)."""
    info = read_update(run_folder)
    if not info:
        return None
    factor = str(info["factor"])
    return tuple(card.factors) if factor in card.factors else (factor, *card.factors)


def update_assignment_share(run_folder: Path) -> float | None:
    """Designed treated share of an update's data (1 - holdout share); ``None`` for other runs."""
    info = read_update(run_folder)
    return 1.0 - float(info["holdout_share"]) if info else None


# ---------------------------------------------------------------------------------------------
# pieces
# ---------------------------------------------------------------------------------------------


def fit_model(
    table: xr.Dataset,
    card: ModelCard,
    factors: tuple[str, ...],
    settings: Mapping[str, Any],
    progressbar: bool,
) -> Any:
    """The refit on the combined effect table (the one call into the model stage)."""
    from bayesdecide.model.fitting import fit
    from bayesdecide.model.priors import Prior

    priors = {name: Prior.from_dict(p) for name, p in card.priors.items()} or None
    spec = replace(card.spec, groups=factors)
    return fit(
        table,
        spec,
        factors=factors,
        interactions=card.hierarchy.interactions,
        priors=priors,
        progressbar=progressbar,
        **settings,
    )


def _settings(parent: RunSummary, card: ModelCard, **given: Any) -> dict[str, Any]:
    run = parent.run
    base = {
        "draws": run.draws,
        "chains": run.chains,
        "seed": run.seed,
        "target_accept": run.target_accept,
    }
    # the parent's warm-up only where it was not its sampler's default: a default one is left
    # to the refit's sampler (nutpie's 300 steps are not carried into a fallback to PyMC)
    if run.tune is not None and run.tune != default_tune(run.sampler):
        base["tune"] = run.tune
    if run.sampler in SAMPLERS:  # a sampler this version has (older runs may name others)
        base["sampler"] = run.sampler
    base = {k: v for k, v in base.items() if v is not None}
    return card.fit_settings(**{**base, **{k: v for k, v in given.items() if v is not None}})


def _rollout_effect(fit: Any, factor: str, level: str, outcome: str) -> np.ndarray:
    """Draws (S,) of the rollout level's effect on ``outcome`` at the rollout's own mix."""
    tau = fit.tau
    keep = np.asarray(tau[factor].values).astype(str) == level
    cells = tau["cell"].values[keep]
    n = (fit.effects["n_control"] + fit.effects["n_treatment"]).sel(cell=cells)
    w = n / n.sum()
    eff = (tau.sel(cell=cells, outcome=outcome) * w).sum("cell")
    return np.asarray(eff.values, dtype=float).ravel()


def evaluate_stop_rules(
    card: ModelCard,
    fit: Any,
    factor: str,
    level: str,
    draws: TransportDraws,
    rollout_table: xr.Dataset,
    break_even: float | None,
) -> list[StopRuleResult]:
    """The card's ``[[monitoring.rules]]`` on the rollout (see :class:`StopRuleResult`)."""
    from bayesdecide.data.effects import average_effect

    raw = average_effect(rollout_table)
    out = []
    for rule in card.monitoring.rules:
        if rule.type == "transport_below":
            x = np.asarray(draws.multiplier.values, dtype=float).ravel()
            threshold, source = rule.threshold, "card"
            if threshold is None:
                threshold, source = break_even, "break-even transport multiplier of the first run"
            if threshold is None or not np.isfinite(threshold):
                continue
            prob = float(np.mean(x < threshold))
            raw_est = raw_se = None
        else:
            x = _rollout_effect(fit, factor, level, str(rule.outcome))
            threshold, source = float(rule.threshold), "card"  # type: ignore[arg-type]
            above = rule.type == "effect_above"
            prob = float(np.mean(x > threshold) if above else np.mean(x < threshold))
            raw_est = float(raw["estimate"].sel(outcome=rule.outcome))
            raw_se = float(raw["std_error"].sel(outcome=rule.outcome))
        lo, hi = np.quantile(x, [(1 - TRANSPORT_CI) / 2, (1 + TRANSPORT_CI) / 2])
        out.append(
            StopRuleResult(
                name=rule.name,
                type=rule.type,
                description=rule.description,
                outcome=rule.outcome,
                threshold=float(threshold),
                threshold_source=source,
                mean=float(x.mean()),
                lower=float(lo),
                upper=float(hi),
                probability=prob,
                min_prob=rule.min_prob,
                fires=prob >= rule.min_prob,
                raw_estimate=raw_est,
                raw_std_error=raw_se,
            )
        )
    return out


def _decision_text(s: RunSummary) -> dict[str, Any]:
    rec = s.recommendation
    focus = rec.policy or rec.rule_policy
    row = s.policies.get(focus) if focus else None
    return {
        "decision": rec.decision,
        "policy": rec.policy,
        "label": s.labels.get(rec.policy, "") if rec.policy else "",
        "expected_value": row.expected_value if row is not None else None,
        "prob_positive": row.prob_positive if row is not None else None,
        "blocked": rec.blocked,
    }


def policy_changes(before: RunSummary, after: RunSummary) -> list[PolicyChange]:
    """Each policy of the update with its launch value in the earlier run (dollars)."""
    out = []
    for p, row in after.policies.items():
        old = before.policies.get(p)
        ev0 = old.expected_value if old is not None else None
        out.append(
            PolicyChange(
                policy=p,
                label=row.label,
                expected_value_before=ev0,
                expected_value_after=row.expected_value,
                change=row.expected_value - ev0 if ev0 is not None else None,
                prob_positive_before=old.prob_positive if old is not None else None,
                prob_positive_after=row.prob_positive,
            )
        )
    return out


def decision_changed(before: RunSummary, after: RunSummary) -> bool:
    """Whether the recommendation differs: its wording, its policy, or (for the optimal
    targeting) the cells it treats."""
    a, b = before.recommendation, after.recommendation
    if (a.decision, a.policy) != (b.decision, b.policy):
        return True
    if a.policy == "optimal" and before.optimal is not None and after.optimal is not None:
        return sorted(before.optimal.cells) != sorted(after.optimal.cells)
    return False


def update_context(summary: RunSummary, factors: tuple[str, ...], holdout: float) -> RunSummary:
    """An update's summary states its own design: the fitted factors (with the experiment
    factor) and the rollout's designed treated share (1 - holdout share)."""
    return replace(
        summary,
        hierarchy=replace(summary.hierarchy, factors=list(factors)),
        experiment=replace(summary.experiment, assignment_share=1.0 - holdout),
    )


def _regret(before: RunSummary, after: RunSummary) -> float | None:
    """E_after[value of the update's choice] - E_after[value of the earlier choice], dollars
    (0 when the choice is unchanged; ``None`` when either run recommends nothing)."""
    old = before.recommendation.policy or (
        "treat_none" if not before.recommendation.blocked else None
    )
    new = after.recommendation.policy or (
        "treat_none" if not after.recommendation.blocked else None
    )
    if old is None or new is None or old not in after.policies or new not in after.policies:
        return None
    return after.policies[new].expected_value - after.policies[old].expected_value


# ---------------------------------------------------------------------------------------------
# the update
# ---------------------------------------------------------------------------------------------


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def update_run(
    run_folder: str | Path,
    data: Any,
    *,
    label: str | None = None,
    out: str | Path | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    progress: Progress | None = stderr,
    progressbar: bool | None = None,
    registry: RegistryArg = None,
) -> RunResult:
    """Refit a run with its rollout's randomized holdout and re-decide (module docstring).

    Parameters
    ----------
    run_folder:
        A folder written by ``bayesdecide run`` (or by an earlier update: the new rollout is one
        more level of the experiment factor).
    data:
        The rollout's rows, any source :func:`bayesdecide.cell_stats` reads (a Parquet/CSV path,
        a DataFrame), with the card's columns; ``treatment`` 1 = launched, 0 = holdout.
    label:
        The rollout's level of the experiment factor (must be new; default ``rollout``, or
        ``rollout-2``, ``rollout-3`` ... after earlier updates).
    out:
        Parent folder of the new run folder (default: the run's parent folder).
    draws, tune, chains, seed:
        Sampler settings (default: the run's; a warm-up that was its sampler's default is left
        to the sampler that refits, so a fallback from nutpie to PyMC gets PyMC's).
    progress, progressbar:
        As in :func:`~bayesdecide.run.run_card`.
    registry:
        Registry the update is recorded in (default: the run's; ``False``: none).

    Raises
    ------
    RunFolderError
        ``run_folder`` is not a complete run folder.
    CardError
        The card has no ``[monitoring].holdout_share``, no benefit outcomes, or ``label`` is taken.
    DataValidationError
        The rollout's rows do not match the card.
    """
    from bayesdecide.data import cell_stats
    from bayesdecide.data.effects import cell_effects
    from bayesdecide.decide import Decision, run_checks

    run_folder = Path(run_folder)
    if not run_folder.is_dir():
        raise RunFolderError(
            f"{str(run_folder)!r} is not a run folder; give a folder written by `bayesdecide run`"
        )
    steps = Steps(8, progress)
    created = _now()
    parent = read_summary(run_folder / "summary.json")
    card = load_run_card(run_folder)
    if card.monitoring.holdout_share is None:
        raise CardError(
            f"card {card.name!r} has no [monitoring].holdout_share: the update needs the "
            "designed holdout share of the rollout (e.g. holdout_share = 0.10) to check its "
            "assignment; add it to the card and re-run it"
        )
    holdout = float(card.monitoring.holdout_share)
    weights = benefit_weights(card)
    factor, reference = reference_of_run(run_folder, card)
    steps(f"Loading the saved fit of {run_folder.name}")
    parent_fit = load_fit(run_folder / FIT_FILE)
    base = parent_fit.effects
    levels = experiment_levels(base, factor) or [reference]
    if label is None:
        label = next(
            x for k in range(1, 1000) if (x := "rollout" + (f"-{k}" if k > 1 else "")) not in levels
        )
    if label in levels:
        raise CardError(
            f"--label {label!r} is already a level of {factor!r} ({levels}); give the rollout a "
            "new label, e.g. --label rollout-2"
        )
    if factor in card.row_spec.groups:
        raise CardError(
            f"the card has a data column {factor!r} among its factors; the update needs it as the "
            "experiment factor: set [data].experiment_factor to another name"
        )
    steps(f"Reading the rollout ({data if isinstance(data, str | Path) else type(data).__name__})")
    rollout_cells = cell_stats(
        str(data) if isinstance(data, Path) else data,
        card.row_spec,
        single_arm_cells="keep",
        drop_missing_outcomes=card.data.drop_missing_outcomes,
        partial_levels=True,  # a targeted launch's rollout covers the treated levels only
    )
    n = rollout_cells.ds["n"].sum("cell")
    rollout_table = cell_effects(rollout_cells)
    rollout_info = {
        "source": str(data) if isinstance(data, str | Path) else type(data).__name__,
        "label": label,
        "n_units": int(n.sum()),
        "n_holdout": int(n.sel(arm="control")),
        "n_treated": int(n.sel(arm="treatment")),
        "n_cells": int(rollout_cells.ds.sizes["cell"]),
        "fingerprint": rollout_cells.fingerprint,
    }
    factors = tuple(card.factors) if factor in card.factors else (factor, *card.factors)
    table = combine_effects({reference: base, label: rollout_table}, factor, factors)
    settings = _settings(parent, card, draws=draws, tune=tune, chains=chains, seed=seed)
    steps(
        f"Refitting with {rollout_info['n_units']:,} rollout customers as {factor} = {label!r} "
        f"({settings['chains']} chains x {settings['draws']} draws)"
    )
    t_fit = time.perf_counter()
    with interrupt_guard() as guard:
        fit = fit_model(
            table,
            card,
            factors,
            settings,
            progress is not None if progressbar is None else progressbar,
        )
        guard.check("while sampling")
        check_fit(fit, settings)
        settings = {**settings, **given_fit_settings(fit)}  # the warm-up and sampler that ran
        fit_seconds = time.perf_counter() - t_fit
        steps(f"Fitted in {fit_seconds:.1f}s; estimating the transport multiplier")
        view = transported_view(fit, factor, reference, label, weights)
        break_even = _break_even(run_folder, parent)
        transport = {
            "estimand": (
                "the rollout's mix-weighted effect on the benefit outcomes "
                f"({', '.join(f'{w:g} x {o}' for o, w in weights.items())}; dollars per assigned "
                "customer) over the experiment's effect on the same cells at the same mix"
            ),
            "outcomes": list(weights),
            "weights": weights,
            "assumed": card.launch.transport_multiplier,
            "summary": view.transport.summary(TRANSPORT_CI, break_even),
            "rollout_benefit": _interval(view.transport.rollout_benefit),
            "experiment_benefit": _interval(view.transport.experiment_benefit),
            "mix": view.transport.mix,
        }
        steps("Re-deciding with the posterior transport multiplier")
        checks = run_checks(
            rollout_cells, dict(fit.diagnostics), card.checks, assignment_share=1.0 - holdout
        )
        settings_after = card.decision_settings().with_changes(transport_multiplier=1.0)
        decision = Decision.from_fit(view, settings_after, checks=checks)
        stop = evaluate_stop_rules(
            card, fit, factor, label, view.transport, rollout_table, break_even
        )
        where = Path(out) if out is not None else run_folder.parent
        with staged_folder(where, f"{card.name}-update") as stage:
            from bayesdecide.run.summarize import build_summary

            run = run_info(
                stage.final.name,
                created,
                False,
                fit_seconds,
                settings,
                parent=str(run_folder.resolve()),
            )
            data_info = DataInfo(
                source=f"rollout {rollout_info['source']} ({factor} = {label!r}) with run "
                f"{parent.run.id}'s data ({parent.data.source})",
                description=f"Rollout read with a {holdout:.0%} randomized holdout, fitted "
                f"together with the experiment(s) of run {parent.run.id}",
                n_units=rollout_info["n_units"],
                n_control=rollout_info["n_holdout"],
                n_treatment=rollout_info["n_treated"],
                n_cells=rollout_info["n_cells"],
                single_arm_cells=[
                    str(c)
                    for c, k in zip(
                        rollout_cells.ds["cell"].values,
                        (rollout_cells.ds["n"] > 0).sum("arm").values,
                        strict=True,
                    )
                    if k < 2
                ],
                dropped=dict(rollout_cells.dropped),
                fingerprint=hashlib.sha256(
                    (parent.data.fingerprint + rollout_info["fingerprint"]).encode()
                ).hexdigest(),
            )
            summary, tables = build_summary(
                card, view, decision, run, data_info, parent_run=str(run_folder.resolve())
            )
            summary = update_context(summary, factors, holdout)
            info = UpdateSummary(
                schema_version=UPDATE_SCHEMA_VERSION,
                parent_run=parent.run.id,
                parent_folder=str(run_folder.resolve()),
                factor=factor,
                reference=reference,
                rollout=label,
                levels=[*levels, label],
                holdout_share=holdout,
                rollout_data=rollout_info,
                transport=transport,
                decision_before=_decision_text(parent),
                decision_after=_decision_text(summary),
                decision_changed=decision_changed(parent, summary),
                regret_of_earlier_choice=_regret(parent, summary),
                policies=policy_changes(parent, summary),
                stop_rules=stop,
                notes=_notes(card, rollout_cells),
            )
            steps(f"Writing the run folder {stage.final}")
            _write(stage.path, run_folder, card, summary, tables, info, view)
            fit.save(stage.path / FIT_FILE)
            guard.check(f"while writing {FIT_FILE}")
            lin = lineage(
                stage.final.name,
                card,
                summary.data,
                {**settings},
                getattr(fit, "lineage", {}),
                created,
                _now(),
            )
            lin["parent_run"] = parent.run.id
            lin["experiments"] = info.levels
            lin["rollout"] = rollout_info
            write_json(stage.path / "lineage.json", lin)
            from bayesdecide.run.update_memo import render_update

            memo_md, memo_html, figures = render_update(
                steps, stage, card, summary, view, decision, info, parent, run_folder
            )
            guard.check("while writing the run folder")
    location = resolve_location(
        registry, None, run_registry_location(run_folder, card.registry.path)
    )
    record = register_or_warn(stage.final, location)
    return finish(steps, RunResult(stage.final, summary, memo_md, memo_html, figures, record))


def _break_even(run_folder: Path, parent: RunSummary) -> float | None:
    """The break-even transport multiplier the stop rule compares with: the run's (median of its
    break-even draws, for its decision's policy); for an update of an update, the first run's, so
    it stays a multiplier relative to the experiment."""
    earlier = read_update(run_folder)
    if earlier:
        value = earlier.get("transport", {}).get("summary", {}).get("threshold")
        return float(value) if value is not None else None
    tm = parent.break_even.get("transport_multiplier")
    return float(tm.median) if tm is not None and np.isfinite(tm.median) else None


def _interval(x: xr.DataArray) -> dict[str, float]:
    v = np.asarray(x.values, dtype=float).ravel()
    lo, hi = np.quantile(v, [(1 - TRANSPORT_CI) / 2, (1 + TRANSPORT_CI) / 2])
    return {"mean": float(v.mean()), "lower": float(lo), "upper": float(hi)}


def _notes(card: ModelCard, cells: Any) -> list[str]:
    notes = []
    if card.launch.transport_multiplier != 1.0:
        notes.append(
            f"The card assumed a transport multiplier of {card.launch.transport_multiplier:g}; "
            "the update replaces it with the posterior (it does not compound with it)."
        )
    single = int(((cells.ds["n"] > 0).sum("arm") < 2).sum())
    if single:
        notes.append(
            f"{single} rollout cell(s) have only one arm (no holdout customer there); their "
            "rollout effects are predicted by the hierarchy."
        )
    if not card.monitoring.rules:
        notes.append(
            "The card has no [[monitoring.rules]]: its stop rules are text only and were not "
            "evaluated; add them to evaluate the rules on the rollout."
        )
    return notes


def _write(
    folder: Path,
    run_folder: Path,
    card: ModelCard,
    summary: RunSummary,
    tables: dict[str, pd.DataFrame],
    info: UpdateSummary,
    view: TransportedView,
) -> None:
    from bayesdecide.run.render import write_tables

    (folder / "summary.json").write_text(summary.to_json(), encoding="utf-8")
    (folder / UPDATE_FILE).write_text(info.to_json(), encoding="utf-8")
    if (run_folder / "card.toml").exists():
        shutil.copyfile(run_folder / "card.toml", folder / "card.toml")
    else:
        write_json(folder / "card.json", card.to_dict())
    tables = dict(tables)
    tables["transport_multiplier"] = pd.DataFrame(
        {
            "chain": np.repeat(view.transport.multiplier["chain"].values, view.tau.sizes["draw"]),
            "draw": np.tile(view.transport.multiplier["draw"].values, view.tau.sizes["chain"]),
            "transport_multiplier": np.asarray(view.transport.multiplier.values).ravel(),
            "rollout_benefit": np.asarray(view.transport.rollout_benefit.values).ravel(),
            "experiment_benefit": np.asarray(view.transport.experiment_benefit.values).ravel(),
        }
    )
    tables["decision_change"] = pd.DataFrame([vars(p) for p in info.policies]).set_index("policy")
    if info.stop_rules:
        tables["stop_rules"] = pd.DataFrame([vars(r) for r in info.stop_rules]).set_index("name")
    write_tables(folder, tables)


__all__ = [
    "REFERENCE_LEVEL",
    "PolicyChange",
    "StopRuleResult",
    "UpdateSummary",
    "benefit_weights",
    "evaluate_stop_rules",
    "fit_model",
    "policy_changes",
    "read_update",
    "reference_of_run",
    "transported_view_of_run",
    "update_assignment_share",
    "update_context",
    "update_factors",
    "decision_changed",
    "update_run",
]
