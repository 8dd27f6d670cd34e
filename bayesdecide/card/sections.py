"""The tables of a model card, one frozen dataclass each: their fields are the card's keys.

Each key carries its meaning and unit (:func:`bayesdecide.card.schema.key`); the engine in
:mod:`bayesdecide.card.schema` checks a parsed TOML table against these classes and builds them.
Defaults shared with the decision stage are read from it (``Population``, ``DECISION_DEFAULTS``),
never restated. ``[fit]`` is :class:`bayesdecide.card.fit_settings.FitSettings` and ``[checks]``
is :class:`bayesdecide.decide.checks.CheckThresholds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayesdecide.card.schema import default, key
from bayesdecide.data.spec import OutcomeKind
from bayesdecide.decide.defaults import DECISION_DEFAULTS
from bayesdecide.decide.guardrails import GUARDRAIL_TYPES
from bayesdecide.decide.population import Population
from bayesdecide.errors import CardError

OUTCOME_ROLES = ("primary", "guardrail", "component", "secondary")
FEATURE_ROLES = ("id", "treatment", "group", "covariate", "outcome", "context")
SIMULATORS = ("retention", "markets")


@dataclass(frozen=True)
class CardInfo:
    """``[card]``: identity of the card in the registry."""

    name: str = key("registry name, e.g. 'retention_outreach' (letters, digits, '_', '-', '.')")
    version: str = key("card version, e.g. '1.0.0'; bump it on every change")
    title: str = key("one-line title used in the memo", "")
    description: str = key("what the experiment tested and why", "")
    owner: str = key("team or person accountable for the decision", "")
    decision: str = key("the action on the table, one sentence", "")
    created: str = key("date the card was first written (YYYY-MM-DD)", "")
    status: str = key("draft, pre-registered, decided or retired", "")
    tags: tuple[str, ...] = key("free labels", ())


@dataclass(frozen=True)
class SourceEntry:
    """``[[data.sources]]``: one experiment (or wave) of a card that pools several.

    Rows come from a simulator or a file read by DuckDB (the card's columns, as for a single
    source); a past experiment known only by published estimates comes from a ``summary`` table:
    one row per cell (a level of every hierarchy factor but the experiment factor) and outcome,
    with the estimate, its standard error and the units in the cell.
    """

    label: str = key(
        "the experiment's level of the experiment factor, e.g. '2025-wave-1' (letters, digits, "
        "'_', '-', '.')"
    )
    simulator: str | None = key(
        "simulator name: 'retention' or 'markets' (one of simulator, path, summary)",
        None,
        choices=SIMULATORS,
    )
    args: dict[str, Any] = key("keyword arguments of the simulator", {})
    path: str | None = key(
        "Parquet/CSV file, folder or glob of rows read by DuckDB; relative to the card's folder",
        None,
    )
    summary: str | None = key(
        "CSV/Parquet file of published estimates, one row per cell x outcome; relative to the "
        "card's folder",
        None,
    )
    estimate: str = key(
        "summary: column of the effect estimates, in the outcome's unit", "estimate"
    )
    std_error: str = key("summary: column of their standard errors, same unit", "std_error")
    outcome: str = key("summary: column naming each row's outcome", "outcome")
    n: str = key("summary: column of randomized units per cell (both arms)", "n")
    description: str = key("what the experiment was, when and where it ran", "")

    @property
    def kind(self) -> str:
        """``"summary"`` for published estimates, else ``"rows"``."""
        return "summary" if self.summary is not None else "rows"

    def load(self) -> Any:
        """Rows (a pandas DataFrame from the simulator, or the file path for DuckDB) or, for a
        summary source, the published table as a pandas DataFrame."""
        if self.simulator is not None:
            return simulate(self.simulator, self.args).data
        if self.summary is not None:
            return read_summary_table(self.summary)
        return str(self.path)

    @property
    def source_label(self) -> str:
        if self.simulator is not None:
            args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
            return f"{self.label}: simulator {self.simulator}({args})"
        if self.summary is not None:
            return f"{self.label}: published estimates {self.summary}"
        return f"{self.label}: file {self.path}"


def read_summary_table(path: str) -> Any:
    """A published-estimates table (CSV or Parquet) as a pandas DataFrame, read by DuckDB."""
    import duckdb

    from bayesdecide.errors import DataValidationError

    p = Path(path)
    if not p.exists():
        raise DataValidationError(f"summary table {path!r} does not exist; fix [[data.sources]]")
    reader = "read_parquet" if p.suffix.lower() == ".parquet" else "read_csv_auto"
    try:
        return duckdb.sql(f"SELECT * FROM {reader}(?)", params=[str(p)]).df()
    except duckdb.Error as exc:
        raise DataValidationError(f"summary table {path!r} cannot be read: {exc}") from None


@dataclass(frozen=True)
class DataSource:
    """``[data]``: where the rows come from, a simulator (with ``[data.args]``) or a file; or
    several experiments pooled in one fit (``[[data.sources]]``)."""

    simulator: str | None = key(
        "simulator name: 'retention' or 'markets' (use either this or path)",
        None,
        choices=SIMULATORS,
    )
    args: dict[str, Any] = key("keyword arguments of the simulator", {})
    path: str | None = key(
        "Parquet/CSV file, folder or glob read by DuckDB; relative paths are resolved against the "
        "card's folder (use either this or simulator)",
        None,
    )
    description: str = key("where the data comes from, extraction date, filters", "")
    single_arm_cells: str = key(
        "'error' (default) rejects cells with one arm; 'keep' lets the hierarchy predict their "
        "effects",
        "error",
        choices=("error", "keep"),
    )
    drop_missing_outcomes: bool = key(
        "drop rows with missing outcomes (counted per arm; default false)", False
    )
    sources: tuple[SourceEntry, ...] = key(
        "several experiments (or waves) pooled in one fit, one [[data.sources]] table each "
        "(instead of simulator/path); their labels are the levels of experiment_factor",
        (),
    )
    experiment_factor: str = key(
        "with [[data.sources]]: the hierarchy factor whose levels are the sources' labels (list "
        "it in hierarchy.factors and the feature dictionary)",
        "experiment",
    )

    @property
    def pooled(self) -> bool:
        """Whether the card pools several experiments (``[[data.sources]]``)."""
        return bool(self.sources)

    def load(self) -> Any:
        """The data: a pandas DataFrame from the simulator, or the file path for DuckDB."""
        if self.pooled:
            raise CardError(
                "this card pools several experiments ([[data.sources]]); load them one by one "
                "with card.data.sources[i].load(), or use card.cells() / card.effects()"
            )
        if self.simulator is not None:
            return simulate(self.simulator, self.args).data
        return str(self.path)

    @property
    def label(self) -> str:
        if self.pooled:
            return f"{len(self.sources)} experiments: " + "; ".join(
                s.source_label for s in self.sources
            )
        if self.simulator is not None:
            args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
            return f"simulator {self.simulator}({args})"
        return f"file {self.path}"


def simulate(name: str, args: Mapping[str, Any]) -> Any:
    """Run a named simulator with keyword ``args``; returns its :class:`Simulation`."""
    if name == "retention":
        from bayesdecide.simulate.retention import simulate_retention as fn
    elif name == "markets":
        from bayesdecide.simulate.markets import simulate_markets as fn
    else:
        raise CardError(f"data.simulator {name!r} is unknown; use one of {list(SIMULATORS)}")
    try:
        return fn(**dict(args))
    except TypeError as exc:
        raise CardError(f"data.args do not fit simulator {name!r}: {exc}; fix [data.args]") from exc


@dataclass(frozen=True)
class Experiment:
    """``[experiment]``: the randomized design."""

    treatment: str = key("column holding the assignment")
    arms: tuple[Any, ...] = key(
        "values of the treatment column, control first: [control, treatment] for a two-arm "
        "experiment, or [control, arm_1, ..., arm_k] for k >= 2 treatment arms against one "
        "control (e.g. ['control', 'outreach', 'email'])"
    )
    arm_shares: tuple[float, ...] = key(
        "multi-arm experiments: designed share of units assigned to each arm, in the order of "
        "arms (positive, summing to 1); default equal shares",
        (),
    )
    unit_id: str | None = key("column identifying the randomized unit", None)
    assignment_share: float = key(
        "two-arm experiments: designed share of units assigned to treatment, strictly between 0 "
        "and 1",
        0.5,
    )
    randomization_unit: str = key("what was randomized, e.g. 'customer'", "unit")
    horizon: str = key("outcome window, e.g. '90 days'", "")
    population: str = key("who was eligible for the experiment", "")
    estimand: str = key("the causal quantity, e.g. the ITT effect of assignment", "")
    dates: str = key("when the experiment ran", "")
    covariates: tuple[str, ...] = key("pre-treatment numeric columns for adjustment", ())


@dataclass(frozen=True)
class OutcomeEntry:
    """``[[outcomes]]``: one measured outcome."""

    name: str = key("column name")
    kind: str = key("measurement scale", choices=tuple(k.value for k in OutcomeKind))
    label: str = key("human-readable name", "")
    unit: str = key("unit of one observation, e.g. 'dollars per customer over 90 days'", "")
    role: str = key("role in the decision", "secondary", choices=OUTCOME_ROLES)
    description: str = key("how the outcome is measured", "")


@dataclass(frozen=True)
class Feature:
    """``[features.<column>]``: one column of the feature dictionary."""

    description: str = key("what the column means")
    role: str = key("how the analysis uses it", choices=FEATURE_ROLES)
    type: str = key("data type, e.g. 'float', 'int', 'category', '0/1'", "")
    unit: str = key("unit, e.g. 'dollars', 'months'", "")
    levels: tuple[Any, ...] = key("allowed levels of a categorical column", ())
    pre_treatment: bool | None = key("measured before assignment", None)
    source: str = key("upstream table or system", "")


@dataclass(frozen=True)
class Hierarchy:
    """``[hierarchy]``: grouping factors (cells are their combinations) and interactions."""

    factors: tuple[str, ...] = key("grouping columns; each combination is a cell")
    interactions: tuple[tuple[str, ...], ...] = key(
        "lists of two or more factors given their own pooled term; in a multi-arm card "
        "'treatment_arm' may be one of them (an arm x factor interaction: the arms' effects "
        "differ by that factor's levels beyond the main effects)",
        (),
    )
    cross_validate: tuple[str, ...] = key(
        "factors whose levels each run holds out one at a time, refitting and predicting the "
        "held-out level as a new one (bayesdecide.validate.cross_validate_levels); the memo "
        "warns when a level's own estimate has a PIT outside [0.025, 0.975]. One refit per level",
        (),
    )
    description: str = key("why these factors", "")


@dataclass(frozen=True)
class ValueSection:
    """``[value]``: dollars per eligible customer as a weighted sum of outcome effects."""

    weights: dict[str, float] = key("outcome -> dollars per unit of that outcome's effect")
    assumptions: dict[str, str] = key(
        "named cost assumptions: name -> outcome whose weight is minus that cost (e.g. "
        "annoyance_penalty = 'annoyance'); each can be changed with `memo --set name=dollars`",
        {},
    )
    transport_outcomes: tuple[str, ...] = key(
        "outcomes whose effect the transport multiplier scales (the benefits)", ()
    )
    description: str = key("the value formula in words", "")
    unit: str = key("unit of the value", "dollars per eligible customer")


@dataclass(frozen=True)
class LaunchSection:
    """``[launch]``: the launch population the decision is about."""

    eligible: int = key("number of eligible customers at launch (> 0)")
    fixed_cost: float = key("fixed implementation cost in dollars (finite, >= 0)")
    transport_multiplier: float = key(
        "share of the experiment's benefit expected at launch (> 0; 1 = no decay)",
        default(Population, "transport_multiplier"),
    )
    large_loss: float = key(
        "dollars; P(launch value < -large_loss) is reported", DECISION_DEFAULTS["loss_threshold"]
    )
    fixed_cost_scaling: str = key(
        "'constant' (the full fixed cost whenever anyone is treated) or 'treated_share' (fixed "
        "cost x max(treated share, min_cost_share))",
        default(Population, "fixed_cost_scaling"),
        choices=("constant", "treated_share"),
    )
    min_cost_share: float = key(
        "floor of the treated share in 'treated_share', in [0, 1]",
        default(Population, "min_cost_share"),
    )
    mix: dict[str, dict[str, float]] | None = key(
        "launch mix: factor -> {level: share}; default the experiment's mix", None
    )
    experiment: str | None = key(
        "with [[data.sources]]: the experiment (a source label) whose population the launch is "
        "about; default the last source with rows",
        None,
    )
    description: str = key("who will be treated and when", "")


@dataclass(frozen=True)
class PolicyEntry:
    """``[[policies]]``: a rollout policy; its id is its name in lower case with ``_``."""

    name: str = key("policy name shown in the memo, e.g. 'Treat high risk only'")
    treat: dict[str, Any] | None = key(
        "factor -> list of levels to treat (every listed factor must match), or all = true / "
        "none = true (give treat, or arms in a multi-arm card)",
        None,
    )
    arm: str | None = key(
        "multi-arm cards: the treatment arm the cells of treat get (required unless none = true)",
        None,
    )
    arms: dict[str, dict[str, Any]] | None = key(
        "multi-arm cards, instead of treat and arm: arm -> the cells that get it (factor -> list "
        "of levels, or all = true); no cell may get two arms",
        None,
    )
    description: str = key("what the policy does", "")


@dataclass(frozen=True)
class RuleEntry:
    """``[[rules]]``: a pre-registered rule, a guardrail of :mod:`bayesdecide.decide.guardrails`."""

    name: str = key("short name, e.g. 'Primary value'")
    type: str = key(
        "value_positive: P(launch value > min_value) >= min_prob; loss_limit: P(launch value < "
        "-loss) <= max_prob; effect_bound: P(lower <= effect on outcome <= upper) >= min_prob "
        "(with for_each: for every level of that factor); fairness_floor: P(every treated level "
        "of factor has effect >= floor) >= min_prob",
        choices=tuple(GUARDRAIL_TYPES),
    )
    description: str = key("the rule in words, as pre-registered", "")
    min_prob: float | None = key("posterior probability the rule needs to pass, in [0, 1]", None)
    max_prob: float | None = key("loss_limit: largest allowed probability of the loss", None)
    min_value: float | None = key("value_positive: dollars the launch value must exceed", None)
    loss: float | None = key("loss_limit: the loss in dollars", None)
    outcome: str | None = key(
        "effect_bound / fairness_floor: the outcome (left out: net value per customer, dollars)",
        None,
    )
    upper: float | None = key("effect_bound: upper bound in the outcome's unit", None)
    lower: float | None = key("effect_bound: lower bound in the outcome's unit", None)
    per: str | None = key(
        "effect_bound: average the effect over 'eligible' (default; untreated customers count "
        "0) or 'treated' customers",
        None,
        choices=("eligible", "treated"),
    )
    for_each: str | None = key(
        "effect_bound: a grouping factor, e.g. 'region'; the bound must hold for every level of "
        "it, the effect averaged over the level's eligible (or treated) customers",
        None,
    )
    relative_to: str | None = key(
        "effect_bound with for_each: 'overall' bounds each level's effect minus the same average "
        "over the whole launch population",
        None,
        choices=("overall",),
    )
    factor: str | None = key("fairness_floor: the grouping factor, e.g. 'region'", None)
    floor: float | None = key("fairness_floor: smallest allowed effect per treated level", None)

    def params(self) -> dict[str, Any]:
        """The parameters the card sets (besides name, type and description)."""
        skip = ("name", "type", "description")
        return {k: v for k, v in vars(self).items() if k not in skip and v is not None}


@dataclass(frozen=True)
class DecisionSection:
    """``[decision]``: how the decision tables are computed."""

    include_optimal: bool = key(
        "also evaluate the Bayes-optimal targeting policy", DECISION_DEFAULTS["include_optimal"]
    )
    decision_threshold: float = key(
        "P(value > 0) at which break-even thresholds are read, in (0, 1)",
        DECISION_DEFAULTS["decision_threshold"],
    )
    ci_prob: float = key(
        "probability of the equal-tailed posterior intervals of every table, in (0, 1)",
        DECISION_DEFAULTS["ci_prob"],
    )
    compare_factor: str | None = key(
        "factor whose levels are compared pairwise (default: 'region' when it is a factor)", None
    )
    fairness_factors: tuple[str, ...] | None = key(
        "factors whose levels the memo's fairness section reports (effects, treated shares, "
        "groups left out); default: every grouping factor",
        None,
    )
    break_even: tuple[str, ...] | None = key(
        "assumptions to report break-even values for: transport_multiplier, fixed_cost, "
        "n_eligible, a [value.assumptions] name, weight:<outcome> or penalty:<outcome> (default: "
        "transport multiplier, every named assumption, fixed cost, launch size)",
        None,
    )


@dataclass(frozen=True)
class Risk:
    """``[[risks]]``: one entry of the risk register."""

    risk: str = key("what could go wrong")
    why_it_matters: str = key("consequence for the decision")
    mitigation: str = key("what the rollout does about it")
    owner: str = key("who watches it", "")


STOP_RULE_TYPES = ("effect_above", "effect_below", "transport_below")


@dataclass(frozen=True)
class StopRule:
    """``[[monitoring.rules]]``: a stop rule that ``bayesdecide update`` evaluates on the rollout.

    The rule *fires* (stop or roll back) when the posterior probability of its event is at least
    ``min_prob``. Events: ``effect_above`` / ``effect_below``: the rollout's effect on ``outcome``
    (treated minus holdout, per assigned customer at the rollout's mix, in the outcome's unit) is
    above / below ``threshold``; ``transport_below``: the transport multiplier is below
    ``threshold`` (default: the parent run's break-even transport multiplier).
    """

    name: str = key("short name, e.g. 'Annoyance'")
    type: str = key(
        "effect_above, effect_below or transport_below (see [[monitoring.rules]] in the guide)",
        choices=STOP_RULE_TYPES,
    )
    outcome: str | None = key("effect_above / effect_below: the outcome", None)
    threshold: float | None = key(
        "effect rules: the bound in the outcome's unit per assigned customer; transport_below: "
        "a multiplier (default: the run's break-even transport multiplier)",
        None,
    )
    min_prob: float = key(
        "the rule fires when the posterior probability of its event is at least this, in (0, 1)",
        0.8,
    )
    description: str = key("the rule in words, as pre-registered", "")


@dataclass(frozen=True)
class Monitoring:
    """``[monitoring]``: the post-launch monitoring plan."""

    holdout_share: float | None = key("share of eligible customers kept as holdout", None)
    cadence: str = key("how often guardrails are reviewed", "")
    metrics: tuple[str, ...] = key("what is monitored", ())
    stop_rules: tuple[str, ...] = key("conditions that trigger rollback", ())
    review: str = key("when the decision is revisited", "")
    rules: tuple[StopRule, ...] = key(
        "stop rules `bayesdecide update` evaluates on the rollout data, one "
        "[[monitoring.rules]] table each",
        (),
    )


@dataclass(frozen=True)
class RegistrySection:
    """``[registry]``: where runs of this card are recorded."""

    path: str | None = key(
        "DuckDB file the runs of this card register in; relative to the card's folder "
        "(default: <out>/registry.duckdb; --registry overrides)",
        None,
    )


def resolve_path(path: str | None, card_path: Path | None) -> str | None:
    """``path`` resolved against the card's folder when relative (``None`` stays ``None``)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.is_absolute() and card_path is not None:
        p = card_path.parent / p
    return str(p)


def resolve_data_path(data: DataSource, card_path: Path | None) -> DataSource:
    """``data`` with relative paths (its own and its sources') resolved against the card's
    folder."""
    from dataclasses import replace

    sources = tuple(
        replace(s, path=resolve_path(s.path, card_path), summary=resolve_path(s.summary, card_path))
        for s in data.sources
    )
    return replace(data, path=resolve_path(data.path, card_path), sources=sources)


__all__ = [
    "STOP_RULE_TYPES",
    "CardInfo",
    "DataSource",
    "DecisionSection",
    "Experiment",
    "Feature",
    "Hierarchy",
    "LaunchSection",
    "Monitoring",
    "OutcomeEntry",
    "PolicyEntry",
    "RegistrySection",
    "Risk",
    "RuleEntry",
    "SourceEntry",
    "StopRule",
    "ValueSection",
    "read_summary_table",
    "resolve_data_path",
    "resolve_path",
    "simulate",
]
