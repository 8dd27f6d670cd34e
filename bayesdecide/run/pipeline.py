"""One decision run: card -> data -> cell statistics -> fit -> decision -> run folder.

:func:`run_card` validates the card, loads the data (simulator or file through DuckDB), checks and
aggregates it (:func:`bayesdecide.cell_stats`), fits the hierarchical model, builds the
:class:`~bayesdecide.decide.Decision` from the card's value model, launch population, policies and
pre-registered rules, runs the data and sampler checks, and writes a new run folder::

    runs/<card>-<YYYYmmdd-HHMMSS>[-N]/
        memo.md, memo.html      the decision memo (HTML self-contained, figures embedded)
        summary.json            every decision number (money in dollars at launch scale)
        lineage.json            card hash, spec and data fingerprints, versions, settings, times
        card.toml               the exact card that ran
        figures/*.png           the memo's figures
        tables/*.csv            policies, guardrails, break-even, sensitivity, effects, ...
        fit.nc                  the saved fit (Fit.save), re-used by `bayesdecide memo`

:func:`rerender` answers new decision questions from a saved run without refitting: it applies
``--set`` overrides to the run's card (costs, weights, launch mix, rules ...), rebuilds the decision
from the saved fit and writes a new sub-folder ``rerenders/<timestamp>[-N]/`` of the run.
Runs never overwrite one another.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.card import CardError, ModelCard, card_from_dict, load_card

QUICK = {"draws": 300, "tune": 300, "chains": 2}
DEFAULT_FIT = {"draws": 1000, "tune": 1000, "chains": 4, "seed": 20260309}
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
FIT_FILE = "fit.nc"
POLICY_LABELS = {
    "treat_none": "Treat none",
    "treat_all": "Treat all",
    "optimal": "Optimal targeting",
}

Progress = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunResult:
    """What a run wrote: its folder, the summary dict, and the paths of memo and figures."""

    folder: Path
    summary: dict[str, Any]
    memo_md: Path
    memo_html: Path
    figures: dict[str, Path]


class _Steps:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.i, self.progress = total, 0, progress
        self.t0 = self.last = time.perf_counter()

    def __call__(self, msg: str) -> None:
        now = time.perf_counter()
        self.i += 1
        if self.progress is not None:
            self.progress(f"[{self.i}/{self.total}] {msg}")
        self.last = now

    def done(self, msg: str) -> None:
        if self.progress is not None:
            self.progress(f"{msg} in {time.perf_counter() - self.t0:.1f}s")


# ---------------------------------------------------------------------------------------------
# folders
# ---------------------------------------------------------------------------------------------


def new_folder(parent: str | Path, stem: str) -> Path:
    """Create ``parent/<stem>-<YYYYmmdd-HHMMSS>`` (``-2``, ``-3`` ... if taken) and return it."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stem}-{stamp}" if stem else stamp
    for k in range(1, 10_000):
        folder = parent / (base if k == 1 else f"{base}-{k}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new folder under {parent}")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# card -> decision settings
# ---------------------------------------------------------------------------------------------


