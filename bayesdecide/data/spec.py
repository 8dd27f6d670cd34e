"""The experiment spec: what each column of an experiment's data means.

An :class:`ExperimentSpec` is the single description of a randomized experiment that every later
stage reads: which column identifies the unit, which column holds the assignment and what its arms
are called, which outcomes were measured (and of which kind), which grouping factors define the
cells the model pools over, and which pre-treatment covariates may be used for adjustment.

Arms: ``arms=(control, treatment)`` is a two-arm experiment (cell statistics label the arms
``control`` and ``treatment``); ``arms=(control, arm_1, ..., arm_k)`` with k >= 2 is a multi-arm
experiment, k treatment arms against one shared control, whose arms are labelled by their values
as text (``arms=("control", "outreach", "email")`` gives arms ``control``, ``outreach``,
``email``; every later stage reports each treatment arm against the control).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from bayesdecide.errors import SpecError


class OutcomeKind(StrEnum):
    """Measurement scale of an outcome. Decides validation and the unit-level likelihood."""

    CONTINUOUS = "continuous"
    BINARY = "binary"
    COUNT = "count"


@dataclass(frozen=True)
class Outcome:
    """One measured outcome.

    Parameters
    ----------
    name:
        Column name in the data.
    kind:
        ``"continuous"`` (dollars, minutes...), ``"binary"`` (0/1 per unit; effects are in
        probability points) or ``"count"`` (non-negative integers; effects in counts per unit).
    label:
        Human-readable name for tables and plots.
    unit:
        Unit of one observation, e.g. ``"dollars per customer over 90 days"``.
    """

    name: str
    kind: OutcomeKind = OutcomeKind.CONTINUOUS
    label: str = ""
    unit: str = ""

    def __post_init__(self) -> None:
        try:
            kind = OutcomeKind(self.kind)
        except ValueError:
            raise SpecError(
                f"outcome {self.name!r}: kind {self.kind!r} is not one of "
                f"{[k.value for k in OutcomeKind]}; set kind to one of them"
            ) from None
        object.__setattr__(self, "kind", kind)
        if not self.label:
            object.__setattr__(self, "label", self.name)


@dataclass(frozen=True)
class ExperimentSpec:
    """What the columns of a randomized experiment mean.

    Parameters
    ----------
    treatment:
        Column with the assignment.
    arms:
        Values of that column, control first: ``(control, treatment)`` for a two-arm experiment,
        e.g. ``(0, 1)`` or ``("control", "outreach")``; ``(control, arm_1, ..., arm_k)`` for k >= 2
        treatment arms against one control, e.g. ``("control", "outreach", "email")``. Values must
        be distinct, also as text (a multi-arm experiment's arms are labelled by their text).
    outcomes:
        Measured outcomes (names or :class:`Outcome` objects; names default to continuous).
    groups:
        Grouping factors; every combination present in the data is a *cell*.
    covariates:
        Numeric pre-treatment columns used for regression adjustment (CUPED with pooled slopes).
    unit_id:
        Optional column identifying the randomized unit; :func:`~bayesdecide.cell_stats` rejects
        data in which an id occurs on more than one row.
    levels:
        Optional declared levels of grouping factors, e.g. ``{"region": ["Americas", "EMEA",
        "APAC"]}``. Rows with any other label and declared levels without rows are errors. Stored
        as a tuple of ``(factor, levels)`` pairs (``dict(spec.levels)`` gives the mapping).
    """

    treatment: str
    outcomes: tuple[Outcome, ...]
    groups: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    arms: tuple[Any, ...] = (0, 1)
    unit_id: str | None = None
    name: str = "experiment"
    levels: Mapping[str, Sequence[Any]] | tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def __post_init__(self) -> None:
        outcomes = tuple(o if isinstance(o, Outcome) else Outcome(str(o)) for o in self.outcomes)
        object.__setattr__(self, "outcomes", outcomes)
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "covariates", tuple(self.covariates))
        object.__setattr__(self, "arms", tuple(self.arms))
        object.__setattr__(self, "levels", _normalise_levels(self.levels, self.groups))
        if not outcomes:
            raise SpecError("spec has no outcomes; list at least one outcome column")
        _check_arms(self.arms)
        names = [self.treatment, *self.outcome_names, *self.groups, *self.covariates]
        if self.unit_id:
            names.append(self.unit_id)
        seen: set[str] = set()
        for col in names:
            if col in seen:
                raise SpecError(
                    f"column {col!r} is used twice in the spec (treatment, outcomes, groups, "
                    "covariates and unit_id must be distinct); remove the duplicate"
                )
            seen.add(col)

    @property
    def multi_arm(self) -> bool:
        """True for k >= 2 treatment arms against one control (``len(arms) > 2``)."""
        return len(self.arms) > 2

    @property
    def arm_labels(self) -> tuple[str, ...]:
        """Labels of the arms on the cell statistics' ``arm`` dim, control first: ``("control",
        "treatment")`` for a two-arm experiment, the arms' values as text for a multi-arm one."""
        if not self.multi_arm:
            return ("control", "treatment")
        return tuple(str(a) for a in self.arms)

    @property
    def treatment_arms(self) -> tuple[str, ...]:
        """Labels of the treatment arms (every arm but the control)."""
        return self.arm_labels[1:]

    @property
    def outcome_names(self) -> list[str]:
        return [o.name for o in self.outcomes]

    def outcome(self, name: str) -> Outcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise SpecError(f"no outcome named {name!r}; outcomes are {self.outcome_names}")

    @property
    def columns(self) -> list[str]:
        """Every column the spec reads."""
        cols = [self.treatment, *self.groups, *self.outcome_names, *self.covariates]
        return [self.unit_id, *cols] if self.unit_id else cols

    def declared_levels(self, factor: str) -> tuple[Any, ...] | None:
        """The declared levels of ``factor``, or None when none were declared."""
        return dict(self.levels).get(factor)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outcomes"] = [
            {"name": o.name, "kind": o.kind.value, "label": o.label, "unit": o.unit}
            for o in self.outcomes
        ]
        d["arms"] = list(self.arms)
        d["groups"] = list(self.groups)
        d["covariates"] = list(self.covariates)
        if self.levels:
            d["levels"] = {factor: list(levels) for factor, levels in self.levels}
        else:  # keeps the fingerprint of specs without declared levels unchanged
            del d["levels"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentSpec:
        d = dict(d)
        d["outcomes"] = tuple(
            Outcome(**o) if isinstance(o, dict) else Outcome(str(o)) for o in d["outcomes"]
        )
        return cls(**d)

    def fingerprint(self) -> str:
        """Stable SHA-256 of the spec (used in fit lineage)."""
        payload = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()


def _check_arms(arms: tuple[Any, ...]) -> None:
    """Raise unless ``arms`` holds two or more values, distinct as values and as text."""
    if len(arms) < 2:
        raise SpecError(
            f"arms={arms!r}: give the control and at least one treatment arm, control first, "
            "e.g. arms=(0, 1) or arms=('control', 'outreach', 'email')"
        )
    labels = [str(a) for a in arms]
    repeated = sorted({v for v in labels if labels.count(v) > 1})
    equal = any(a == b for i, a in enumerate(arms) for b in arms[i + 1 :])
    if repeated or equal:
        if len(arms) == 2:
            raise SpecError(f"arms={arms!r}: give exactly two distinct values (control, treatment)")
        raise SpecError(
            f"arms={arms!r}: the arms {repeated} are listed more than once (arms are compared as "
            "text); list each arm once, control first"
        )


def _normalise_levels(
    levels: Mapping[str, Sequence[Any]] | Sequence[tuple[str, Sequence[Any]]] | None,
    groups: tuple[str, ...],
) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """Declared levels as ``((factor, (level, ...)), ...)`` in the order of ``groups``."""
    if not levels:
        return ()
    items = list(levels.items()) if isinstance(levels, Mapping) else list(levels)
    out: dict[str, tuple[Any, ...]] = {}
    for item in items:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise SpecError(
                f"levels: {item!r} is not a (factor, levels) pair; give levels as a mapping "
                "factor -> list of levels, e.g. {'region': ['Americas', 'EMEA', 'APAC']}"
            )
        factor, values = item
        if factor not in groups:
            raise SpecError(
                f"levels are declared for {factor!r}, which is not a grouping factor "
                f"(groups are {list(groups)}); add it to groups or remove its levels"
            )
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise SpecError(
                f"levels of {factor!r} must be a non-empty list of level names, not {values!r}"
            )
        labels = [str(v) for v in values]
        repeated = sorted({v for v in labels if labels.count(v) > 1})
        if repeated:
            raise SpecError(f"levels of {factor!r} list {repeated} more than once; list each once")
        out[factor] = tuple(values)
    return tuple((g, out[g]) for g in groups if g in out)


RETENTION_OUTCOMES: tuple[Outcome, ...] = (
    Outcome(
        "net_margin", OutcomeKind.CONTINUOUS, "Net margin", "dollars per customer over 90 days"
    ),
    Outcome("renewed", OutcomeKind.BINARY, "Renewal rate", "probability of renewal"),
    Outcome(
        "gross_margin", OutcomeKind.CONTINUOUS, "Gross margin", "dollars per customer over 90 days"
    ),
    Outcome(
        "contact_cost", OutcomeKind.CONTINUOUS, "Contact cost", "dollars per customer over 90 days"
    ),
    Outcome(
        "discount_cost",
        OutcomeKind.CONTINUOUS,
        "Discount cost",
        "dollars per customer over 90 days",
    ),
    Outcome(
        "support_tickets", OutcomeKind.COUNT, "Support tickets", "tickets per customer over 90 days"
    ),
    Outcome(
        "annoyance", OutcomeKind.BINARY, "Annoyance rate", "probability of an annoyance report"
    ),
)

RETENTION_COVARIATES: tuple[str, ...] = (
    "base_margin",
    "churn_risk",
    "prior_usage",
    "support_history",
    "tenure_months",
    "seats",
)


def retention_spec() -> ExperimentSpec:
    """Spec of the seed retention-outreach experiment (:func:`bayesdecide.simulate_retention`).

    Cells are segment x region x risk band (27 cells); the seven outcomes are the seed's primary
    and guardrail metrics; the covariates are the seed's numeric adjustment set.
    """
    return ExperimentSpec(
        name="retention_outreach",
        unit_id="customer_id",
        treatment="treatment",
        arms=(0, 1),
        outcomes=RETENTION_OUTCOMES,
        groups=("segment", "region", "risk_band"),
        covariates=RETENTION_COVARIATES,
    )


def retention_three_arm_spec() -> ExperimentSpec:
    """Spec of the three-arm retention experiment (``simulate_retention(second_offer=True)``):
    arms control, outreach and a discount-only email in the ``treatment`` column; otherwise as
    :func:`retention_spec`."""
    return ExperimentSpec(
        name="retention_offers",
        unit_id="customer_id",
        treatment="treatment",
        arms=("control", "outreach", "email"),
        outcomes=RETENTION_OUTCOMES,
        groups=("segment", "region", "risk_band"),
        covariates=RETENTION_COVARIATES,
    )


__all__ = [
    "ExperimentSpec",
    "Outcome",
    "OutcomeKind",
    "RETENTION_COVARIATES",
    "RETENTION_OUTCOMES",
    "retention_spec",
    "retention_three_arm_spec",
]
