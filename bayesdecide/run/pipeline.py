"""One decision run: card -> data -> cell statistics -> fit -> decision -> run folder.

:func:`run_card` validates the card and its fit settings, checks ``--out``, loads the data
(simulator or file through DuckDB), checks and aggregates it, fits the hierarchical model
(``card.fit``), builds the decision (``card.decide``, gated by the data and sampler checks) and
writes a new run folder, atomically (:mod:`bayesdecide.run.folders`)::

    runs/<card>-<YYYYmmdd-HHMMSS>[-N]/
        memo.md, memo.html      the decision memo (HTML self-contained, figures embedded)
        summary.json            the typed run summary (schema: docs/run_summary.md)
        lineage.json            card hash, spec and data fingerprints, versions, settings, times
        card.toml               the exact card that ran
        figures/*.png           the memo's figures
        tables/*.csv            policies, guardrails, break-even, sensitivity, effects, ...
        fit.nc                  the saved fit (Fit.save), re-used by `bayesdecide memo`

A Ctrl-C anywhere propagates as ``KeyboardInterrupt`` and leaves no run folder behind.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from bayesdecide.card import ModelCard, load_card
from bayesdecide.data import CellStats
from bayesdecide.run.folders import check_parent, interrupt_guard, staged_folder
from bayesdecide.run.lineage import lineage
from bayesdecide.run.registry import (
    RegistryArg,
    default_location,
    register_or_warn,
    resolve_location,
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
from bayesdecide.run.summary import DataInfo, HeldOutLevel, RunInfo

FIT_FILE = "fit.nc"


def fit_model(
    cells: CellStats, card: ModelCard, settings: dict[str, Any], progressbar: bool
) -> Any:
    """The card's fit with the merged ``settings`` (the one call into the model stage)."""
    return card.fit(cells, progressbar=progressbar, **settings)


def cross_validation(
    card: ModelCard, fit: Any, settings: dict[str, Any], steps: Steps
) -> list[HeldOutLevel]:
    """Every level of the card's ``hierarchy.cross_validate`` factors held out in turn: the
    card's model refitted on the other levels' cells (the run's sampler settings) predicts the
    level's own estimate of the primary outcome and the guardrail outcomes."""
    from bayesdecide.validate import cross_validate_levels

    held: list[HeldOutLevel] = []
    for factor in card.hierarchy.cross_validate:
        steps(f"Cross-validating by {factor}: each level held out, refitted and predicted")
        table = cross_validate_levels(
            fit.effects,
            factor,
            lambda t: card.fit(t, progressbar=False, **settings),
            outcomes=card.checked_outcomes,
            seed=int(settings.get("seed") or 0),
        )
        fields = [f.name for f in dataclasses.fields(HeldOutLevel) if f.name != "prob"]
        prob = float(table.attrs["prob"])
        held += [
            HeldOutLevel(prob=prob, **{k: row[k] for k in fields})
            for row in table.to_dict("records")
        ]
    return held


def run_info(
    run_id: str,
    created: str,
    quick: bool,
    fit_seconds: float,
    settings: dict[str, Any],
    **extra: Any,
) -> RunInfo:
    """The run's record of itself: id, times and the sampler settings it fitted with."""
    fields: dict[str, Any] = dict(
        id=run_id,
        created=created,
        quick=quick,
        fit_seconds=round(fit_seconds, 2),
        draws=settings["draws"],
        tune=settings.get("tune"),
        chains=settings["chains"],
        seed=settings.get("seed"),
        target_accept=settings.get("target_accept"),
        sampler=settings.get("sampler"),
    )
    return RunInfo(**{**fields, **extra})


def check_fit(fit: Any, settings: dict[str, Any]) -> None:
    """A fit with fewer draws than asked for, or non-finite draws, is not a posterior: refuse it
    before anything is decided or written."""
    from bayesdecide.model.fitting import FitError

    tau = fit.tau
    shape = (int(tau.sizes["chain"]), int(tau.sizes["draw"]))
    if shape != (settings["chains"], settings["draws"]):
        raise FitError(
            f"the sampler returned {shape[0]} chains x {shape[1]} draws, not the "
            f"{settings['chains']} x {settings['draws']} asked for (was sampling interrupted?); "
            "nothing was written"
        )
    if not np.isfinite(tau.values).all():
        raise FitError(
            "the fit's cell effects have non-finite draws (NaN or inf); nothing was written"
        )


def given_fit_settings(fit: Any) -> dict[str, Any]:
    """The settings a fit ran with: its shape, and from its lineage the seed, target acceptance,
    sampler and warm-up it resolved (a fallback to PyMC and its warm-up included)."""
    out: dict[str, Any] = {
        "chains": int(fit.tau.sizes["chain"]),
        "draws": int(fit.tau.sizes["draw"]),
    }
    lin = getattr(fit, "lineage", None) or {}
    for k in ("tune", "seed", "target_accept", "sampler"):
        v = lin.get("settings", {}).get(k, lin.get(k))
        if v is not None:
            out[k] = v
    return out


