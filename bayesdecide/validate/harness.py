"""Run a fit over seeded replicates of a process with known truth and measure its calibration.

``run_calibration(process, replications, fit_fn=...)`` simulates replicate ``r`` with seed
``process.first_seed + r``, aggregates it to an EffectTable, calls ``fit_fn(effect_table,
process)`` (anything that returns an object with ``.tau``: chain, draw, cell, outcome) and records,
per estimand (cells, factor levels, all units; see :mod:`bayesdecide.validate.metrics`), the truth,
the posterior and the unpooled estimate. A replicate that raises is recorded with its error in
:attr:`CalibrationRun.replicates` (``status == "failed"``), warned about, and makes the process
fail its targets; the other replicates still run.

The targets (:data:`TARGETS`) the model is judged against, per process and outcome:

- cell-level 90% coverage, the mean over replicates of the share of cells whose 90% posterior
  interval contains the cell's true effect, within [0.85, 0.95];
- every factor level's (and the all-unit effect's) 95% posterior interval covers its true effect in
  at least 90% of replicates;
- every level's mean bias, the mean over replicates of (posterior mean - truth) / posterior sd,
  within +/- 0.5;
- the pooled RMSE of the cell effects (posterior mean against truth) below the unpooled RMSE (raw
  cell estimate against truth), over the cells with both arms.
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.validate.metrics import ALL_LEVEL, add_checks, replicate_records
from bayesdecide.validate.processes import Process

SEED_ATTR = "replicate_seed"
"""Key of ``effect_table.attrs`` that holds the replicate's seed (for seeding the fit)."""


class HasTau(Protocol):
    """What a fit function returns: posterior draws of the cell effects."""

    @property
    def tau(self) -> xr.DataArray: ...


FitFunction = Callable[[xr.Dataset, Process], HasTau]
"""``fit_fn(effect_table, process) -> object with .tau`` (dims chain, draw, cell, outcome)."""


@dataclass(frozen=True)
class HierarchicalFit:
    """The default fit function: :func:`bayesdecide.fit` with the process's model settings.

    Calls ``bd.fit(effect_table, factors=process.factors, interactions=process.interactions,
    outcomes=..., draws, tune, chains, seed=effect_table.attrs["replicate_seed"],
    progressbar=False, **options)``.

    Attributes
    ----------
    draws, chains:
        Posterior draws per chain and chains.
    tune:
        Tuning steps per chain (default: ``draws``).
    outcomes:
        ``"primary"`` (the process's primary outcome alone; the default, seconds per fit),
        ``"all"`` (every outcome jointly, as a model card fits them; 5-70x slower) or a tuple of
        outcome names.
    options:
        Further keyword arguments of ``bd.fit`` (priors, target_accept, sampler, ...).
    """

    draws: int = 1000
    chains: int = 4
    tune: int | None = None
    outcomes: str | tuple[str, ...] = "primary"
    options: Mapping[str, Any] = field(default_factory=dict)

    def fit_outcomes(self, process: Process) -> list[str] | None:
        """The outcomes passed to ``bd.fit`` (None: all)."""
        if self.outcomes == "primary":
            return [process.primary]
        if self.outcomes == "all":
            return None
        return list(self.outcomes)

    def __call__(self, effect_table: xr.Dataset, process: Process) -> Any:
        import bayesdecide

        return bayesdecide.fit(
            effect_table,
            factors=list(process.factors),
            interactions=[tuple(i) for i in process.interactions],
            outcomes=self.fit_outcomes(process),
            draws=self.draws,
            tune=self.draws if self.tune is None else self.tune,
            chains=self.chains,
            seed=int(effect_table.attrs.get(SEED_ATTR, 0)),
            progressbar=False,
            **dict(self.options),
        )

    def describe(self) -> str:
        tune = self.draws if self.tune is None else self.tune
        extra = f", {dict(self.options)}" if self.options else ""
        return (
            f"bd.fit, {self.chains} chains x {self.draws} draws ({tune} tuning steps), "
            f"outcomes: {self.outcomes if isinstance(self.outcomes, str) else list(self.outcomes)}"
            f"{extra}"
        )


