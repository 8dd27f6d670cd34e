"""Re-render a run's decision and memo with changed assumptions, from its saved fit (no refit).

:func:`rerender` applies ``--set`` overrides to the run's card (costs, weights, launch mix, rules,
decision settings, check thresholds), rebuilds the decision from ``fit.nc``, re-judges the run's
checks against the (possibly changed) thresholds and writes a new sub-folder
``rerenders/<stamp>[-N]/`` of the run, atomically. Thresholds made less strict than the run's are
recorded: the checks table shows the thresholds actually used and the memo says the recommendation
rests on loosened checks. The original run is never touched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from bayesdecide.card import ModelCard, card_from_dict, load_card
from bayesdecide.decide import Decision
from bayesdecide.decide.checks import Checks, evaluate_checks
from bayesdecide.errors import CardError, RunFolderError
from bayesdecide.run.folders import interrupt_guard, staged_folder
from bayesdecide.run.pipeline import FIT_FILE
from bayesdecide.run.registry import (
    RegistryArg,
    register_or_warn,
    resolve_location,
    run_registry_location,
)
from bayesdecide.run.render import (
    Progress,
    RunResult,
    Steps,
    finish,
    render,
    stderr,
    write_json,
    write_tables,
)
from bayesdecide.run.summarize import build_summary
from bayesdecide.run.summary import RunInfo, RunSummary, read_summary

REFIT_SECTIONS = (
    "card",
    "data",
    "experiment",
    "outcomes",
    "features",
    "hierarchy",
    "priors",
    "fit",
)


def load_fit(path: Path) -> Any:
    """The saved fit of a run; a clear error names the file when it is missing or damaged."""
    from bayesdecide.model.fitting import Fit

    if not path.is_file():
        raise RunFolderError(
            f"{path} is missing: {path.parent} is not a complete run folder (was the run "
            "interrupted?); re-run the card with `bayesdecide run`"
        )
    try:
        return Fit.load(path)
    except Exception as exc:  # noqa: BLE001 - any reader error means the same thing here
        raise RunFolderError(
            f"{path} cannot be read ({type(exc).__name__}: {exc}): the run folder is damaged or "
            "incomplete; re-run the card with `bayesdecide run`"
        ) from None


def load_run_card(run_folder: Path) -> ModelCard:
    """The card a run used (``card.toml`` or ``card.json`` in the run folder)."""
    if (run_folder / "card.toml").exists():
        return load_card(run_folder / "card.toml")
    path = run_folder / "card.json"
    if not path.exists():
        raise RunFolderError(
            f"{run_folder} has no card.toml: it is not a complete run folder from `bayesdecide run`"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{path} cannot be read ({exc}): the run folder is damaged") from None
    return card_from_dict(raw, source=str(path))


def rejudge_checks(
    parent: RunSummary,
    card: ModelCard,
    diagnostics: Mapping[str, Any],
    assignment_share: float | None = None,
) -> Checks:
    """The run's checks judged against the card's (possibly changed) thresholds, with what was
    loosened relative to the run's own thresholds. ``assignment_share`` (default the card's) is
    the designed treated share of the run's data (an update's: 1 - holdout share)."""
    balance = pd.DataFrame([vars(b) for b in parent.checks.balance])
    if not balance.empty:
        balance = balance.set_index("covariate")
    checks = evaluate_checks(
        parent.data.n_control,
        parent.data.n_treatment,
        balance,
        diagnostics,
        card.checks,
        assignment_share=card.assignment_share if assignment_share is None else assignment_share,
        arm_counts=parent.data.arm_counts or None,
        arm_shares=card.arm_shares,
    )
    return Checks(
        checks.results, checks.balance, tuple(card.checks.loosened_from(parent.checks.thresholds))
    )


def rerender(
    run_folder: str | Path,
    overrides: Mapping[str, Any],
    *,
    out: str | Path | None = None,
    progress: Progress | None = stderr,
    registry: RegistryArg = None,
) -> RunResult:
    """Re-render a run's decision and memo with changed assumptions, from the saved fit.

    ``overrides`` are dotted card keys or shortcuts (see :mod:`bayesdecide.card.overrides`), e.g.
    ``{"annoyance_penalty": 50, "launch.fixed_cost": 350000}``. Keys that would need a refit
    (data, outcomes, hierarchy, priors, fit) are refused. Writes ``<run>/rerenders/<stamp>/`` (or
    a new folder under ``out``). The re-render is recorded, with the run as its parent, in
    ``registry`` (default: where the run's card says, else ``<run folder's parent>/registry.duckdb``;
    ``False``: not recorded). An update's folder re-renders with its posterior transport
    multiplier.
    """
    run_folder = Path(run_folder)
    if not run_folder.is_dir():
        raise RunFolderError(
            f"{str(run_folder)!r} is not a run folder; give a folder written by `bayesdecide run`"
        )
    for name in overrides:
        head = name.split(".", 1)[0]
        if head in REFIT_SECTIONS:
            raise CardError(
                f"--set {name}: changing [{head}] needs a refit; edit the card and use "
                "`bayesdecide run` instead (memo re-renders only change value, launch, policies, "
                "rules, decision and checks)"
            )
    steps = Steps(5, progress)
    parent = read_summary(run_folder / "summary.json")
    card = load_run_card(run_folder).with_overrides(overrides)
    steps(f"Loading the saved fit of {run_folder.name}")
    fit = load_fit(run_folder / FIT_FILE)
    steps("Recomputing the decision (no refit)")
    from bayesdecide.run.updating import update_assignment_share

    share = update_assignment_share(run_folder)
    checks = rejudge_checks(parent, card, fit.diagnostics, share)
    card.check_fit_arms(fit)
    view = decision_fit_of_run(run_folder, card, fit)
    settings = card.decision_settings()
    asked = {"transport_multiplier", "launch.transport_multiplier"} & set(overrides)
    if share is not None and not asked:
        # an update's effects already carry the posterior multiplier: no further decay unless
        # the re-render asks for it
        settings = settings.with_changes(transport_multiplier=1.0)
    decision = Decision.from_fit(view, settings, checks=checks)
    where, stem = (
        (run_folder / "rerenders", "") if out is None else (Path(out), f"{card.name}-rerender")
    )
    with interrupt_guard() as guard, staged_folder(where, stem) as stage:
        run = RunInfo(
            **{
                **vars(parent.run),
                "id": f"{parent.run.id}/{stage.final.name}",
                "created": _now(),
                "parent": str(run_folder),
                "overrides": dict(overrides),
            }
        )
        summary, tables = build_summary(
            card, view, decision, run, parent.data, parent_run=str(run_folder)
        )
        # the model is the parent's: so is its cross-validation (changed assumptions change
        # decisions, not predictions)
        summary = replace(summary, cross_validation=parent.cross_validation)
        if share is not None:
            from bayesdecide.run.updating import update_context, update_factors

            summary = update_context(summary, update_factors(run_folder, card) or (), 1 - share)
        steps(f"Writing {stage.final}")
        (stage.path / "summary.json").write_text(summary.to_json(), encoding="utf-8")
        write_json(stage.path / "overrides.json", dict(overrides))
        write_json(stage.path / "card.json", card.to_dict())
        write_tables(stage.path, tables)
        memo_md, memo_html, figures = render(steps, stage, card, summary, view, decision)
        guard.check("while writing the re-render")
    location = resolve_location(
        registry, None, run_registry_location(run_folder, card.registry.path)
    )
    record = register_or_warn(stage.final, location)
    return finish(steps, RunResult(stage.final, summary, memo_md, memo_html, figures, record))


def decision_fit_of_run(run_folder: Path, card: ModelCard, fit: Any) -> Any:
    """What a saved run's decision is about: the card's :meth:`~ModelCard.decision_fit` of the
    fit, or for an update's folder the reference experiment's cells with the posterior transport
    multiplier applied draw by draw (:mod:`bayesdecide.run.updating`)."""
    from bayesdecide.run.records import UPDATE_FILE

    if (run_folder / UPDATE_FILE).is_file():
        from bayesdecide.run.updating import transported_view_of_run

        return transported_view_of_run(run_folder, card, fit)
    return card.decision_fit(fit)


def _now() -> str:
    import datetime as _dt

    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


__all__ = [
    "REFIT_SECTIONS",
    "decision_fit_of_run",
    "load_fit",
    "load_run_card",
    "rejudge_checks",
    "rerender",
]
