"""Model cards: a versioned TOML file that says everything a decision run needs.

A card (``models/<name>.toml``) records, in one reviewed file: where the data comes from (a
simulator with its arguments, or a Parquet/CSV file read by DuckDB), what every column means (the
feature dictionary), the treatment and its arms, the outcomes and their kinds, the hierarchy the
model pools over, priors, the value model (dollar weights on outcomes), the launch population, the
policies compared, the pre-registered decision rules, the data-quality and sampler checks, the
risk register and the monitoring plan.

:func:`load_card` reads and validates a card. Every error names the key and the fix: an unknown key
lists the valid keys (and the closest one), a missing required key says what to add, a wrong type
says which type is expected.

Top-level tables: ``card``, ``data``, ``experiment``, ``outcomes`` (array), ``features``,
``hierarchy``, ``priors``, ``fit``, ``value``, ``launch``, ``policies`` (array), ``rules`` (array),
``decision``, ``checks``, ``risks`` (array), ``monitoring``.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayesdecide.data.spec import ExperimentSpec, Outcome, OutcomeKind
from bayesdecide.errors import SpecError


class CardError(SpecError):
    """A model card is missing, unreadable or invalid. The message names the key and the fix."""


# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "an array",
    dict: "a table",
}


@dataclass(frozen=True)
class Key:
    """One key of a card table: its type, whether it is required, and what it means."""

    type: Any
    required: bool = False
    doc: str = ""
    table: Table | None = None  # schema of the table (type dict) or of each item (type list)
    items: Any = None  # element type of a plain array
    choices: tuple[Any, ...] = ()
    free: bool = False  # a table whose keys are free (validated elsewhere)


@dataclass(frozen=True)
class Table:
    """The keys a card table may hold."""

    keys: dict[str, Key]
    doc: str = ""


def _t(**keys: Key) -> Table:
    return Table(keys=keys)


# Rule types (those of bayesdecide.decide.guardrails) and the keys each one takes.
RULE_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # type -> (required, optional)
    "value_positive": (("min_prob",), ("min_value",)),
    "loss_limit": (("loss", "max_prob"), ()),
    "effect_bound": (("outcome", "min_prob"), ("upper", "lower", "per")),
    "fairness_floor": (("factor", "min_prob"), ("floor", "outcome")),
}
_RULE_COMMON = ("name", "type", "description")
OUTCOME_ROLES = ("primary", "guardrail", "component", "secondary")

SCHEMA = Table(
    doc="a bayesdecide model card",
    keys={
        "card": Key(
            dict,
            True,
            "identity of the card in the registry",
            table=_t(
                name=Key(str, True, "registry name, e.g. 'retention_outreach'"),
                version=Key(str, True, "card version, e.g. '1.0.0'; bump it on every change"),
                title=Key(str, doc="one-line title used in the memo"),
                description=Key(str, doc="what the experiment tested and why"),
                owner=Key(str, doc="team or person accountable for the decision"),
                decision=Key(str, doc="the action on the table, one sentence"),
                created=Key(str, doc="date the card was first written (YYYY-MM-DD)"),
                status=Key(str, doc="draft, pre-registered, decided or retired"),
                tags=Key(list, items=str, doc="free labels"),
            ),
        ),
        "data": Key(
            dict,
            True,
            "where the rows come from: a simulator or a file",
            table=_t(
                simulator=Key(
                    str,
                    doc="simulator name: 'retention' or 'markets' (use either this or path)",
                    choices=("retention", "markets"),
                ),
                args=Key(dict, doc="keyword arguments of the simulator", free=True),
                path=Key(
                    str,
                    doc="Parquet/CSV file, folder or glob read by DuckDB; relative paths are "
                    "resolved against the card's folder (use either this or simulator)",
                ),
                description=Key(str, doc="where the data comes from, extraction date, filters"),
                single_arm_cells=Key(
                    str,
                    doc="'error' (default) rejects cells with one arm; 'keep' lets the hierarchy "
                    "predict their effects",
                    choices=("error", "keep"),
                ),
                drop_missing_outcomes=Key(
                    bool, doc="drop rows with missing outcomes (counted per arm; default false)"
                ),
            ),
        ),
        "experiment": Key(
            dict,
            True,
            "the randomized design",
            table=_t(
                treatment=Key(str, True, "column holding the assignment"),
                arms=Key(list, True, "[control, treatment] values of the treatment column"),
                unit_id=Key(str, doc="column identifying the randomized unit"),
                assignment_share=Key(
                    float, doc="designed share of units assigned to treatment (default 0.5)"
                ),
                randomization_unit=Key(str, doc="what was randomized, e.g. 'customer'"),
                horizon=Key(str, doc="outcome window, e.g. '90 days'"),
                population=Key(str, doc="who was eligible for the experiment"),
                estimand=Key(str, doc="the causal quantity, e.g. the ITT effect of assignment"),
                dates=Key(str, doc="when the experiment ran"),
                covariates=Key(list, items=str, doc="pre-treatment numeric columns for adjustment"),
            ),
        ),
        "outcomes": Key(
            list,
            True,
            "measured outcomes, one [[outcomes]] table each",
            table=_t(
                name=Key(str, True, "column name"),
                kind=Key(
                    str, True, "measurement scale", choices=tuple(k.value for k in OutcomeKind)
                ),
                label=Key(str, doc="human-readable name"),
                unit=Key(
                    str, doc="unit of one observation, e.g. 'dollars per customer over 90 days'"
                ),
                role=Key(str, doc="role in the decision", choices=OUTCOME_ROLES),
                description=Key(str, doc="how the outcome is measured"),
            ),
        ),
        "features": Key(
            dict,
            True,
            "feature dictionary: one [features.<column>] table per data column",
            free=True,
        ),
        "hierarchy": Key(
            dict,
            True,
            "grouping factors the model pools treatment effects over",
            table=_t(
                factors=Key(list, True, "grouping columns; each combination is a cell", items=str),
                interactions=Key(
                    list, doc="pairs (or larger sets) of factors given their own pooled term"
                ),
                description=Key(str, doc="why these factors"),
            ),
        ),
        "priors": Key(dict, doc="prior settings passed through to the model", free=True),
        "fit": Key(
            dict,
            doc="sampler settings of a full run (the CLI's --draws/--quick override them)",
            table=_t(
                draws=Key(int, doc="posterior draws per chain"),
                tune=Key(int, doc="tuning steps per chain"),
                chains=Key(int, doc="number of chains"),
                seed=Key(int, doc="random seed of the sampler"),
                target_accept=Key(float, doc="NUTS target acceptance rate"),
                sampler=Key(str, doc="sampler: 'nutpie' (default), 'nutpie-pytensor' or 'pymc'"),
            ),
        ),
        "value": Key(
            dict,
            True,
            "the value model: dollars per eligible customer as a weighted sum of outcome effects",
            table=_t(
                weights=Key(
                    dict, True, "outcome -> dollars per unit of that outcome's effect", free=True
                ),
                assumptions=Key(
                    dict,
                    doc="named cost assumptions: name -> outcome whose weight is minus that cost "
                    "(e.g. annoyance_penalty = 'annoyance')",
                    free=True,
                ),
                transport_outcomes=Key(
                    list,
                    items=str,
                    doc="outcomes whose effect the transport multiplier scales (the benefits)",
                ),
                description=Key(str, doc="the value formula in words"),
                unit=Key(str, doc="unit of the value, e.g. 'dollars per eligible customer'"),
            ),
        ),
        "launch": Key(
            dict,
            True,
            "the launch population the decision is about",
            table=_t(
                eligible=Key(int, True, "number of eligible customers at launch"),
                fixed_cost=Key(float, True, "fixed implementation cost in dollars"),
                transport_multiplier=Key(
                    float, doc="share of the experiment's benefit expected at launch (default 1)"
                ),
                large_loss=Key(float, doc="dollars; P(value < -large_loss) is reported"),
                fixed_cost_scaling=Key(
                    str,
                    doc="'constant' (the full fixed cost whenever anyone is treated) or "
                    "'treated_share' (fixed cost x max(treated share, min_cost_share))",
                    choices=("constant", "treated_share"),
                ),
                min_cost_share=Key(float, doc="floor of the treated share in 'treated_share'"),
                mix=Key(
                    dict,
                    doc="launch mix: factor -> {level: share}; default the experiment's mix",
                    free=True,
                ),
                description=Key(str, doc="who will be treated and when"),
            ),
        ),
        "policies": Key(
            list,
            doc="rollout policies compared, one [[policies]] table each",
            table=_t(
                name=Key(str, True, "policy name shown in the memo"),
                treat=Key(
                    dict,
                    True,
                    "factor -> list of levels to treat (every listed factor must match), or all = true "
                    "/ none = true",
                    free=True,
                ),
                description=Key(str, doc="what the policy does"),
            ),
        ),
        "rules": Key(
            list,
            True,
            "pre-registered decision rules (guardrails), one [[rules]] table each",
            table=_t(
                name=Key(str, True, "short name, e.g. 'Primary value'"),
                type=Key(
                    str,
                    True,
                    "value_positive: P(launch value > min_value) >= min_prob; loss_limit: "
                    "P(launch value < -loss) <= max_prob; effect_bound: P(lower <= effect on "
                    "outcome <= upper) >= min_prob; fairness_floor: P(every treated level of "
                    "factor has effect >= floor) >= min_prob",
                    choices=tuple(RULE_KEYS),
                ),
                description=Key(str, doc="the rule in words, as pre-registered"),
                min_prob=Key(float, doc="posterior probability the rule needs to pass"),
                max_prob=Key(float, doc="loss_limit: largest allowed probability of the loss"),
                min_value=Key(float, doc="value_positive: dollars the launch value must exceed"),
                loss=Key(float, doc="loss_limit: the loss in dollars"),
                outcome=Key(str, doc="effect_bound / fairness_floor: the outcome"),
                upper=Key(float, doc="effect_bound: upper bound in the outcome's unit"),
                lower=Key(float, doc="effect_bound: lower bound in the outcome's unit"),
                per=Key(
                    str,
                    doc="effect_bound: average the effect over 'eligible' (default) or 'treated' "
                    "customers",
                    choices=("eligible", "treated"),
                ),
                factor=Key(str, doc="fairness_floor: the grouping factor, e.g. 'region'"),
                floor=Key(float, doc="fairness_floor: smallest allowed effect per treated level"),
            ),
        ),
        "decision": Key(
            dict,
            doc="how the decision tables are computed",
            table=_t(
                include_optimal=Key(
                    bool, doc="also evaluate the Bayes-optimal targeting policy (default true)"
                ),
                decision_threshold=Key(
                    float, doc="P(value > 0) at which break-even thresholds are read (0.8)"
                ),
                ci_prob=Key(float, doc="credible interval probability of summaries (0.95)"),
                compare_factor=Key(
                    str, doc="factor whose levels are compared pairwise (default 'region')"
                ),
                break_even=Key(
                    list,
                    items=str,
                    doc="assumptions to report break-even values for (default: transport "
                    "multiplier, every priced outcome's penalty, fixed cost, launch size)",
                ),
            ),
        ),
        "checks": Key(
            dict,
            doc="data-quality and sampler checks that block a launch recommendation",
            table=_t(
                srm_alpha=Key(float, doc="sample-ratio-mismatch chi-square p-value floor (0.001)"),
                max_abs_smd=Key(float, doc="covariate balance: largest |SMD| allowed (0.1)"),
                max_rhat=Key(float, doc="largest R-hat allowed (1.01)"),
                min_ess_bulk=Key(float, doc="smallest bulk ESS allowed (400)"),
                max_divergences=Key(int, doc="divergent transitions allowed (0)"),
            ),
        ),
        "risks": Key(
            list,
            doc="risk register, one [[risks]] table each",
            table=_t(
                risk=Key(str, True, "what could go wrong"),
                why_it_matters=Key(str, True, "consequence for the decision"),
                mitigation=Key(str, True, "what the rollout does about it"),
                owner=Key(str, doc="who watches it"),
            ),
        ),
        "monitoring": Key(
            dict,
            doc="the post-launch monitoring plan",
            table=_t(
                holdout_share=Key(float, doc="share of eligible customers kept as holdout"),
                cadence=Key(str, doc="how often guardrails are reviewed"),
                metrics=Key(list, items=str, doc="what is monitored"),
                stop_rules=Key(list, items=str, doc="conditions that trigger rollback"),
                review=Key(str, doc="when the decision is revisited"),
            ),
        ),
    },
)

FEATURE_KEYS = Table(
    keys={
        "description": Key(str, True, "what the column means"),
        "role": Key(
            str,
            True,
            "how the analysis uses it",
            choices=("id", "treatment", "group", "covariate", "outcome", "context"),
        ),
        "type": Key(str, doc="data type, e.g. 'float', 'int', 'category', '0/1'"),
        "unit": Key(str, doc="unit, e.g. 'dollars', 'months'"),
        "levels": Key(list, doc="allowed levels of a categorical column"),
        "pre_treatment": Key(bool, doc="measured before assignment"),
        "source": Key(str, doc="upstream table or system"),
    }
)


def _where(path: str) -> str:
    return f"[{path}]" if path else "the top level"


def _fmt_keys(keys: Mapping[str, Key]) -> str:
    return ", ".join(f"{k}{' (required)' if v.required else ''}" for k, v in keys.items())


def _type_ok(value: Any, expected: Any) -> bool:
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _check_table(data: Mapping[str, Any], table: Table, path: str, source: str) -> None:
    for key in data:
        if key not in table.keys:
            close = difflib.get_close_matches(str(key), list(table.keys), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise CardError(
                f"{source}: unknown key {_dotted(path, key)!r} in {_where(path)}.{hint} "
                f"Valid keys: {_fmt_keys(table.keys)}."
            )
    for key, spec in table.keys.items():
        dotted = _dotted(path, key)
        if key not in data:
            if spec.required:
                raise CardError(
                    f"{source}: missing required key {dotted!r} in {_where(path)}: add "
                    f"{key} = <{_TYPE_NAMES.get(spec.type, spec.type)}> ({spec.doc})."
                )
            continue
        _check_value(data[key], spec, dotted, source)


def _dotted(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _check_value(value: Any, spec: Key, dotted: str, source: str) -> None:
    if not _type_ok(value, spec.type):
        raise CardError(
            f"{source}: key {dotted!r} must be {_TYPE_NAMES.get(spec.type, spec.type)} "
            f"({spec.doc}), not {type(value).__name__} {value!r}; fix its value."
        )
    if spec.choices and value not in spec.choices:
        raise CardError(f"{source}: key {dotted!r} is {value!r}; use one of {list(spec.choices)}.")
    if spec.type is list:
        for i, item in enumerate(value):
            if spec.table is not None:
                if not isinstance(item, dict):
                    raise CardError(
                        f"{source}: {dotted}[{i}] must be a table (write it as [[{dotted}]]), "
                        f"not {type(item).__name__}."
                    )
                _check_table(item, spec.table, f"{dotted}[{i}]", source)
            elif spec.items is not None and not _type_ok(item, spec.items):
                raise CardError(
                    f"{source}: {dotted}[{i}] must be {_TYPE_NAMES.get(spec.items)}, not "
                    f"{type(item).__name__} {item!r}."
                )
    elif spec.type is dict and spec.table is not None and not spec.free:
        _check_table(value, spec.table, dotted, source)


# ---------------------------------------------------------------------------------------------
# Typed card
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSource:
    """Where the rows come from: ``simulator`` (+ ``args``) or ``path`` (read by DuckDB)."""

    simulator: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    description: str = ""
    single_arm_cells: str = "error"
    drop_missing_outcomes: bool = False

    def load(self) -> Any:
        """The data: a pandas DataFrame from the simulator, or the file path for DuckDB."""
        if self.simulator is not None:
            return simulate(self.simulator, self.args).data
        assert self.path is not None
        return str(self.path)

    @property
    def label(self) -> str:
        if self.simulator is not None:
            args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
            return f"simulator {self.simulator}({args})"
        return f"file {self.path}"


def simulate(name: str, args: Mapping[str, Any]) -> Any:
    """Run a named simulator with keyword ``args``; returns its :class:`Simulation`."""
    if name == "retention":
        from bayesdecide.simulate.retention import simulate_retention

        fn: Any = simulate_retention
    elif name == "markets":
        try:
            from bayesdecide.simulate.markets import simulate_markets
        except ImportError as exc:  # pragma: no cover - depends on the markets module
            raise CardError(
                f"data.simulator = 'markets' needs bayesdecide.simulate.markets ({exc})"
            ) from exc
        fn = simulate_markets
    else:
        raise CardError(f"data.simulator {name!r} is unknown; use 'retention' or 'markets'")
    try:
        return fn(**dict(args))
    except TypeError as exc:
        raise CardError(f"data.args do not fit simulator {name!r}: {exc}; fix [data.args]") from exc


@dataclass(frozen=True)
class Hierarchy:
    """Grouping factors (cells are their combinations) and the interactions given own terms."""

    factors: tuple[str, ...]
    interactions: tuple[tuple[str, ...], ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ValueModel:
    """Dollars per eligible customer = sum over outcomes of ``weights[outcome] * effect``.

    ``assumptions`` names cost assumptions: ``annoyance_penalty -> "annoyance"`` means the weight on
    ``annoyance`` is minus the annoyance penalty (dollars per annoyed customer).
    ``transport_outcomes`` are the benefits the transport multiplier scales.
    """

    weights: dict[str, float]
    assumptions: dict[str, str] = field(default_factory=dict)
    transport_outcomes: tuple[str, ...] = ()
    description: str = ""
    unit: str = "dollars per eligible customer"

    def assumption_values(self) -> dict[str, float]:
        """Each named cost assumption in dollars per unit (the negated weight)."""
        return {name: -self.weights[o] for name, o in self.assumptions.items()}


@dataclass(frozen=True)
class Launch:
    """The launch population: ``eligible`` customers, ``fixed_cost`` dollars, transport, mix."""

    eligible: int
    fixed_cost: float
    transport_multiplier: float = 1.0
    large_loss: float = 500_000.0
    mix: dict[str, dict[str, float]] | None = None
    description: str = ""
    fixed_cost_scaling: str = "constant"
    min_cost_share: float = 0.05


@dataclass(frozen=True)
class Policy:
    """A rollout policy: treat customers whose factor levels are in ``treat`` (all if empty)."""

    name: str
    treat: dict[str, tuple[str, ...]]
    description: str = ""
    treat_all: bool = False
    treat_none: bool = False


@dataclass(frozen=True)
class Rule:
    """A pre-registered rule: a guardrail of :mod:`bayesdecide.decide.guardrails` with its name.

    ``params`` holds the type's keys (``min_prob``, ``loss``, ``outcome``, ``upper`` ...).
    """

    name: str
    type: str
    params: dict[str, Any]
    description: str = ""

    def to_guardrail(self) -> dict[str, Any]:
        """The dict form :func:`bayesdecide.decide.guardrails.guardrail_from_dict` reads."""
        return {"type": self.type, "name": self.name, **self.params}

    @property
    def required_probability(self) -> float:
        """The probability the rule needs (a maximum for ``loss_limit``)."""
        return float(self.params.get("max_prob" if self.type == "loss_limit" else "min_prob"))

    def text(self) -> str:
        """The rule in words (the card's description, else generated)."""
        if self.description:
            return self.description
        p = self.params
        if self.type == "value_positive":
            return f"P(launch value > ${p.get('min_value', 0):,.0f}) >= {p['min_prob']:.0%}"
        if self.type == "loss_limit":
            return f"P(launch loses more than ${p['loss']:,.0f}) <= {p['max_prob']:.0%}"
        if self.type == "effect_bound":
            lo, hi = p.get("lower"), p.get("upper")
            rng = " and ".join(
                x
                for x in (
                    f">= {lo:g}" if lo is not None else "",
                    f"<= {hi:g}" if hi is not None else "",
                )
                if x
            )
            per = p.get("per", "eligible")
            return f"P(effect on {p['outcome']} per {per} customer {rng}) >= {p['min_prob']:.0%}"
        what = p.get("outcome") or "net value"
        return (
            f"P(every treated {p['factor']} has {what} effect >= {p.get('floor', 0):g}) >= "
            f"{p['min_prob']:.0%}"
        )


@dataclass(frozen=True)
class Checks:
    """Thresholds of the checks that block a launch recommendation when they fail."""

    srm_alpha: float = 0.001
    max_abs_smd: float = 0.1
    max_rhat: float = 1.01
    min_ess_bulk: float = 400.0
    max_divergences: int = 0


@dataclass(frozen=True)
class Risk:
    """One entry of the risk register."""

    risk: str
    why_it_matters: str
    mitigation: str
    owner: str = ""


@dataclass(frozen=True)
class Monitoring:
    """The monitoring plan after launch."""

    holdout_share: float | None = None
    cadence: str = ""
    metrics: tuple[str, ...] = ()
    stop_rules: tuple[str, ...] = ()
    review: str = ""


@dataclass(frozen=True)
class Feature:
    """One column of the feature dictionary."""

    name: str
    description: str
    role: str
    type: str = ""
    unit: str = ""
    levels: tuple[Any, ...] = ()
    pre_treatment: bool | None = None
    source: str = ""


@dataclass(frozen=True)
class ModelCard:
    """A validated model card. Build it with :func:`load_card` (or :func:`card_from_dict`).

    ``raw`` is the card as parsed (a plain dict); ``path`` the file it came from.
    """

    raw: dict[str, Any]
    path: Path | None
    name: str
    version: str
    title: str
    info: dict[str, Any]
    data: DataSource
    experiment: dict[str, Any]
    outcomes: tuple[Outcome, ...]
    outcome_roles: dict[str, str]
    features: dict[str, Feature]
    hierarchy: Hierarchy
    priors: dict[str, Any]
    fit: dict[str, Any]
    value: ValueModel
    launch: Launch
    policies: tuple[Policy, ...]
    rules: tuple[Rule, ...]
    decision: dict[str, Any]
    checks: Checks
    risks: tuple[Risk, ...]
    monitoring: Monitoring

    # -- derived ------------------------------------------------------------------------------
    @property
    def spec(self) -> ExperimentSpec:
        """The :class:`ExperimentSpec` of the card's data."""
        exp = self.experiment
        return ExperimentSpec(
            name=self.name,
            treatment=exp["treatment"],
            arms=tuple(exp["arms"]),
            outcomes=self.outcomes,
            groups=self.hierarchy.factors,
            covariates=tuple(exp.get("covariates", ())),
            unit_id=exp.get("unit_id"),
        )

    @property
    def assignment_share(self) -> float:
        """Designed share of units assigned to treatment."""
        return float(self.experiment.get("assignment_share", 0.5))

    @property
    def primary_outcome(self) -> str:
        """The outcome with role 'primary' (the first outcome when none is marked)."""
        for name, role in self.outcome_roles.items():
            if role == "primary":
                return name
        return self.outcomes[0].name

    @property
    def guardrail_outcomes(self) -> list[str]:
        return [n for n, r in self.outcome_roles.items() if r == "guardrail"]

    @property
    def sha256(self) -> str:
        """SHA-256 of the card's content (canonical JSON), recorded in run lineage."""
        payload = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The card as a plain dict (the TOML's content), safe to JSON-serialise."""
        return copy.deepcopy(self.raw)

    def with_overrides(self, overrides: Mapping[str, Any]) -> ModelCard:
        """A new validated card with ``overrides`` applied (see :func:`apply_overrides`)."""
        raw = apply_overrides(self.raw, overrides)
        return card_from_dict(raw, path=self.path, source=str(self.path or self.name))


def _check_semantics(raw: dict[str, Any], source: str) -> None:
    exp = raw["experiment"]
    if len(exp["arms"]) != 2 or exp["arms"][0] == exp["arms"][1]:
        raise CardError(
            f"{source}: key 'experiment.arms' is {exp['arms']!r}; give exactly two distinct "
            "values [control, treatment], e.g. arms = [0, 1]."
        )
    share = exp.get("assignment_share", 0.5)
    if not 0 < share < 1:
        raise CardError(
            f"{source}: key 'experiment.assignment_share' is {share}; it must lie strictly "
            "between 0 and 1 (the designed treatment share, e.g. 0.5)."
        )
    data = raw["data"]
    has_sim, has_path = "simulator" in data, "path" in data
    if has_sim == has_path:
        raise CardError(
            f"{source}: [data] needs exactly one of 'data.simulator' (with optional [data.args]) "
            "or 'data.path' (a Parquet/CSV file read by DuckDB)."
        )
    if "args" in data and not has_sim:
        raise CardError(f"{source}: 'data.args' only applies to a simulator; remove it.")
    outcome_names = [o["name"] for o in raw["outcomes"]]
    if not outcome_names:
        raise CardError(f"{source}: 'outcomes' is empty; add at least one [[outcomes]] table.")
    dup = {n for n in outcome_names if outcome_names.count(n) > 1}
    if dup:
        raise CardError(f"{source}: outcome(s) {sorted(dup)} listed twice in [[outcomes]].")
    primaries = [o["name"] for o in raw["outcomes"] if o.get("role") == "primary"]
    if len(primaries) > 1:
        raise CardError(
            f"{source}: outcomes {primaries} all have role = 'primary'; mark exactly one."
        )
    factors = raw["hierarchy"]["factors"]
    if not factors:
        raise CardError(f"{source}: 'hierarchy.factors' is empty; list the grouping columns.")
    for i, inter in enumerate(raw["hierarchy"].get("interactions", [])):
        if not isinstance(inter, list) or len(inter) < 2 or any(f not in factors for f in inter):
            raise CardError(
                f"{source}: 'hierarchy.interactions[{i}]' is {inter!r}; give a list of two or "
                f"more factors from hierarchy.factors = {factors}."
            )
    for name, prior in raw.get("priors", {}).items():
        if not isinstance(prior, dict) or "family" not in prior:
            raise CardError(
                f"{source}: 'priors.{name}' must be a table with a family and its parameters, "
                f'e.g. [priors.{name}] family = "HalfNormal", sigma = 0.5.'
            )
    # value model
    weights = raw["value"]["weights"]
    for o, w in weights.items():
        if o not in outcome_names:
            close = difflib.get_close_matches(o, outcome_names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise CardError(
                f"{source}: 'value.weights.{o}' names no outcome{hint}; weights must be keyed "
                f"by outcomes {outcome_names}."
            )
        if not _type_ok(w, float):
            raise CardError(
                f"{source}: 'value.weights.{o}' must be a number (dollars per unit), not {w!r}."
            )
    for name, o in raw["value"].get("assumptions", {}).items():
        if not isinstance(o, str) or o not in weights:
            raise CardError(
                f"{source}: 'value.assumptions.{name}' must name an outcome with a weight in "
                f"[value.weights] ({list(weights)}), not {o!r}."
            )
    for o in raw["value"].get("transport_outcomes", []):
        if o not in weights:
            raise CardError(
                f"{source}: 'value.transport_outcomes' lists {o!r}, which has no weight in "
                f"[value.weights] ({list(weights)})."
            )
    dec = raw.get("decision", {})
    if "compare_factor" in dec and dec["compare_factor"] not in factors:
        raise CardError(
            f"{source}: 'decision.compare_factor' is {dec['compare_factor']!r}; use one of "
            f"{factors}."
        )
    launch = raw["launch"]
    if launch["eligible"] <= 0:
        raise CardError(f"{source}: 'launch.eligible' must be a positive number of customers.")
    if launch["fixed_cost"] < 0:
        raise CardError(f"{source}: 'launch.fixed_cost' must be >= 0 dollars.")
    for factor, shares in launch.get("mix", {}).items():
        if factor not in factors:
            raise CardError(
                f"{source}: 'launch.mix.{factor}' is not a hierarchy factor; use one of {factors}."
            )
        if not isinstance(shares, dict) or not all(_type_ok(v, float) for v in shares.values()):
            raise CardError(
                f"{source}: 'launch.mix.{factor}' must be a table level -> share, e.g. "
                '{ "Low risk" = 0.5, "High risk" = 0.5 }.'
            )
    # policies
    names = [p["name"] for p in raw.get("policies", [])]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise CardError(f"{source}: policy name(s) {sorted(dup)} used twice in [[policies]].")
    for i, pol in enumerate(raw.get("policies", [])):
        for factor, levels in pol["treat"].items():
            if factor in ("all", "none"):
                if not isinstance(levels, bool):
                    raise CardError(
                        f"{source}: 'policies[{i}].treat.{factor}' must be true or false."
                    )
                continue
            if factor not in factors:
                raise CardError(
                    f"{source}: 'policies[{i}].treat.{factor}' is not a hierarchy factor; use "
                    f"one of {factors} (or all = true / none = true)."
                )
            if not isinstance(levels, list) or not all(isinstance(v, str) for v in levels):
                raise CardError(
                    f"{source}: 'policies[{i}].treat.{factor}' must be a list of level names."
                )
    # rules
    rule_names = [r["name"] for r in raw["rules"]]
    dup = {n for n in rule_names if rule_names.count(n) > 1}
    if dup:
        raise CardError(f"{source}: rule name(s) {sorted(dup)} used twice in [[rules]].")
    for i, rule in enumerate(raw["rules"]):
        required, optional = RULE_KEYS[rule["type"]]
        allowed = (*_RULE_COMMON, *required, *optional)
        extra = [k for k in rule if k not in allowed]
        if extra:
            raise CardError(
                f"{source}: 'rules[{i}].{extra[0]}' does not apply to type = {rule['type']!r}; "
                f"its keys are {list(allowed)}."
            )
        missing = [k for k in required if k not in rule]
        if missing:
            raise CardError(
                f"{source}: missing required key 'rules[{i}].{missing[0]}' for type = "
                f"{rule['type']!r} (rule {rule['name']!r}); add {missing[0]} = ..."
            )
        if rule["type"] == "effect_bound" and "upper" not in rule and "lower" not in rule:
            raise CardError(
                f"{source}: rule {rule['name']!r} (effect_bound) needs 'upper' and/or 'lower'."
            )
        if "outcome" in rule and rule["outcome"] not in outcome_names:
            raise CardError(
                f"{source}: 'rules[{i}].outcome' is {rule['outcome']!r}; use one of "
                f"{outcome_names}."
            )
        if "factor" in rule and rule["factor"] not in factors:
            raise CardError(
                f"{source}: 'rules[{i}].factor' is {rule['factor']!r}; use one of {factors}."
            )
        for key in ("min_prob", "max_prob"):
            if key in rule and not 0 <= rule[key] <= 1:
                raise CardError(
                    f"{source}: 'rules[{i}].{key}' must lie in [0, 1], not {rule[key]}."
                )
    # feature dictionary
    features = raw["features"]
    for col, entry in features.items():
        if not isinstance(entry, dict):
            raise CardError(
                f"{source}: 'features.{col}' must be a table with description and role "
                f"([features.{col}])."
            )
        _check_table(entry, FEATURE_KEYS, f"features.{col}", source)
    used = [
        exp["treatment"],
        *outcome_names,
        *factors,
        *exp.get("covariates", []),
        *([exp["unit_id"]] if "unit_id" in exp else []),
    ]
    undocumented = [c for c in used if c not in features]
    if undocumented:
        raise CardError(
            f"{source}: column(s) {undocumented} are used but missing from the feature "
            f"dictionary; add a [features.{undocumented[0]}] table with description and role."
        )


def card_from_dict(
    raw: Mapping[str, Any], *, path: Path | None = None, source: str = "card"
) -> ModelCard:
    """Validate a parsed card (the TOML's content) and build the typed :class:`ModelCard`."""
    raw = copy.deepcopy(dict(raw))
    _check_table(raw, SCHEMA, "", source)
    _check_semantics(raw, source)
    try:
        outcomes = tuple(
            Outcome(o["name"], o["kind"], o.get("label", ""), o.get("unit", ""))
            for o in raw["outcomes"]
        )
        roles = {o["name"]: o.get("role", "secondary") for o in raw["outcomes"]}
        data = raw["data"]
        data_path = None
        if "path" in data:
            data_path = Path(data["path"]).expanduser()
            if not data_path.is_absolute() and path is not None:
                data_path = path.parent / data_path
        source_obj = DataSource(
            simulator=data.get("simulator"),
            args=dict(data.get("args", {})),
            path=data_path,
            description=data.get("description", ""),
            single_arm_cells=data.get("single_arm_cells", "error"),
            drop_missing_outcomes=bool(data.get("drop_missing_outcomes", False)),
        )
        val = raw["value"]
        launch = raw["launch"]
        policies = []
        for p in raw.get("policies", []):
            treat = {k: tuple(v) for k, v in p["treat"].items() if k not in ("all", "none")}
            policies.append(
                Policy(
                    name=p["name"],
                    treat=treat,
                    description=p.get("description", ""),
                    treat_all=bool(p["treat"].get("all", False)),
                    treat_none=bool(p["treat"].get("none", False)),
                )
            )
        features = {
            col: Feature(
                name=col,
                description=e["description"],
                role=e["role"],
                type=e.get("type", ""),
                unit=e.get("unit", ""),
                levels=tuple(e.get("levels", ())),
                pre_treatment=e.get("pre_treatment"),
                source=e.get("source", ""),
            )
            for col, e in raw["features"].items()
        }
        mon = raw.get("monitoring", {})
        card = ModelCard(
            raw=raw,
            path=path,
            name=raw["card"]["name"],
            version=raw["card"]["version"],
            title=raw["card"].get("title", raw["card"]["name"]),
            info=dict(raw["card"]),
            data=source_obj,
            experiment=dict(raw["experiment"]),
            outcomes=outcomes,
            outcome_roles=roles,
            features=features,
            hierarchy=Hierarchy(
                factors=tuple(raw["hierarchy"]["factors"]),
                interactions=tuple(tuple(x) for x in raw["hierarchy"].get("interactions", [])),
                description=raw["hierarchy"].get("description", ""),
            ),
            priors=dict(raw.get("priors", {})),
            fit=dict(raw.get("fit", {})),
            value=ValueModel(
                weights={k: float(v) for k, v in val["weights"].items()},
                assumptions=dict(val.get("assumptions", {})),
                transport_outcomes=tuple(val.get("transport_outcomes", ())),
                description=val.get("description", ""),
                unit=val.get("unit", "dollars per eligible customer"),
            ),
            launch=Launch(
                eligible=int(launch["eligible"]),
                fixed_cost=float(launch["fixed_cost"]),
                transport_multiplier=float(launch.get("transport_multiplier", 1.0)),
                large_loss=float(launch.get("large_loss", 500_000.0)),
                mix={f: {k: float(v) for k, v in s.items()} for f, s in launch["mix"].items()}
                if "mix" in launch
                else None,
                description=launch.get("description", ""),
                fixed_cost_scaling=launch.get("fixed_cost_scaling", "constant"),
                min_cost_share=float(launch.get("min_cost_share", 0.05)),
            ),
            policies=tuple(policies),
            rules=tuple(
                Rule(
                    name=r["name"],
                    type=r["type"],
                    params={k: v for k, v in r.items() if k not in _RULE_COMMON},
                    description=r.get("description", ""),
                )
                for r in raw["rules"]
            ),
            decision=dict(raw.get("decision", {})),
            checks=Checks(**raw.get("checks", {})),
            risks=tuple(Risk(**r) for r in raw.get("risks", [])),
            monitoring=Monitoring(
                holdout_share=mon.get("holdout_share"),
                cadence=mon.get("cadence", ""),
                metrics=tuple(mon.get("metrics", ())),
                stop_rules=tuple(mon.get("stop_rules", ())),
                review=mon.get("review", ""),
            ),
        )
        card.spec  # noqa: B018 - builds the ExperimentSpec to surface its errors here
    except CardError:
        raise
    except SpecError as exc:
        raise CardError(f"{source}: {exc}") from None
    return card


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a model card TOML file.

    Parameters
    ----------
    path:
        Path to ``models/<name>.toml``.

    Raises
    ------
    CardError
        The file is missing or is not valid TOML, or a key is unknown, missing or of the wrong
        type; the message names the key and the fix.
    """
    p = Path(path)
    if not p.exists():
        folder = p.parent if str(p.parent) else Path(".")
        known = sorted(x.name for x in folder.glob("*.toml")) if folder.is_dir() else []
        hint = f"; cards in {folder}/: {known}" if known else ""
        raise CardError(f"model card {str(p)!r} does not exist{hint}")
    if p.is_dir():
        raise CardError(f"model card {str(p)!r} is a folder; give the path to a .toml file")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CardError(f"model card {str(p)!r} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CardError(f"cannot read model card {str(p)!r}: {exc}") from None
    return card_from_dict(raw, path=p, source=str(p))


# ---------------------------------------------------------------------------------------------
# Overrides (used by `bayesdecide memo --set key=value`)
# ---------------------------------------------------------------------------------------------

_LAUNCH_SHORTCUTS = ("eligible", "fixed_cost", "transport_multiplier", "large_loss")


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value as TOML (numbers, booleans, arrays, quoted strings) or a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["launch.fixed_cost=350000", ...]`` -> ``{"launch.fixed_cost": 350000}``."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise CardError(f"--set {item!r}: write key=value, e.g. --set launch.fixed_cost=350000")
        key, _, value = item.partition("=")
        out[key.strip()] = parse_value(value.strip())
    return out


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply dotted-key overrides to a parsed card; returns a new dict (validate it afterwards).

    Keys are dotted paths into the card (``launch.fixed_cost``, ``value.weights.annoyance``,
    ``rules.0.min_prob`` or ``rules.Primary value.min_prob``), or shortcuts:
    ``fixed_cost``, ``eligible``, ``transport_multiplier``, ``large_loss`` (in ``[launch]``) and any
    named cost assumption of ``[value.assumptions]`` (e.g. ``annoyance_penalty=50`` sets the weight
    on ``annoyance`` to -50).
    """
    out = copy.deepcopy(dict(raw))
    assumptions = out.get("value", {}).get("assumptions", {})
    for key, value in overrides.items():
        if "." not in key:
            if key in assumptions:
                if not _type_ok(value, float):
                    raise CardError(f"--set {key}={value!r}: give a number of dollars")
                out["value"]["weights"][assumptions[key]] = -float(value)
                continue
            if key in _LAUNCH_SHORTCUTS:
                out["launch"][key] = value
                continue
            valid = [*_LAUNCH_SHORTCUTS, *assumptions, "<table>.<key> (e.g. launch.fixed_cost)"]
            raise CardError(f"--set {key}: unknown setting; valid shortcuts: {valid}")
        parts = key.split(".")
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                idx = _list_index(node, part, ".".join(parts[:i]))
                if last:
                    node[idx] = value
                else:
                    node = node[idx]
                continue
            if not isinstance(node, dict):
                raise CardError(f"--set {key}: {'.'.join(parts[:i])!r} is not a table")
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return out


def _list_index(items: list[Any], part: str, where: str) -> int:
    if part.isdigit():
        idx = int(part)
        if idx >= len(items):
            raise CardError(f"--set: {where} has {len(items)} entries; index {idx} is too large")
        return idx
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return i
    names = [it.get("name") for it in items if isinstance(it, dict)]
    raise CardError(f"--set: {where} has no entry named {part!r}; names: {names}")


__all__ = [
    "CardError",
    "Checks",
    "DataSource",
    "Feature",
    "Hierarchy",
    "Launch",
    "ModelCard",
    "Monitoring",
    "Policy",
    "Risk",
    "Rule",
    "SCHEMA",
    "ValueModel",
    "apply_overrides",
    "card_from_dict",
    "load_card",
    "parse_assignments",
    "simulate",
]