@dataclass(frozen=True)
class Targets:
    """Calibration targets per process and outcome.

    Attributes
    ----------
    cell_coverage:
        Accepted range of the mean cell-level coverage of 90% posterior intervals.
    level_coverage:
        Minimum share of replicates in which each level's 95% posterior interval covers.
    level_bias_sd:
        Maximum absolute mean bias of each level, in posterior sds.
    """

    cell_coverage: tuple[float, float] = (0.85, 0.95)
    level_coverage: float = 0.90
    level_bias_sd: float = 0.5


TARGETS = Targets()


@dataclass
class CalibrationRun:
    """The records of one process's replicates and the tables computed from them.

    Attributes
    ----------
    process:
        The process.
    outcomes:
        Outcomes recorded.
    fit_description:
        What fitted the replicates (e.g. ``HierarchicalFit.describe()``).
    records:
        One row per replicate x outcome x estimand: ``replicate``, ``seed`` and the columns of
        :func:`~bayesdecide.validate.metrics.replicate_records`.
    replicates:
        One row per replicate: ``replicate``, ``seed``, ``status`` (``"ok"``/``"failed"``),
        ``error`` (type and message), ``traceback``, ``seconds`` (simulate, aggregate, fit,
        record), ``fit_seconds``, ``units``, ``cells``, ``single_arm_cells``, the fit's
        ``max_rhat``, ``min_ess_bulk`` and ``divergences`` where it reports them, ``relative``
        (the outcomes it pooled as relative lifts, comma-separated: ``fit.inputs.relative``), and
        ``warnings`` (count) with ``warning_messages`` (distinct, shortened).
    seconds:
        Wall time of the whole run.
    """

    process: Process
    outcomes: tuple[str, ...]
    fit_description: str
    records: pd.DataFrame
    replicates: pd.DataFrame
    seconds: float

    @property
    def failures(self) -> pd.DataFrame:
        """The replicates that raised, with their error and traceback."""
        return self.replicates[self.replicates["status"] == "failed"]

    @property
    def n_ok(self) -> int:
        return int((self.replicates["status"] == "ok").sum())

    def checked(self) -> pd.DataFrame:
        """:attr:`records` with coverage, error, z and width columns (see ``add_checks``)."""
        return add_checks(self.records)

    def cells(self) -> pd.DataFrame:
        """Per outcome and cell, over replicates: mean truth, 90% coverage, mean bias.

        Columns: ``replicates``, ``truth`` (mean), ``cover90`` / ``raw_cover90`` (share of
        replicates whose 90% interval covered; unpooled over replicates where the cell has both
        arms), ``bias`` (mean posterior mean - truth, outcome units), ``bias_sd`` (mean z, posterior
        sds) with ``bias_sd_se`` its standard error over the replicates, ``raw_bias``,
        ``raw_bias_se``, ``post_sd`` and ``raw_se`` (means).
        """
        rec = self.checked()
        rec = rec[rec["kind"] == "cell"]
        return _aggregate(rec, ["outcome", "level"], cover="cover90").rename_axis(
            index={"level": "cell"}
        )

    def levels(self, targets: Targets = TARGETS) -> pd.DataFrame:
        """Per outcome, factor and level (and all units), over replicates: coverage and bias.

        Columns: ``replicates``; ``truth`` (mean over replicates of the true level effect);
        ``cover95`` (share of replicates whose 95% posterior interval covered); ``bias`` (mean of
        posterior mean - truth, outcome units); ``bias_sd`` (mean of that error in posterior sds);
        ``post_sd`` (mean posterior sd); the unpooled ``raw_cover95``, ``raw_bias``,
        ``raw_bias_se`` and ``raw_se``; ``pass_coverage`` (``cover95 >= targets.level_coverage``)
        and ``pass_bias`` (``|bias_sd| <= targets.level_bias_sd``).

        The Monte Carlo error of these figures, so that a miss can be told from chance:
        ``bias_sd_se`` (standard error of ``bias_sd`` over the replicates: their sd of z over the
        root of their number) and ``cover95_p`` (the probability of coverage this low or lower
        in this many replicates if the 95% interval covered exactly 95% of the time, binomial).

        What pooling itself costs at this truth: ``oracle_bias_sd`` and ``oracle_cover95``, the
        same figures for the unpooled estimates pooled with the true mean and spread of the
        factor's levels (:mod:`bayesdecide.validate.oracle`; NaN for all units). A level whose
        oracle misses a target misses it because it is pooled, whatever the engine.
        """
        rec = self.checked()
        rec = rec[rec["kind"] != "cell"]
        out = _aggregate(rec, ["outcome", "factor", "level"], cover="cover95")
        grouped = rec.groupby(["outcome", "factor", "level"], sort=False)
        out["oracle_bias_sd"] = grouped["oracle_z"].mean()
        out["oracle_cover95"] = grouped["oracle_cover95"].mean()
        n_covered = grouped["cover95"].count()
        out["cover95_p"] = _coverage_p_value(out["cover95"], n_covered, 0.95)
        out["pass_coverage"] = out["cover95"] >= targets.level_coverage
        out["pass_bias"] = out["bias_sd"].abs() <= targets.level_bias_sd
        return out

    def summary(self, targets: Targets = TARGETS) -> pd.DataFrame:
        """One row per outcome: the calibration table of this process (see :func:`summarize`)."""
        return summarize(self, targets)