def describe_data(card: ModelCard, cells: CellStats) -> DataInfo:
    ds = cells.ds
    n = ds["n"].sum("cell")
    arms_present = (ds["n"] > 0).sum("arm").values
    n_arms = ds.sizes["arm"]
    return DataInfo(
        source=card.data.label,
        description=card.data.description,
        n_units=int(n.sum()),
        n_control=int(n.isel(arm=0)),
        n_treatment=int(n.isel(arm=slice(1, None)).sum()),
        n_cells=int(ds.sizes["cell"]),
        single_arm_cells=[
            str(c) for c, k in zip(ds["cell"].values, arms_present, strict=True) if k < n_arms
        ],
        dropped=dict(cells.dropped),
        fingerprint=cells.fingerprint,
        arm_counts=(
            {str(a): int(n.sel(arm=a)) for a in ds["arm"].values} if cells.spec.multi_arm else {}
        ),
    )


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def run_card(
    card: str | Path | ModelCard,
    out: str | Path = "runs",
    *,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    quick: bool = False,
    progress: Progress | None = stderr,
    progressbar: bool | None = None,
    fit: Any = None,
    registry: RegistryArg = None,
) -> RunResult:
    """Run a model card end to end and write a new run folder under ``out``.

    Parameters
    ----------
    card:
        Path to ``models/<name>.toml`` (or a loaded :class:`ModelCard`).
    out:
        Parent folder of run folders (created if missing; a file is refused before any work).
    draws, tune, chains, seed:
        Override the card's ``[fit]`` settings (range-checked before any work).
    quick:
        Small sampling for a fast look (2 chains x 300 draws, 300 tuning steps).
    progress:
        Called with one line per step (default: print to stderr); ``None`` for silence.
    progressbar:
        Show the sampler's progress bar (default: when ``progress`` is set).
    fit:
        A fit of this card's model on this card's data (e.g. from a notebook): skips sampling.
    registry:
        The run registry the finished run is recorded in (a ``.duckdb`` path); default the
        card's ``[registry].path``, else ``<out>/registry.duckdb``; ``False``: not recorded. A
        registration that fails warns and leaves the run folder complete.

    Raises
    ------
    CardError, RunFolderError
        The card, a setting or ``out`` is invalid (exit code 2 in the CLI).
    DataValidationError
        The data cannot be read or does not match the card (exit code 3).
    FitError
        The sampler returned no usable posterior (exit code 4).
    KeyboardInterrupt
        Ctrl-C; nothing is left behind (exit code 130).
    """
    parent = check_parent(out)
    card = card if isinstance(card, ModelCard) else load_card(card)
    steps = Steps(7 + len(card.hierarchy.cross_validate), progress)
    created = _now()
    settings = card.fit_settings(quick=quick, draws=draws, tune=tune, chains=chains, seed=seed)
    steps(f"Card {card.name} v{card.version} is valid; loading data ({card.data.label})")
    cells = card.cells()
    data = describe_data(card, cells)
    steps(
        f"Validated and aggregated {data.n_units:,} rows into {data.n_cells} cells x "
        f"{len(card.experiment.arms)} arms; "
        "checking sample ratio and covariate balance"
    )
    tuning = "the sampler's" if settings["tune"] is None else settings["tune"]
    steps(
        f"Fitting the hierarchical model ({settings['chains']} chains x {settings['draws']} draws, "
        f"{tuning} tuning steps)"
    )
    t_fit = time.perf_counter()
    with interrupt_guard() as guard:
        if fit is None:
            fit = fit_model(
                cells, card, settings, progress is not None if progressbar is None else progressbar
            )
            guard.check("while sampling")
            check_fit(fit, settings)
        # what ran: the warm-up and sampler the fit resolved (a fallback to PyMC included)
        settings = {**settings, **given_fit_settings(fit)}
        fit_seconds = time.perf_counter() - t_fit
        steps(f"Fitted in {fit_seconds:.1f}s; computing decision tables")
        decision = card.decide(fit, cells=cells)
        view = card.decision_fit(fit)  # a pooled card decides about its target experiment
        held_out = cross_validation(card, fit, settings, steps)
        with staged_folder(parent, card.name) as stage:
            run = run_info(stage.final.name, created, quick, fit_seconds, settings)
            summary, tables = build_summary(card, view, decision, run, data)
            summary = dataclasses.replace(summary, cross_validation=held_out)
            steps(f"Writing the run folder {stage.final}")
            (stage.path / "summary.json").write_text(summary.to_json(), encoding="utf-8")
            if card.path is not None and Path(card.path).exists():
                shutil.copyfile(card.path, stage.path / "card.toml")
            else:  # a card built in memory: keep its content
                write_json(stage.path / "card.json", card.to_dict())
            write_tables(stage.path, tables)
            fit.save(stage.path / FIT_FILE)
            guard.check(f"while writing {FIT_FILE}")
            info = lineage(
                stage.final.name,
                card,
                summary.data,
                settings,
                getattr(fit, "lineage", {}),
                created,
                _now(),
            )
            if card.pooled:
                info["experiments"] = card.experiments
                info["decision_experiment"] = card.target_experiment
            write_json(stage.path / "lineage.json", info)
            memo_md, memo_html, figures = render(steps, stage, card, summary, view, decision)
            guard.check("while writing the run folder")
    location = resolve_location(registry, card.registry_path, default_location(parent))
    record = register_or_warn(stage.final, location)
    return finish(steps, RunResult(stage.final, summary, memo_md, memo_html, figures, record))


__all__ = ["FIT_FILE", "check_fit", "describe_data", "fit_model", "run_card", "run_info"]