def decision_settings(card: ModelCard) -> tuple[Any, dict[str, str]]:
    """The card's :class:`~bayesdecide.decide.DecisionSettings` and display labels of policies.

    Card policies with ``all = true`` / ``none = true`` become the canonical ``treat_all`` /
    ``treat_none`` (labelled with the card's names).
    """
    from bayesdecide.decide import DecisionSettings, Policy, Population, ValueModel
    from bayesdecide.decide.guardrails import guardrail_from_dict

    labels = dict(POLICY_LABELS)
    policies = []
    for p in card.policies:
        if p.treat_all:
            labels["treat_all"] = p.name
        elif p.treat_none:
            labels["treat_none"] = p.name
        else:
            policies.append(Policy(p.name, rule={f: list(v) for f, v in p.treat.items()}))
            labels[p.name] = p.name
    vm = ValueModel(
        weights=card.value.weights,
        benefits=card.value.transport_outcomes or None,
        name="net_value",
    )
    pop = Population(
        n_eligible=card.launch.eligible,
        mix=card.launch.mix,
        fixed_cost=card.launch.fixed_cost,
        transport_multiplier=card.launch.transport_multiplier,
        fixed_cost_scaling=card.launch.fixed_cost_scaling,  # type: ignore[arg-type]
        min_cost_share=card.launch.min_cost_share,
    )
    d = card.decision
    settings = DecisionSettings(
        value_model=vm,
        population=pop,
        policies=tuple(policies),
        guardrails=tuple(guardrail_from_dict(r.to_guardrail()) for r in card.rules),
        loss_threshold=card.launch.large_loss,
        decision_threshold=float(d.get("decision_threshold", 0.8)),
        break_even_assumptions=tuple(d["break_even"]) if "break_even" in d else None,
        include_optimal=bool(d.get("include_optimal", True)),
        ci_prob=float(d.get("ci_prob", 0.95)),
    )
    return settings, labels


# ---------------------------------------------------------------------------------------------
# fitting (the one place that talks to bayesdecide.model.fitting)
# ---------------------------------------------------------------------------------------------


def fit_settings(
    card: ModelCard,
    *,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    quick: bool = False,
) -> dict[str, Any]:
    """Sampler settings: defaults < card [fit] < --quick < explicit arguments."""
    s = {**DEFAULT_FIT, **card.fit}
    if quick:
        s.update(QUICK)
    for k, v in (("draws", draws), ("tune", tune), ("chains", chains), ("seed", seed)):
        if v is not None:
            s[k] = v
    return s


def fit_model(cells: Any, card: ModelCard, settings: Mapping[str, Any], progress: bool) -> Any:
    """Fit the card's hierarchical model on the cell statistics with :func:`bayesdecide.model.fitting`."""
    from bayesdecide.model.fitting import fit as bd_fit
    from bayesdecide.model.priors import Prior

    # typed priors (the card holds plain tables); Fit.save/load round-trips Prior objects
    priors = {name: Prior.from_dict(p) for name, p in card.priors.items()} or None
    return bd_fit(
        cells,
        card.spec,
        factors=card.hierarchy.factors,
        interactions=card.hierarchy.interactions,
        priors=priors,
        progressbar=progress,
        **dict(settings),
    )


def _given_fit_settings(fit: Any) -> dict[str, Any]:
    post = fit.idata.posterior
    out: dict[str, Any] = {"chains": int(post.sizes["chain"]), "draws": int(post.sizes["draw"])}
    lin = getattr(fit, "lineage", None) or {}
    for k in ("tune", "seed"):
        if k in lin:
            out[k] = lin[k]
        elif k in lin.get("settings", {}):
            out[k] = lin["settings"][k]
    return out


def load_fit(path: Path) -> Any:
    from bayesdecide.model.fitting import Fit

    return Fit.load(path)


# ---------------------------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------------------------


def _json(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _json(v) for k, v in x.items()}
    if isinstance(x, list | tuple | np.ndarray | pd.Index):
        return [_json(v) for v in x]
    if isinstance(x, np.bool_ | bool):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    return x


def _sample_flat(da: xr.DataArray) -> xr.DataArray:
    dims = [d for d in ("chain", "draw") if d in da.dims]
    return da.stack(sample=dims)