def _coverage_p_value(cover: pd.Series, replicates: pd.Series, nominal: float) -> pd.Series:
    """P(X <= covered) for X ~ Binomial(replicates, nominal): how often an interval of exactly
    nominal coverage covers this rarely or more rarely over this many replicates."""
    from scipy.stats import binom

    covered = np.round(cover.to_numpy(float) * replicates.to_numpy(float))
    return pd.Series(binom.cdf(covered, replicates.to_numpy(float), nominal), index=cover.index)


def _aggregate(rec: pd.DataFrame, keys: list[str], cover: str) -> pd.DataFrame:
    raw_cover = f"raw_{cover}"
    grouped = rec.groupby(keys, sort=False)
    out = pd.DataFrame(
        {
            "replicates": grouped.size(),
            "truth": grouped["truth"].mean(),
            cover: grouped[cover].mean(),
            "bias": grouped["error"].mean(),
            "bias_sd": grouped["z"].mean(),
            "bias_sd_se": grouped["z"].std(ddof=1) / np.sqrt(grouped["z"].count()),
            "post_sd": grouped["post_sd"].mean(),
            raw_cover: grouped[raw_cover].mean(),
            "raw_bias": grouped["raw_error"].mean(),
            "raw_bias_se": grouped["raw_z"].mean(),
            "raw_se": grouped["raw_se"].mean(),
        }
    )
    return out


SUMMARY_COLUMNS = (
    "process",
    "outcome",
    "replications",
    "failed",
    "cells",
    "cell_cov90",
    "cell_cov90_min",
    "cell_cov90_max",
    "raw_cell_cov90",
    "rmse",
    "raw_rmse",
    "width90",
    "raw_width90",
    "level_cov95_min",
    "level_cov95_worst",
    "level_bias_sd_max",
    "level_bias_worst",
    "overall_truth",
    "overall_cov95",
    "overall_bias",
    "overall_bias_sd",
    "raw_overall_cov95",
    "raw_overall_bias",
    "pass_cell_coverage",
    "pass_level_coverage",
    "pass_level_bias",
    "pass_rmse",
    "pass_all",
    "fit_seconds",
)


