"""What the run registry records about a run: :class:`RunRecord`, read from a run folder.

A record is built from the files every run folder already holds (``summary.json``,
``lineage.json``; ``overrides.json`` of a re-render; ``update.json`` of an update), so any complete
run folder can be registered, now or later (``bayesdecide registry add RUN``), and the registry
never holds a number the run folder does not. Three kinds of run:

- ``run``: ``bayesdecide run CARD`` (a fit and its decision);
- ``memo``: ``bayesdecide memo RUN --set ...`` (the parent's fit, other assumptions);
- ``update``: ``bayesdecide update RUN --data ROLLOUT`` (a refit with the rollout's holdout).

Money is in dollars at launch scale; probabilities are posterior probabilities of the event named
by the field.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayesdecide._json import to_jsonable
from bayesdecide.errors import RunFolderError
from bayesdecide.run.summary import RunSummary, doc, read_summary

RUN_KINDS = ("run", "memo", "update")
UPDATE_FILE = "update.json"
OVERRIDES_FILE = "overrides.json"
LINEAGE_FILE = "lineage.json"


@dataclass(frozen=True)
class RunRecord:
    """One registered run: identity, inputs, model, diagnostics and decision.

    Scalar fields are columns of the registry table; ``dict`` fields are stored as JSON.
    """

    run_id: str = doc("run id: the run folder's name (a re-render: '<run>/rerenders/<stamp>')")
    kind: str = doc("'run', 'memo' (re-render, no refit) or 'update' (refit with a rollout)")
    parent_run: str | None = doc("run id of the run this one was made from (memo, update)")
    folder: str = doc("absolute path of the run folder when it was registered")
    created: str = doc("when the run started, ISO 8601 with time zone")
    command: str = doc("the command line that made the run, when known")
    card_name: str = doc("the card's registry name")
    card_version: str = doc("the card's version")
    card_sha256: str = doc("SHA-256 of the card's content")
    spec_fingerprint: str = doc("fingerprint of the experiment spec (columns and their meaning)")
    data_fingerprint: str = doc("SHA-256 of the cell statistics fitted")
    data_source: str = doc("where the data came from (simulator, file, several sources)")
    n_units: int = doc("randomized units fitted, both arms")
    n_cells: int = doc("cells fitted (combinations of factor levels)")
    experiments: list[str] = doc("experiment levels pooled in the fit (empty: one experiment)")
    factors: list[str] = doc("grouping factors of the hierarchy")
    interactions: list[str] = doc("interaction terms, 'a x b'")
    priors: dict[str, Any] = doc("prior overrides of the card (empty: package defaults)")
    sampler: str | None = doc("sampler name")
    draws: int = doc("posterior draws per chain")
    tune: int | None = doc("tuning steps per chain")
    chains: int = doc("chains")
    seed: int | None = doc("sampler seed")
    target_accept: float | None = doc("NUTS target acceptance rate")
    fit_seconds: float = doc("seconds spent fitting (a re-render: its parent's)")
    versions: dict[str, Any] = doc("versions of Python and the packages the numbers depend on")
    git_commit: str | None = doc("the package checkout's git commit, when known")
    diagnostics_ok: bool = doc(
        "the fit's own verdict on its sampler diagnostics (the model's thresholds on R-hat, bulk "
        "and tail ESS, divergences, BFMI); the card's thresholds are in checks_ok"
    )
    max_rhat: float | None = doc("largest R-hat")
    min_ess_bulk: float | None = doc("smallest bulk effective sample size")
    divergences: int | None = doc("divergent transitions")
    checks_ok: bool = doc("every data and sampler check passed the card's [checks] thresholds")
    decision: str = doc("the recommendation: launch, targeted launch, do not launch, or blocked")
    policy: str | None = doc("recommended policy id (null: none recommended)")
    policy_label: str | None = doc("its display name")
    blocked: bool = doc("a failed check blocked the recommendation")
    expected_value: float | None = doc(
        "posterior mean launch value of the recommended policy (else of the rule's choice), "
        "dollars at launch scale after fixed cost"
    )
    prob_positive: float | None = doc("P(launch value > 0) of that policy")
    reasons: list[str] = doc("the recommendation's reasons, in order")
    settings: dict[str, Any] = doc(
        "decision settings: eligible customers, fixed cost (dollars), transport multiplier, "
        "value weights (dollars per unit of each outcome's effect), launch mix"
    )
    overrides: dict[str, Any] = doc("--set overrides of a re-render")
    transport: dict[str, Any] = doc(
        "an update's posterior transport multiplier: mean, sd, lower, upper (interval "
        "probability in ci_prob), P(multiplier < 1); empty for other kinds"
    )

    def to_row(self) -> dict[str, Any]:
        """The record as one registry row: lists stay lists, dicts become JSON text."""
        row = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            row[f.name] = json.dumps(to_jsonable(v), sort_keys=True) if isinstance(v, dict) else v
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        """From a registry row (JSON text back to dicts)."""
        values = {}
        for f in dataclasses.fields(cls):
            v = row.get(f.name)
            if isinstance(v, float) and v != v and not f.type.startswith("float"):
                v = None  # a NULL read back through pandas
            if f.type.startswith("dict"):
                v = json.loads(v) if isinstance(v, str) and v else {}
            elif f.type.startswith("list"):
                v = list(v) if v is not None else []
            values[f.name] = v
        return cls(**values)


def record_fields() -> list[dataclasses.Field]:
    """The fields of :class:`RunRecord`, in column order."""
    return list(dataclasses.fields(RunRecord))


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{path} cannot be read ({exc}): the run folder is damaged") from None


def run_kind(folder: Path) -> str:
    """``update`` (has ``update.json``), ``memo`` (has ``overrides.json``) or ``run``."""
    if (folder / UPDATE_FILE).is_file():
        return "update"
    if (folder / OVERRIDES_FILE).is_file():
        return "memo"
    return "run"


def _parent_id(parent: str | None) -> str | None:
    """The run id of a parent run folder (its summary's id; the folder name when it is gone)."""
    if not parent:
        return None
    p = Path(parent)
    try:
        return read_summary(p / "summary.json").run.id
    except RunFolderError:
        return p.name


def _lineage_for(folder: Path, kind: str, parent: str | None) -> dict[str, Any]:
    """``lineage.json`` of the run; a re-render has none and inherits its parent's (its model)."""
    lin = _read_json(folder / LINEAGE_FILE)
    if not lin and kind == "memo" and parent:
        lin = _read_json(Path(parent) / LINEAGE_FILE)
    return lin


def _created(value: str) -> str:
    try:
        return _dt.datetime.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        return str(value)


def record_from_folder(folder: str | Path) -> RunRecord:
    """The :class:`RunRecord` of a complete run folder (run, re-render or update).

    Raises
    ------
    RunFolderError
        The folder is missing, incomplete or damaged (names the file).
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise RunFolderError(
            f"{str(folder)!r} is not a run folder; give a folder written by `bayesdecide run`, "
            "`memo` or `update`"
        )
    s: RunSummary = read_summary(folder / "summary.json")
    kind = run_kind(folder)
    parent = s.run.parent
    lin = _lineage_for(folder, kind, parent)
    update = _read_json(folder / UPDATE_FILE) if kind == "update" else {}
    rec = s.recommendation
    focus = rec.policy or rec.rule_policy
    row = s.policies.get(focus) if focus else None
    st = s.settings
    d = s.diagnostics
    fit_lineage = lin.get("fit_lineage", {}) or {}
    versions = dict(lin.get("versions") or fit_lineage.get("versions") or {})
    experiments = list(update.get("levels", [])) or list(lin.get("experiments", []) or [])
    return RunRecord(
        run_id=s.run.id,
        kind=kind,
        parent_run=_parent_id(parent),
        folder=str(folder),
        created=_created(s.run.created),
        command=str(lin.get("command", "")) if kind != "memo" else "",
        card_name=s.card.name,
        card_version=s.card.version,
        card_sha256=s.card.sha256,
        spec_fingerprint=s.lineage.spec_fingerprint,
        data_fingerprint=s.lineage.data_fingerprint,
        data_source=s.lineage.data_source,
        n_units=int(s.data.n_units),
        n_cells=int(s.data.n_cells),
        experiments=[str(e) for e in experiments],
        factors=list(s.hierarchy.factors),
        interactions=[" x ".join(i) for i in s.hierarchy.interactions],
        priors=dict(s.priors),
        sampler=s.run.sampler or fit_lineage.get("sampler"),
        draws=int(s.run.draws),
        tune=s.run.tune,
        chains=int(s.run.chains),
        seed=s.run.seed,
        target_accept=s.run.target_accept,
        fit_seconds=float(s.run.fit_seconds),
        versions=versions,
        git_commit=lin.get("git_commit"),
        diagnostics_ok=bool(d.get("ok", all(c.passes for c in s.checks.results))),
        max_rhat=_float(d.get("max_rhat")),
        min_ess_bulk=_float(d.get("min_ess_bulk")),
        divergences=int(d["divergences"]) if d.get("divergences") is not None else None,
        checks_ok=bool(s.checks.ok),
        decision=rec.decision,
        policy=rec.policy,
        policy_label=s.labels.get(rec.policy) if rec.policy else None,
        blocked=bool(rec.blocked),
        expected_value=_float(row.expected_value) if row is not None else None,
        prob_positive=_float(row.prob_positive) if row is not None else None,
        reasons=list(rec.reasons),
        settings={
            "n_eligible": st.n_eligible,
            "fixed_cost": st.fixed_cost,
            "transport_multiplier": st.transport_multiplier,
            "weights": dict(st.weights),
            "mix": st.mix,
            "ci_prob": st.ci_prob,
        },
        overrides=dict(s.run.overrides),
        transport=dict(update.get("transport", {}).get("summary", {})) if update else {},
    )


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f else None  # NaN -> None


__all__ = ["RUN_KINDS", "RunRecord", "record_fields", "record_from_folder", "run_kind"]