def _sensitivity_grids(card: ModelCard, break_even: pd.DataFrame) -> dict[str, np.ndarray]:
    """Grids for the sensitivity curves, wide enough to show the break-even when it is near."""

    def be(name: str) -> float:
        row = break_even[break_even["assumption"] == name]
        return float(row["median"].iloc[0]) if len(row) else float("nan")

    tm = card.launch.transport_multiplier
    b = be("transport_multiplier")
    lo = min(0.4, 0.8 * b) if np.isfinite(b) and b > 0 else 0.4
    hi = max(1.2, 1.2 * tm, 1.2 * b if np.isfinite(b) and b < 3 else 0)
    grids = {"transport_multiplier": np.round(np.linspace(max(lo, 0.0), hi, 17), 4)}
    for name, value in card.value.assumption_values().items():
        label = f"{card.value.assumptions[name]}_penalty"
        b = be(label)
        top = 3 * value if value > 0 else 100.0
        if np.isfinite(b) and b > top and b < 30 * max(value, 1.0):
            top = 1.25 * b
        grids[label] = np.linspace(0.0, top, 13)
    grids["fixed_cost"] = np.linspace(0.0, max(3 * card.launch.fixed_cost, 1.0), 13)
    return grids


def _describe_cells(
    cells: list[str], tau: xr.DataArray, share: xr.DataArray, factors: Sequence[str]
) -> str:
    """One sentence on the cells a policy treats (listed when few, counted per level when many)."""
    n_all = tau.sizes["cell"]
    if not cells:
        return "treats nobody"
    frac = float(share.sel(cell=cells).sum())
    text = f"treats {len(cells)} of {n_all} cells ({frac:.0%} of customers)"
    if len(cells) <= 10:
        return text + ": " + "; ".join(cells) + "."
    parts = []
    for f in factors:
        labels = pd.Series(tau[f].values, index=[str(c) for c in tau["cell"].values])
        chosen = labels.loc[cells].value_counts()
        total = labels.value_counts(sort=False)
        parts.append(
            f"{f.replace('_', ' ')} "
            + ", ".join(f"{lv} {int(chosen.get(lv, 0))}/{int(total[lv])}" for lv in total.index)
        )
    return text + "; treated cells per level: " + "; ".join(parts) + "."