def summarize(run: CalibrationRun, targets: Targets = TARGETS) -> pd.DataFrame:
    """The calibration table of one run: one row per outcome, columns :data:`SUMMARY_COLUMNS`.

    - ``replications`` (that ran), ``failed`` (that raised), ``cells`` (median per replicate);
    - ``cell_cov90``: mean over replicates of the share of cells (single-arm cells included) whose
      90% posterior interval contains the true cell effect; ``cell_cov90_min``/``_max`` its range
      over replicates; ``raw_cell_cov90`` the same for the unpooled 90% intervals (cells with both
      arms);
    - ``rmse`` / ``raw_rmse``: root mean square over replicates and cells with both arms of
      posterior mean - truth / raw estimate - truth (outcome units);
    - ``width90`` / ``raw_width90``: mean width of the cells' 90% intervals over the same cells;
    - ``level_cov95_min``: the lowest 95% coverage over levels (all units included), and
      ``level_cov95_worst`` which level (``factor=level``); ``level_bias_sd_max``: the largest
      absolute mean bias in posterior sds, ``level_bias_worst`` which level;
    - ``overall_*``: the all-unit effect's mean truth, 95% coverage, mean bias (outcome units)
      and mean bias in posterior sds; ``raw_overall_*`` the unpooled coverage and bias;
    - ``pass_*``: the targets (:class:`Targets`); ``pass_all`` also needs no failed replicate;
    - ``fit_seconds``: mean wall time of one fit.
    """
    rows = []
    reps = run.replicates
    ok = reps[reps["status"] == "ok"]
    failed = int((reps["status"] == "failed").sum())
    if run.records.empty:
        for outcome in run.outcomes:
            row = dict.fromkeys(SUMMARY_COLUMNS, np.nan)
            row.update(process=run.process.name, outcome=outcome, replications=0, failed=failed)
            row.update({k: False for k in SUMMARY_COLUMNS if k.startswith("pass_")})
            rows.append(row)
        return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    rec = run.checked()
    levels = run.levels(targets)
    for outcome in run.outcomes:
        r = rec[rec["outcome"] == outcome]
        cells = r[r["kind"] == "cell"]
        per_rep = cells.groupby("replicate")["cover90"].mean()
        obs = cells[cells["raw_estimate"].notna()]
        lv = levels.loc[outcome]
        overall = lv.loc[("all", ALL_LEVEL)]
        worst_cov = lv["cover95"].idxmin()
        worst_bias = lv["bias_sd"].abs().idxmax()
        lo, hi = targets.cell_coverage
        row = {
            "process": run.process.name,
            "outcome": outcome,
            "replications": int(r["replicate"].nunique()),
            "failed": failed,
            "cells": float(cells.groupby("replicate").size().median()),
            "cell_cov90": float(per_rep.mean()),
            "cell_cov90_min": float(per_rep.min()),
            "cell_cov90_max": float(per_rep.max()),
            "raw_cell_cov90": float(obs["raw_cover90"].mean()),
            "rmse": float(np.sqrt(np.mean(obs["error"] ** 2))),
            "raw_rmse": float(np.sqrt(np.mean(obs["raw_error"] ** 2))),
            "width90": float(obs["width90"].mean()),
            "raw_width90": float(obs["raw_width90"].mean()),
            "level_cov95_min": float(lv["cover95"].min()),
            "level_cov95_worst": "=".join(worst_cov),
            "level_bias_sd_max": float(lv["bias_sd"].abs().max()),
            "level_bias_worst": "=".join(worst_bias),
            "overall_truth": float(overall["truth"]),
            "overall_cov95": float(overall["cover95"]),
            "overall_bias": float(overall["bias"]),
            "overall_bias_sd": float(overall["bias_sd"]),
            "raw_overall_cov95": float(overall["raw_cover95"]),
            "raw_overall_bias": float(overall["raw_bias"]),
        }
        row["pass_cell_coverage"] = bool(lo <= row["cell_cov90"] <= hi)
        row["pass_level_coverage"] = bool(lv["pass_coverage"].all())
        row["pass_level_bias"] = bool(lv["pass_bias"].all())
        row["pass_rmse"] = bool(row["rmse"] < row["raw_rmse"])
        row["pass_all"] = bool(
            failed == 0
            and row["pass_cell_coverage"]
            and row["pass_level_coverage"]
            and row["pass_level_bias"]
            and row["pass_rmse"]
        )
        row["fit_seconds"] = float(ok["fit_seconds"].mean())
        rows.append(row)
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def calibration_table(runs: Sequence[CalibrationRun], targets: Targets = TARGETS) -> pd.DataFrame:
    """The calibration tables of several runs, one row per process and outcome."""
    return pd.concat([run.summary(targets) for run in runs], ignore_index=True)


