"""The typed model card: one reviewed TOML file that says everything a decision run needs.

A card (``models/<name>.toml``) records where the data comes from, what every column means (the
feature dictionary), the treatment and its arms, the outcomes and their kinds, the hierarchy the
model pools over, priors, sampler settings, the value model, the launch population, the policies
compared, the pre-registered rules, the checks that gate a recommendation, the risk register and
the monitoring plan. :class:`ModelCard`'s fields are its top-level tables; the engine of
:mod:`bayesdecide.card.schema` builds it from the TOML and :mod:`bayesdecide.card.semantics` checks
it, so a card that loads can be run.

From a card to a decision in Python::

    card = bd.load_card("models/retention_outreach.toml")
    fit = card.fit()                 # the card's data, hierarchy, priors and [fit] settings
    decision = card.decide(fit)      # the card's value model, launch, policies, rules, checks
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayesdecide.card.fit_settings import FitSettings
from bayesdecide.card.schema import build, key
from bayesdecide.card.sections import (
    CardInfo,
    DataSource,
    DecisionSection,
    Experiment,
    Feature,
    Hierarchy,
    LaunchSection,
    Monitoring,
    OutcomeEntry,
    PolicyEntry,
    RegistrySection,
    Risk,
    RuleEntry,
    ValueSection,
    resolve_data_path,
    resolve_path,
)
from bayesdecide.card.semantics import check_card
from bayesdecide.data.spec import ExperimentSpec, Outcome
from bayesdecide.decide.checks import CheckThresholds
from bayesdecide.decide.guardrails import Guardrail, guardrail_from_dict
from bayesdecide.decide.policies import Policy, policy_id, treat_all, treat_all_id, treat_none
from bayesdecide.decide.population import Population
from bayesdecide.decide.settings import DecisionSettings
from bayesdecide.decide.value import ValueModel
from bayesdecide.errors import CardError


@dataclass(frozen=True, kw_only=True)
class ModelCard:
    """A validated model card; build it with :func:`load_card` (or :func:`card_from_dict`).

    ``raw`` is the card as parsed (a plain dict); ``path`` the file it came from.
    """

    info: CardInfo = key("identity of the card in the registry", name="card")
    data: DataSource = key("where the rows come from: a simulator or a file")
    experiment: Experiment = key("the randomized design")
    outcomes: tuple[OutcomeEntry, ...] = key("measured outcomes, one [[outcomes]] table each")
    features: dict[str, Feature] = key(
        "feature dictionary: one [features.<column>] table per data column"
    )
    hierarchy: Hierarchy = key("grouping factors the model pools treatment effects over")
    priors: dict[str, Any] = key(
        "prior overrides by name (mu, sigma_<factor>, sigma_<f1>_x_<f2>, sigma_cell, cell_nu, "
        "level_nu), each a table with a family and its parameters",
        {},
    )
    sampling: FitSettings = key(
        "sampler settings of a full run (the CLI's --draws/--quick override them)",
        FitSettings(),
        name="fit",
    )
    value: ValueSection = key(
        "the value model: dollars per eligible customer as a weighted sum of outcome effects"
    )
    launch: LaunchSection = key("the launch population the decision is about")
    policies: tuple[PolicyEntry, ...] = key(
        "rollout policies compared, one [[policies]] table each", ()
    )
    rules: tuple[RuleEntry, ...] = key(
        "pre-registered decision rules (guardrails), one [[rules]] table each"
    )
    decision: DecisionSection = key("how the decision tables are computed", DecisionSection())
    checks: CheckThresholds = key(
        "data-quality and sampler checks that block a launch recommendation", CheckThresholds()
    )
    risks: tuple[Risk, ...] = key("risk register, one [[risks]] table each", ())
    monitoring: Monitoring = key("the post-launch monitoring plan", Monitoring())
    registry: RegistrySection = key(
        "the run registry runs of this card are recorded in", RegistrySection()
    )
    raw: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    path: Path | None = field(default=None, init=False, repr=False, compare=False)

    # -- identity --------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def title(self) -> str:
        return self.info.title or self.info.name

    @property
    def sha256(self) -> str:
        """SHA-256 of the card's content (canonical JSON), recorded in run lineage."""
        payload = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The card as a plain dict (the TOML's content)."""
        return copy.deepcopy(self.raw)

    def with_overrides(self, overrides: Mapping[str, Any]) -> ModelCard:
        """A new validated card with ``overrides`` applied (see
        :func:`bayesdecide.card.overrides.apply_overrides`)."""
        from bayesdecide.card.overrides import apply_overrides

        raw = apply_overrides(self.raw, overrides)
        return card_from_dict(raw, path=self.path, source=str(self.path or self.name))

    # -- the experiment --------------------------------------------------------------------------
    @property
    def outcome_names(self) -> list[str]:
        return [o.name for o in self.outcomes]

    @property
    def factors(self) -> tuple[str, ...]:
        return self.hierarchy.factors

    @property
    def spec(self) -> ExperimentSpec:
        """The :class:`ExperimentSpec` of the card's data."""
        exp = self.experiment
        return ExperimentSpec(
            name=self.name,
            treatment=exp.treatment,
            arms=tuple(exp.arms),
            outcomes=tuple(Outcome(o.name, o.kind, o.label, o.unit) for o in self.outcomes),
            groups=self.factors,
            covariates=exp.covariates,
            unit_id=exp.unit_id,
            levels={
                f: tuple(self.features[f].levels)
                for f in self.factors
                if f in self.features and self.features[f].levels
            },
        )

    @property
    def row_spec(self) -> ExperimentSpec:
        """The spec each experiment's rows are read with: :attr:`spec` without the experiment
        factor of a pooled card (the factor is added when the experiments are combined)."""
        from bayesdecide.data.combine import without_factor

        return without_factor(self.spec, self.data.experiment_factor) if self.pooled else self.spec

    # -- several experiments ---------------------------------------------------------------------
    @property
    def pooled(self) -> bool:
        """Whether the card pools several experiments (``[[data.sources]]``)."""
        return self.data.pooled

    @property
    def experiment_factor(self) -> str | None:
        """The factor whose levels are the experiments (``None`` for a single experiment)."""
        return self.data.experiment_factor if self.pooled else None

    @property
    def experiments(self) -> list[str]:
        """Labels of the pooled experiments, in card order (empty for a single experiment)."""
        return [s.label for s in self.data.sources]

    @property
    def target_experiment(self) -> str | None:
        """The experiment whose population the launch decision is about: ``[launch].experiment``,
        else the last source with rows (``None`` for a single experiment)."""
        if not self.pooled:
            return None
        if self.launch.experiment is not None:
            return self.launch.experiment
        return [s.label for s in self.data.sources if s.kind == "rows"][-1]

    @property
    def registry_path(self) -> Path | None:
        """``[registry].path`` resolved against the card's folder (``None``: not set)."""
        p = resolve_path(self.registry.path, self.path)
        return Path(p) if p is not None else None

    @property
    def assignment_share(self) -> float:
        """Designed share of units assigned to treatment (two-arm experiments)."""
        return self.experiment.assignment_share

    @property
    def multi_arm(self) -> bool:
        """Whether the card has k >= 2 treatment arms against one control."""
        return len(self.experiment.arms) > 2

    @property
    def arm_shares(self) -> dict[str, float] | None:
        """Multi-arm cards: arm label -> designed share (``[experiment].arm_shares``, default
        equal); ``None`` for a two-arm card."""
        if not self.multi_arm:
            return None
        labels = self.spec.arm_labels
        given = self.experiment.arm_shares or (1.0 / len(labels),) * len(labels)
        return dict(zip(labels, (float(x) for x in given), strict=True))

    @property
    def primary_outcome(self) -> str:
        """The outcome with role 'primary' (the first outcome when none is marked)."""
        return next((o.name for o in self.outcomes if o.role == "primary"), self.outcomes[0].name)

    @property
    def guardrail_outcomes(self) -> list[str]:
        return [o.name for o in self.outcomes if o.role == "guardrail"]

    @property
    def checked_outcomes(self) -> list[str]:
        """The outcomes cross-validation checks: the primary, then the guardrail outcomes."""
        primary = self.primary_outcome
        return [primary] + [o for o in self.guardrail_outcomes if o != primary]

    @property
    def compare_factor(self) -> str | None:
        """The factor whose levels the run compares: ``[decision].compare_factor``, else
        ``region`` when it is a factor, else none."""
        if self.decision.compare_factor is not None:
            return self.decision.compare_factor
        return "region" if "region" in self.factors else None

    @property
    def fairness_factors(self) -> tuple[str, ...]:
        """Factors the memo's fairness section reports: ``[decision].fairness_factors``, else
        every grouping factor."""
        given = self.decision.fairness_factors
        return tuple(self.factors) if given is None else tuple(given)

    # -- fitting ---------------------------------------------------------------------------------
    def fit_settings(self, *, quick: bool = False, **overrides: Any) -> dict[str, Any]:
        """Sampler settings: ``FIT_DEFAULTS`` < the card's ``[fit]`` < ``quick`` < ``overrides``."""
        return self.sampling.resolve(quick=quick, **overrides)

    def cells(self, data: Any = None) -> Any:
        """Cell statistics of ``data`` (default: the card's data source) under the card's spec.

        A pooled card (``[[data.sources]]``) aggregates every source with rows under
        :attr:`row_spec` and combines them (:func:`bayesdecide.data.combine.combine_cells`); its
        experiment factor's levels are the source labels. ``data`` is then refused: give it per
        source in the card.
        """
        from bayesdecide.data import cell_stats

        def aggregate(rows: Any, spec: ExperimentSpec) -> Any:
            return cell_stats(
                rows,
                spec,
                single_arm_cells=self.data.single_arm_cells,
                drop_missing_outcomes=self.data.drop_missing_outcomes,
            )

        if not self.pooled:
            return aggregate(self.data.load() if data is None else data, self.spec)
        if data is not None:
            raise CardError(
                f"card {self.name!r} pools several experiments; its data are the "
                "[[data.sources]] of the card, so card.cells() takes no data"
            )
        from bayesdecide.data.combine import combine_cells

        parts = {
            s.label: aggregate(s.load(), self.row_spec)
            for s in self.data.sources
            if s.kind == "rows"
        }
        return combine_cells(parts, self.data.experiment_factor, self.factors)

    def effects(self, cells: Any = None) -> Any:
        """The EffectTable the card's model is fitted on: :func:`bayesdecide.cell_effects` of
        ``cells`` (default :meth:`cells`), and for a pooled card the published estimates of its
        summary sources added as further experiments
        (:func:`bayesdecide.data.combine.combine_effects`)."""
        from bayesdecide.data.effects import cell_effects

        cells = self.cells() if cells is None else cells
        table = cell_effects(cells)
        summaries = [s for s in self.data.sources if s.kind == "summary"]
        if not summaries:
            return table
        from bayesdecide.data.combine import combine_effects
        from bayesdecide.data.effects import linear_combinations

        derived = linear_combinations(cells)  # outcomes the model derives from components
        parts: dict[str, Any] = {"rows": table}  # labelled already: its key is not a level
        for s in summaries:
            parts[s.label] = self._summary_table(s, derived)
        return combine_effects(parts, self.data.experiment_factor, self.factors)

    def _summary_table(self, source: Any, derived: Mapping[str, Any]) -> Any:
        """A summary source's published estimates as an EffectTable (errors name the source)."""
        from bayesdecide.errors import DataValidationError
        from bayesdecide.model.summary import table_from_summary

        frame = source.load()
        groups = [f for f in self.factors if f != self.data.experiment_factor]
        where = f"[[data.sources]] {source.label!r} ({source.summary})"
        if source.outcome not in frame.columns:
            raise DataValidationError(
                f"{where} has no column {source.outcome!r} naming each row's outcome; columns: "
                f"{list(frame.columns)} (set outcome = '<column>')"
            )
        reported = [str(o) for o in frame[source.outcome].unique()]
        unknown = [o for o in reported if o not in self.outcome_names]
        if unknown:
            raise DataValidationError(
                f"{where} reports outcome(s) {unknown} that the card does not measure; use the "
                f"card's outcome names {self.outcome_names} or drop those rows"
            )
        bad = [o for o in reported if o in derived]
        if bad:
            parts = ", ".join(derived[bad[0]])
            raise DataValidationError(
                f"{where} reports {bad}, which the model derives exactly from its components "
                f"({parts}) in the row-level data, so a published estimate of it cannot inform "
                "the fit; give the components' estimates instead, or drop those rows"
            )
        try:
            return table_from_summary(
                frame,
                estimate=source.estimate,
                std_error=source.std_error,
                groups=groups,
                outcome=source.outcome,
                n=source.n,
            )
        except DataValidationError as exc:
            raise DataValidationError(f"{where}: {exc}") from None

    def fit(
        self, cells: Any = None, *, quick: bool = False, progressbar: bool = True, **overrides: Any
    ) -> Any:
        """Fit the card's model (:func:`bayesdecide.model.fitting.fit`) on ``cells`` (default:
        :meth:`cells` of the card's data) with :meth:`fit_settings` (``overrides``: ``draws``,
        ``tune``, ``chains``, ``seed``, ``target_accept``, ``sampler``). A pooled card with
        published estimates fits :meth:`effects` (rows and estimates together)."""
        from bayesdecide.model.fitting import fit
        from bayesdecide.model.priors import decode_priors

        priors = decode_priors(self.priors) or None
        cells = self.cells() if cells is None else cells
        is_table = hasattr(cells, "data_vars") and "effect" in cells  # an EffectTable already
        if not is_table and any(s.kind == "summary" for s in self.data.sources):
            cells = self.effects(cells)
        return fit(
            cells,
            self.spec,
            factors=self.factors,
            interactions=self.hierarchy.interactions,
            priors=priors,
            progressbar=progressbar,
            **self.fit_settings(quick=quick, **overrides),
        )

    # -- deciding --------------------------------------------------------------------------------
    def value_model(self) -> ValueModel:
        v = self.value
        return ValueModel(
            weights=v.weights,
            benefits=v.transport_outcomes or None,
            name="net_value",
            unit=v.unit,
            assumptions=v.assumptions,
            description=v.description,
        )

    def population(self) -> Population:
        launch = self.launch
        return Population(
            n_eligible=launch.eligible,
            mix=launch.mix,
            fixed_cost=launch.fixed_cost,
            transport_multiplier=launch.transport_multiplier,
            fixed_cost_scaling=launch.fixed_cost_scaling,  # type: ignore[arg-type]
            min_cost_share=launch.min_cost_share,
        )

    @staticmethod
    def policy_id(entry: PolicyEntry) -> str:
        """``treat_all``/``treat_none`` for ``all``/``none = true`` (``treat_all_<arm>`` for all
        = true with an arm), else the name as an id."""
        treat = entry.treat or {}
        if treat.get("all"):
            return treat_all_id(entry.arm)
        if treat.get("none"):
            return "treat_none"
        return policy_id(entry.name)

    def decision_policies(self) -> tuple[Policy, ...]:
        """The card's policies (ids, rules, arms, display labels)."""
        out = []
        for p in self.policies:
            text = {"label": p.name, "description": p.description}
            treat = p.treat or {}
            if p.arms is not None:
                arms = {a: _rule(t) for a, t in p.arms.items()}
                out.append(Policy(policy_id(p.name), arms=arms, **text))
            elif treat.get("all"):
                out.append(treat_all(arm=p.arm, **text))
            elif treat.get("none"):
                out.append(treat_none(**text))
            else:
                out.append(Policy(policy_id(p.name), rule=_rule(treat), arm=p.arm, **text))
        return tuple(out)

    def guardrails(self) -> tuple[Guardrail, ...]:
        return tuple(
            guardrail_from_dict(
                {"type": r.type, "name": r.name, "description": r.description or None, **r.params()}
            )
            for r in self.rules
        )

    def decision_settings(self) -> DecisionSettings:
        """The card's :class:`~bayesdecide.decide.DecisionSettings`."""
        d = self.decision
        return DecisionSettings(
            value_model=self.value_model(),
            population=self.population(),
            policies=self.decision_policies(),
            guardrails=self.guardrails(),
            loss_threshold=self.launch.large_loss,
            decision_threshold=d.decision_threshold,
            break_even_assumptions=d.break_even,
            include_optimal=d.include_optimal,
            ci_prob=d.ci_prob,
        )

    def decision_fit(self, fit: Any) -> Any:
        """What the decision is about: ``fit`` itself, or for a pooled card the cells of
        :attr:`target_experiment` with that experiment's mix
        (:func:`bayesdecide.data.combine.experiment_view`)."""
        from bayesdecide.data.combine import ExperimentView, experiment_view

        if not self.pooled or isinstance(fit, ExperimentView):
            return fit
        return experiment_view(fit, self.data.experiment_factor, str(self.target_experiment))

    def decide(self, fit: Any, *, cells: Any = None, **changes: Any) -> Any:
        """The :class:`~bayesdecide.decide.Decision` of ``fit`` under the card's settings,
        gated by the card's checks: sampler diagnostics and sample ratio always; covariate
        balance when ``cells`` (the fitted cell statistics) are given. ``changes`` as in
        :meth:`bayesdecide.decide.DecisionSettings.with_changes`. A pooled card decides about
        its :attr:`target_experiment`'s population (:meth:`decision_fit`); the checks cover every
        experiment's rows."""
        from bayesdecide.decide import Decision, run_checks

        self.check_fit_arms(fit)
        fit = self.decision_fit(fit)
        checks = None
        if cells is not None:
            checks = run_checks(
                cells,
                dict(fit.diagnostics),
                self.checks,
                assignment_share=self.assignment_share,
                arm_shares=self.arm_shares,
            )
        return Decision.from_fit(
            fit,
            self.decision_settings().with_changes(**changes),
            thresholds=self.checks,
            assignment_share=self.assignment_share,
            arm_shares=self.arm_shares,
            checks=checks,
        )

    def check_fit_arms(self, fit: Any) -> None:
        """Raise unless ``fit.tau`` has the card's treatment arms: a ``treatment_arm`` dim with
        the card's arms (multi-arm card) or none (two-arm card)."""
        dims = fit.tau.dims
        if not self.multi_arm:
            if "treatment_arm" in dims:
                raise CardError(
                    f"card {self.name!r} has two arms, but the fit's cell effects have a "
                    "treatment_arm dim: fit this card's data with this card (card.fit())"
                )
            return
        want = list(self.spec.treatment_arms)
        have = (
            [str(a) for a in fit.tau["treatment_arm"].values] if "treatment_arm" in dims else None
        )
        if have != want:
            got = "no treatment_arm dim" if have is None else f"treatment arms {have}"
            raise CardError(
                f"card {self.name!r} has treatment arms {want} against {self.spec.arm_labels[0]!r}, "
                f"but the fit's cell effects have {got}: fit the card's multi-arm EffectTable "
                "(card.fit()), whose tau has dims (chain, draw, cell, treatment_arm, outcome)"
            )


def _rule(treat: Mapping[str, Any]) -> dict[str, Any]:
    """A policy rule from a card's treat table (``all = true`` treats everyone)."""
    return {f: list(v) for f, v in treat.items() if f not in ("all", "none")}


def card_from_dict(
    raw: Mapping[str, Any], *, path: Path | None = None, source: str = "card"
) -> ModelCard:
    """Validate a parsed card (the TOML's content) and build the typed :class:`ModelCard`."""
    raw = copy.deepcopy(dict(raw))
    card = build(ModelCard, raw, "", source)
    object.__setattr__(card, "data", resolve_data_path(card.data, path))
    object.__setattr__(card, "raw", raw)
    object.__setattr__(card, "path", path)
    check_card(card, source)
    return card


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a model card TOML file.

    Raises
    ------
    CardError
        The file is missing or is not valid TOML, or a key is unknown, missing, of the wrong type
        or inconsistent with the others; the message names the key and the fix.
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


__all__ = ["ModelCard", "card_from_dict", "load_card"]