def build_summary(
    card: ModelCard,
    fit: Any,
    decision: Any,
    checks: Any,
    labels: Mapping[str, str],
    run_info: Mapping[str, Any],
    data_info: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """The run's summary dict (``summary.json``) and its tables (``tables/*.csv``)."""
    from bayesdecide.data.effects import average_effect
    from bayesdecide.report.plots import level_effects
    from bayesdecide.report.recommend import recommend

    tau = fit.idata.posterior["tau"]
    share = fit.cell_share
    s = decision.to_dict()
    tables: dict[str, pd.DataFrame] = {}
    # effects: add P(> 0) and the unpooled average
    avg = (_sample_flat(tau) * share).sum("cell")
    for k in s["effects"]:
        s["effects"][k]["prob_positive"] = float((avg.sel(outcome=k) > 0).mean())
    raw = average_effect(fit.effects, share) if fit.effects is not None else None
    if raw is not None:
        s["raw_effects"] = {
            str(k): {
                "estimate": float(raw["estimate"].sel(outcome=k)),
                "std_error": float(raw["std_error"].sel(outcome=k)),
            }
            for k in raw["outcome"].values
        }
    tables["effects"] = decision.effects_table()
    # policies and rules
    s["policy_labels"] = {p: labels.get(p, p) for p in s["policies"]}
    descr = {r.name: r.text() for r in card.rules}
    gt = decision.guardrail_table()
    comp = {(r["rule"], r["policy"]): r.get("comparison", ">=") for _, r in gt.iterrows()}
    for g in s["guardrails"]:
        g["description"] = descr.get(g["rule"], g["rule"])
        g["comparison"] = comp.get((g["rule"], g["policy"]), ">=")
    tables["policies"] = decision.policy_table()
    tables["guardrails"] = gt
    if s.get("optimal_cells") is not None:
        s["optimal_description"] = _describe_cells(
            s["optimal_cells"], tau, share, card.hierarchy.factors
        )
    # break-even and sensitivity
    tables["break_even"] = decision.break_even_table()
    pol = decision.break_even_policy
    be_pol = tables["break_even"][tables["break_even"]["policy"] == pol]
    sens_rows = []
    s["sensitivity"] = {}
    for name, grid in _sensitivity_grids(card, be_pol).items():
        t = decision.sensitivity(name, grid, policies=[pol])
        sens_rows.append(t)
        s["sensitivity"][name] = {
            "policy": pol,
            "rows": t[["value", "expected_value", "p10", "p90", "prob_positive"]].to_dict(
                "records"
            ),
        }
    tables["sensitivity"] = pd.concat(sens_rows, ignore_index=True)
    # heterogeneity on the primary outcome
    primary = card.primary_outcome
    het = {}
    het_tables = []
    for f in card.hierarchy.factors:
        t = level_effects(fit.effects, tau, primary, f, share, ci_prob=0.9)
        het[f] = [
            {
                "level": lv,
                "mean": r["pooled"],
                "ci_lower": r["pooled_lower"],
                "ci_upper": r["pooled_upper"],
                "prob_positive": r["prob_positive"],
                "raw": r["raw"],
                "raw_lower": r["raw_lower"],
                "raw_upper": r["raw_upper"],
                "n": r["n"],
            }
            for lv, r in t.iterrows()
        ]
        het_tables.append(t.reset_index().assign(factor=f))
    s["heterogeneity"] = het
    tables["heterogeneity"] = pd.concat(het_tables, ignore_index=True)
    # region comparison
    factor = card.decision.get("compare_factor", "region")
    if factor in card.hierarchy.factors:
        lc = decision.compare(factor)
        rank1 = lc.ranks[1] if 1 in lc.ranks.columns else None
        s["region_comparison"] = {
            "factor": factor,
            "quantity": lc.quantity,
            "summary": [
                {**r, "prob_best": float(rank1.loc[r["level"]]) if rank1 is not None else None}
                for r in lc.summary.to_dict("records")
            ],
            "pairwise": {
                str(a): {str(b): float(v) for b, v in row.items()}
                for a, row in lc.pairwise.iterrows()
            },
        }
        tables["region_comparison"] = lc.summary
        tables["region_pairwise"] = lc.pairwise
    # value of information
    try:
        voi = decision.value_of_information()
        tables["value_of_information"] = voi
        top = voi[voi["factor"] == "all"].iloc[0]
        s["value_of_information"] = {
            "evpi_policies": float(top["evpi_policies"]),
            "evpi_targeting": float(top["evpi_targeting"]),
        }
    except Exception as exc:  # noqa: BLE001 - value of information is optional in the memo
        s["value_of_information"] = None
        s.setdefault("warnings", []).append(f"value of information not computed: {exc}")
    # diagnostics and checks
    diag = dict(getattr(fit, "diagnostics", {}) or {})
    s["diagnostics"] = {k: diag.get(k) for k in ("max_rhat", "min_ess_bulk", "divergences")} | {
        k: v for k, v in diag.items() if k not in ("max_rhat", "min_ess_bulk", "divergences")
    }
    s["checks"] = checks.to_dict()
    tables["balance"] = checks.balance.reset_index()
    # context for the memo
    exp = card.experiment
    s["card"] = {
        "name": card.name,
        "version": card.version,
        "title": card.title,
        "decision": card.info.get("decision", ""),
        "description": card.info.get("description", ""),
        "owner": card.info.get("owner", ""),
        "sha256": card.sha256,
    }
    s["experiment"] = {
        k: exp.get(k)
        for k in ("estimand", "horizon", "population", "randomization_unit", "covariates")
        if k in exp
    } | {"assignment_share": card.assignment_share}
    s["outcomes"] = {
        o.name: {
            "label": o.label,
            "kind": o.kind.value,
            "unit": o.unit,
            "role": card.outcome_roles.get(o.name, ""),
        }
        for o in card.outcomes
    }
    s["primary_outcome"] = primary
    s["hierarchy"] = {
        "factors": list(card.hierarchy.factors),
        "interactions": [list(i) for i in card.hierarchy.interactions],
    }
    s["priors"] = {k: ", ".join(f"{a}={b}" for a, b in v.items()) for k, v in card.priors.items()}
    s["settings"].update(
        {
            "weights": dict(decision.settings.value_model.weights),
            "assumptions": {
                name: -decision.settings.value_model.weights.get(o, 0.0)
                for name, o in card.value.assumptions.items()
            },
            "transport_outcomes": list(decision.settings.value_model.benefit_outcomes),
            "min_cost_share": decision.settings.population.min_cost_share,
            "mix": card.launch.mix,
            "value_description": card.value.description,
        }
    )
    s["data"] = dict(data_info)
    s["run"] = dict(run_info)
    s["lineage"] = {
        "run_id": run_info.get("id"),
        "card_sha256": card.sha256,
        "spec_fingerprint": card.spec.fingerprint(),
        "data_fingerprint": data_info.get("fingerprint"),
        "data_source": data_info.get("source"),
        "parent_run": run_info.get("parent"),
    }
    s["lineage"] = {k: v for k, v in s["lineage"].items() if v is not None}
    s = _json(s)
    s["recommendation"] = recommend(s)
    return s, tables


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


def make_figures(
    summary: Mapping[str, Any], fit: Any, decision: Any, folder: Path, card: ModelCard
) -> dict[str, Path]:
    """Draw the memo's figures into ``folder`` (PNG); returns name -> path."""
    from bayesdecide.report import plots

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    tau = fit.idata.posterior["tau"]
    primary = card.primary_outcome
    po = summary["outcomes"][primary]
    labels = summary.get("policy_labels", {})

    def save(name: str, fig: Any) -> None:
        path = folder / f"{name}.png"
        plots.save(fig, path)
        out[name] = path

    if fit.effects is not None:
        save(
            "shrinkage",
            plots.effects_shrinkage(fit.effects, tau, primary, label=po["label"], unit=po["unit"]),
        )
        save(
            "effects_by_factor",
            plots.effects_by_factor(
                fit.effects,
                tau,
                primary,
                list(card.hierarchy.factors),
                fit.cell_share,
                label=po["label"],
                unit=po["unit"],
            ),
        )
    rec = summary["recommendation"]
    focus = rec.get("policy") or rec.get("rule_policy") or decision.break_even_policy
    save(
        "value_posterior",
        plots.value_posterior(
            decision.policy_values.sel(policy=focus),
            policy=labels.get(focus, focus),
            large_loss=summary["settings"].get("loss_threshold"),
        ),
    )
    pt = pd.DataFrame(summary["policies"]).T.astype(float)
    pt.index = [labels.get(p, p) for p in pt.index]
    save("policy_values", plots.policy_values(pt, recommended=labels.get(focus, focus)))
    rows = [
        {
            "rule": g["rule"],
            "policy": labels.get(g["policy"], g["policy"]),
            "probability": g["probability"],
            "passes": g["passes"],
            "required": g["threshold"],
            "comparison": g.get("comparison", ">="),
        }
        for g in summary["guardrails"]
        if g["policy"] != "treat_none"  # the status quo is not held to the rules
    ]
    if rows:
        save("guardrails", plots.guardrail_probabilities(rows))
    curves = {
        name: pd.DataFrame(v["rows"]).set_index("value")
        for name, v in summary["sensitivity"].items()
        if name != "fixed_cost"
    }
    be = summary.get("break_even", {})
    current = {
        name: be[name]["current"]
        for name in curves
        if name in be and be[name].get("current") is not None
    }
    pol = next(iter(summary["sensitivity"].values()))["policy"] if summary["sensitivity"] else ""
    save(
        "sensitivity",
        plots.sensitivity_curves(
            curves, break_even=be, current=current, policy=labels.get(pol, pol)
        ),
    )
    comp = summary.get("region_comparison")
    if comp:
        prob = pd.DataFrame(comp["pairwise"]).T
        save(
            "region_comparison",
            plots.region_comparison(
                prob,
                title=f"P(row {comp['factor']} has higher net value per customer than column)",
            ),
        )
    return out


# ---------------------------------------------------------------------------------------------
# lineage
# ---------------------------------------------------------------------------------------------


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("bayesdecide", "pymc", "arviz", "numpy", "pandas", "xarray", "duckdb"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def cells_fingerprint(cells: Any) -> str:
    """SHA-256 of the cell statistics (counts and sums): identifies the data that was fitted."""
    h = hashlib.sha256()
    ds = cells.ds
    h.update(json.dumps([str(c) for c in ds["cell"].values]).encode())
    for name in ("n", "sum_y", "sum_yy", "sum_x", "sum_xx", "sum_xy"):
        h.update(np.ascontiguousarray(ds[name].values, dtype=np.float64).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------


def run_card(
    card: str | Path | ModelCard,
    out: str | Path = "runs",
    *,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    quick: bool = False,
    progress: Progress | None = _stderr,
    progressbar: bool | None = None,
    fit: Any = None,
) -> RunResult:
    """Run a model card end to end and write a new run folder under ``out``.

    Parameters
    ----------
    card:
        Path to ``models/<name>.toml`` (or a loaded :class:`ModelCard`).
    out:
        Parent folder of run folders.
    draws, tune, chains, seed:
        Override the card's ``[fit]`` settings.
    quick:
        Small sampling for a fast look (2 chains x 300 draws, 300 tuning steps).
    progress:
        Called with one line per step (default: print to stderr); ``None`` for silence.
    progressbar:
        Show the sampler's progress bar (default: when ``progress`` is set).
    fit:
        A fit of this card's model on this card's data (e.g. from a notebook): skips sampling.

    Raises
    ------
    CardError, SpecError
        The card is invalid (exit code 2 in the CLI).
    DataValidationError
        The data cannot be read or does not match the card (exit code 3 in the CLI).
    """
    from bayesdecide.data import cell_stats
    from bayesdecide.decide import Decision
    from bayesdecide.report.checks import run_checks

    steps = _Steps(7, progress)
    started = _dt.datetime.now().astimezone()
    card_obj = card if isinstance(card, ModelCard) else load_card(card)
    steps(
        f"Card {card_obj.name} v{card_obj.version} is valid; loading data ({card_obj.data.label})"
    )
    data = card_obj.data.load()
    cells = cell_stats(
        data,
        card_obj.spec,
        single_arm_cells=card_obj.data.single_arm_cells,
        drop_missing_outcomes=card_obj.data.drop_missing_outcomes,
    )
    n = cells.ds["n"].sum("cell")
    one_arm = [
        str(c)
        for c, k in zip(cells.ds["cell"].values, (cells.ds["n"] > 0).sum("arm").values, strict=True)
        if k < 2
    ]
    data_info = {
        "source": card_obj.data.label,
        "description": card_obj.data.description,
        "n_units": int(n.sum()),
        "n_control": int(n.sel(arm="control")),
        "n_treatment": int(n.sel(arm="treatment")),
        "n_cells": int(cells.ds.sizes["cell"]),
        "single_arm_cells": one_arm,
        "dropped": dict(cells.dropped),
        "fingerprint": cells_fingerprint(cells),
    }
    steps(
        f"Validated and aggregated {data_info['n_units']:,} rows into {data_info['n_cells']} cells "
        f"x 2 arms; checking sample ratio and covariate balance"
    )
    settings = fit_settings(card_obj, draws=draws, tune=tune, chains=chains, seed=seed, quick=quick)
    steps(
        f"Fitting the hierarchical model ({settings['chains']} chains x {settings['draws']} draws, "
        f"{settings['tune']} tuning steps)"
    )
    t_fit = time.perf_counter()
    show_bar = progress is not None if progressbar is None else progressbar
    if fit is None:
        fit = fit_model(cells, card_obj, settings, show_bar)
    else:
        settings = {**settings, **_given_fit_settings(fit)}
    fit_seconds = time.perf_counter() - t_fit
    checks = run_checks(
        cells, fit.diagnostics, card_obj.checks, assignment_share=card_obj.assignment_share
    )
    steps(f"Fitted in {fit_seconds:.1f}s; computing decision tables")
    dec_settings, labels = decision_settings(card_obj)
    decision = Decision.from_fit(fit, dec_settings)
    folder = new_folder(out, card_obj.name)
    run_info = {
        "id": folder.name,
        "created": started.isoformat(timespec="seconds"),
        "folder": str(folder),
        "quick": quick,
        "fit_seconds": round(fit_seconds, 2),
        **settings,
    }
    summary, tables = build_summary(card_obj, fit, decision, checks, labels, run_info, data_info)
    steps(f"Writing the run folder {folder}")
    _write_run(folder, card_obj, summary, tables, fit, data_info, settings, started)
    steps("Drawing figures")
    return _render(steps, folder, card_obj, summary, fit, decision, labels)


def _write_run(
    folder: Path,
    card: ModelCard,
    summary: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
    fit: Any,
    data_info: Mapping[str, Any],
    settings: Mapping[str, Any],
    started: _dt.datetime,
) -> None:
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if card.path is not None and Path(card.path).exists():
        shutil.copyfile(card.path, folder / "card.toml")
    else:  # a card built in memory: keep its content
        (folder / "card.json").write_text(json.dumps(card.to_dict(), indent=2, default=str))
    tdir = folder / "tables"
    tdir.mkdir(exist_ok=True)
    for name, t in tables.items():
        t.to_csv(tdir / f"{name}.csv", index=not isinstance(t.index, pd.RangeIndex))
    fit.save(folder / FIT_FILE)
    lineage = {
        "run_id": folder.name,
        "created": started.isoformat(timespec="seconds"),
        "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "card": {
            "name": card.name,
            "version": card.version,
            "path": str(card.path) if card.path else None,
            "sha256": card.sha256,
        },
        "spec_fingerprint": card.spec.fingerprint(),
        "data": dict(data_info),
        "fit_settings": dict(settings),
        "fit_lineage": _json(getattr(fit, "lineage", None) or {}),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "platform": platform.platform(),
    }
    (folder / "lineage.json").write_text(json.dumps(_json(lineage), indent=2) + "\n")


# ---------------------------------------------------------------------------------------------
# re-render
# ---------------------------------------------------------------------------------------------


def load_run_card(run_folder: Path) -> ModelCard:
    """The card a run used (``card.toml`` or ``card.json`` in the run folder)."""
    if (run_folder / "card.toml").exists():
        return load_card(run_folder / "card.toml")
    if (run_folder / "card.json").exists():
        return card_from_dict(
            json.loads((run_folder / "card.json").read_text()), source=str(run_folder / "card.json")
        )
    raise CardError(f"{run_folder} has no card.toml; is it a run folder from `bayesdecide run`?")


def rerender(
    run_folder: str | Path,
    overrides: Mapping[str, Any],
    *,
    out: str | Path | None = None,
    progress: Progress | None = _stderr,
) -> RunResult:
    """Re-render a run's decision and memo with changed assumptions, from the saved fit.

    ``overrides`` are dotted card keys or shortcuts (see :func:`bayesdecide.card.apply_overrides`):
    e.g. ``{"annoyance_penalty": 50, "launch.fixed_cost": 350000}``. Keys that would need a refit
    (data, outcomes, hierarchy, priors, fit) are refused. Writes ``<run>/rerenders/<stamp>/``
    (or a new folder under ``out``) and never touches the original run.
    """
    from bayesdecide.decide import Decision
    from bayesdecide.report.checks import CheckResult, Checks

    run_folder = Path(run_folder)
    steps = _Steps(4, progress)
    if not run_folder.is_dir() or not (run_folder / "summary.json").exists():
        raise CardError(
            f"{str(run_folder)!r} is not a run folder (no summary.json); give a folder written by "
            "`bayesdecide run`"
        )
    for key in overrides:
        head = key.split(".", 1)[0]
        if head in REFIT_SECTIONS:
            raise CardError(
                f"--set {key}: changing [{head}] needs a refit; edit the card and use "
                "`bayesdecide run` instead (memo re-renders only change value, launch, policies, "
                "rules, decision and checks)"
            )
    base = load_run_card(run_folder)
    card = base.with_overrides(overrides)
    parent = json.loads((run_folder / "summary.json").read_text())
    steps(f"Loading the saved fit of {run_folder.name}")
    fit = load_fit(run_folder / FIT_FILE)
    steps("Recomputing the decision (no refit)")
    dec_settings, labels = decision_settings(card)
    decision = Decision.from_fit(fit, dec_settings)
    old = parent.get("checks", {})
    results = []
    for r in old.get("results", []):
        r = dict(r)
        # thresholds may have changed: re-evaluate against the card's new thresholds
        t = card.checks
        if r["name"] == "Sample ratio mismatch":
            r["threshold"], r["passes"] = t.srm_alpha, r["observed"] >= t.srm_alpha
        elif r["name"] == "Covariate balance":
            r["threshold"], r["passes"] = t.max_abs_smd, r["observed"] <= t.max_abs_smd
        elif r["name"] == "R-hat":
            r["threshold"], r["passes"] = t.max_rhat, r["observed"] <= t.max_rhat
        elif r["name"] == "Effective sample size":
            r["threshold"], r["passes"] = t.min_ess_bulk, r["observed"] >= t.min_ess_bulk
        elif r["name"] == "Divergences":
            r["threshold"], r["passes"] = t.max_divergences, r["observed"] <= t.max_divergences
        results.append(CheckResult(**r))
    balance = pd.DataFrame(old.get("balance", []))
    if not balance.empty:
        balance = balance.set_index("covariate")
    checks = Checks(tuple(results), balance)
    if out is None:
        folder = new_folder(run_folder / "rerenders", "")
    else:
        folder = new_folder(out, f"{card.name}-rerender")
    run_info = {
        **parent.get("run", {}),
        "id": f"{parent.get('run', {}).get('id', run_folder.name)}/{folder.name}",
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "parent": str(run_folder),
        "overrides": dict(overrides),
        "folder": str(folder),
    }
    summary, tables = build_summary(
        card, fit, decision, checks, labels, run_info, parent.get("data", {})
    )
    steps(f"Writing {folder}")
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / "overrides.json").write_text(json.dumps(_json(dict(overrides)), indent=2) + "\n")
    (folder / "card.json").write_text(json.dumps(card.to_dict(), indent=2, default=str) + "\n")
    tdir = folder / "tables"
    tdir.mkdir(exist_ok=True)
    for name, t in tables.items():
        t.to_csv(tdir / f"{name}.csv", index=not isinstance(t.index, pd.RangeIndex))
    return _render(steps, folder, card, summary, fit, decision, labels)


def _render(
    steps: _Steps,
    folder: Path,
    card: ModelCard,
    summary: dict[str, Any],
    fit: Any,
    decision: Any,
    labels: Mapping[str, str],
) -> RunResult:
    """Figures and memo into ``folder``; the last progress line names the recommendation."""
    from bayesdecide.report.memo import write_memo

    figures = make_figures(summary, fit, decision, folder / "figures", card)
    steps("Writing the memo")
    md, html = write_memo(summary, folder, card, figures)
    rec = summary["recommendation"]
    steps.done(
        f"Done: {rec['decision']}"
        + (f" ({labels.get(rec['policy'], rec['policy'])})" if rec.get("policy") else "")
    )
    return RunResult(folder, summary, md, html, figures)


__all__ = [
    "RunResult",
    "build_summary",
    "decision_settings",
    "fit_settings",
    "make_figures",
    "new_folder",
    "rerender",
    "run_card",
]