def level_table(runs: Sequence[CalibrationRun], targets: Targets = TARGETS) -> pd.DataFrame:
    """The level tables of several runs (:meth:`CalibrationRun.levels`), with a ``process`` key."""
    return pd.concat(
        {run.process.name: run.levels(targets) for run in runs}, names=["process"]
    ).reset_index()


def _record_outcomes(
    outcomes: str | Sequence[str] | None, process: Process, tau: xr.DataArray, spec_outcomes: list
) -> tuple[str, ...]:
    if outcomes is None:
        return (process.primary,)
    if isinstance(outcomes, str):
        if outcomes == "all":
            fitted = {str(o) for o in tau["outcome"].values}
            return tuple(o for o in spec_outcomes if o in fitted)
        return (outcomes,)
    return tuple(outcomes)


def _diagnostics(fitted: Any) -> dict[str, float]:
    diag = getattr(fitted, "diagnostics", None)
    if not isinstance(diag, Mapping):
        return {}
    out = {}
    for key in ("max_rhat", "min_ess_bulk", "divergences"):
        try:
            out[key] = float(diag[key])
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _relative(fitted: Any) -> str:
    """The outcomes the fit pooled as relative lifts (``fit.inputs.relative``), comma-separated."""
    try:
        return ", ".join(fitted.inputs.relative)
    except AttributeError:
        return ""


def _messages(caught: list[warnings.WarningMessage], limit: int = 3, width: int = 160) -> str:
    distinct = list(dict.fromkeys((str(w.message).splitlines() or [""])[0][:width] for w in caught))
    more = f" (+{len(distinct) - limit} more)" if len(distinct) > limit else ""
    return " | ".join(distinct[:limit]) + more


def run_calibration(
    process: Process,
    replications: int = 20,
    *,
    fit_fn: FitFunction | None = None,
    seeds: Sequence[int] | None = None,
    outcomes: str | Sequence[str] | None = None,
    fit_description: str | None = None,
    raise_errors: bool = False,
    progress: Callable[[str], None] | None = None,
) -> CalibrationRun:
    """Fit ``replications`` seeded replicates of ``process`` and record calibration against truth.

    Parameters
    ----------
    process:
        The data-generating process (e.g. ``PROCESSES["retention"]``).
    replications:
        Number of replicates; replicate ``r`` uses seed ``process.first_seed + r``.
    fit_fn:
        ``fit_fn(effect_table, process) -> object with .tau`` (default:
        :class:`HierarchicalFit`, ``bd.fit`` at 4 chains x 1000 draws on the primary outcome).
        The replicate's seed is in ``effect_table.attrs["replicate_seed"]``.
    seeds:
        Explicit replicate seeds (overrides ``replications``).
    outcomes:
        Outcomes to record: None (the process's primary outcome), ``"all"`` (every outcome of the
        spec in the posterior) or names.
    fit_description:
        How the fit is described in reports (default: ``fit_fn.describe()`` when it has one).
    raise_errors:
        Re-raise a replicate's exception instead of recording it (for debugging).
    progress:
        Called with one line per replicate (e.g. ``print``).

    Returns
    -------
    CalibrationRun
        The records, the replicate log (failures with their errors) and the tables.
    """
    fit_fn = HierarchicalFit() if fit_fn is None else fit_fn
    if fit_description is None:
        describe = getattr(fit_fn, "describe", None)
        fit_description = describe() if callable(describe) else repr(fit_fn)
    seeds = list(seeds) if seeds is not None else process.seeds(replications)
    recorded: tuple[str, ...] | None = None
    frames, log = [], []
    started = time.perf_counter()
    for r, seed in enumerate(seeds):
        t0 = time.perf_counter()
        entry: dict[str, Any] = {"replicate": r, "seed": int(seed), "status": "ok", "error": ""}
        entry["traceback"] = ""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                sim = process.simulate(int(seed))
                table = process.effect_table(sim)
                table.attrs[SEED_ATTR] = int(seed)
                n = table["n_control"].values + table["n_treatment"].values
                entry.update(
                    units=float(n.sum()),
                    cells=int(table.sizes["cell"]),
                    single_arm_cells=int((~table["observed"].values.astype(bool)).sum()),
                )
                t_fit = time.perf_counter()
                fitted = fit_fn(table, process)
                entry["fit_seconds"] = time.perf_counter() - t_fit
                entry.update(_diagnostics(fitted))
                entry["relative"] = _relative(fitted)
                tau = fitted.tau
                these = _record_outcomes(outcomes, process, tau, sim.spec.outcome_names)
                recorded = recorded or these
                values = tau.sel(outcome=list(these)).values
                if not np.all(np.isfinite(values)):
                    raise ValueError("the posterior draws of tau contain NaN or inf")
                rec = replicate_records(tau, table, sim.true_cell_effects(), these, sim.spec.groups)
            except Exception as err:
                if raise_errors:
                    raise
                entry.update(
                    status="failed",
                    error=f"{type(err).__name__}: {err}",
                    traceback=traceback.format_exc(),
                )
            else:
                rec.insert(0, "seed", int(seed))
                rec.insert(0, "replicate", r)
                frames.append(rec)
        entry["seconds"] = time.perf_counter() - t0
        entry["warnings"] = len(caught)
        entry["warning_messages"] = _messages(caught)
        log.append(entry)
        if entry["status"] == "failed":
            warnings.warn(
                f"{process.name}: replicate {r} (seed {seed}) failed: {entry['error']}",
                stacklevel=2,
            )
        if progress is not None:
            status = entry["status"] if entry["status"] == "ok" else f"FAILED {entry['error']}"
            progress(
                f"{process.name} replicate {r + 1}/{len(seeds)} seed {seed}: {status} "
                f"({entry['seconds']:.1f} s)"
            )
    columns = [
        "replicate",
        "seed",
        "status",
        "error",
        "traceback",
        "seconds",
        "fit_seconds",
        "units",
        "cells",
        "single_arm_cells",
        "max_rhat",
        "min_ess_bulk",
        "divergences",
        "relative",
        "warnings",
        "warning_messages",
    ]
    replicates = pd.DataFrame(log).reindex(columns=columns)
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if recorded is None:
        recorded = (
            (process.primary,)
            if outcomes is None
            else ((outcomes,) if isinstance(outcomes, str) else tuple(outcomes))
        )
    return CalibrationRun(
        process=process,
        outcomes=recorded,
        fit_description=fit_description,
        records=records,
        replicates=replicates,
        seconds=time.perf_counter() - started,
    )


__all__ = [
    "SEED_ATTR",
    "SUMMARY_COLUMNS",
    "TARGETS",
    "CalibrationRun",
    "FitFunction",
    "HasTau",
    "HierarchicalFit",
    "Targets",
    "calibration_table",
    "level_table",
    "run_calibration",
    "summarize",
]
