"""The experiment spec: what each column of an experiment's data means.

An :class:`ExperimentSpec` is the single description of a randomized experiment that every later
stage reads: which column identifies the unit, which column holds the assignment and what its two
arms are called, which outcomes were measured (and of which kind), which grouping factors define
the cells the model pools over, and which pre-treatment covariates may be used for adjustment.
"""

from __future__ import annotations

import hashlib
import json
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
    """What the columns of a two-arm randomized experiment mean.

    Parameters
    ----------
    treatment:
        Column with the assignment.
    arms:
        ``(control, treatment)`` values of that column, e.g. ``(0, 1)`` or ``("control", "outreach")``.
    outcomes:
        Measured outcomes (names or :class:`Outcome` objects; names default to continuous).
    groups:
        Grouping factors; every combination present in the data is a *cell*.
    covariates:
        Numeric pre-treatment columns used for regression adjustment (CUPED with pooled slopes).
    unit_id:
        Optional column identifying the randomized unit (checked for duplicates when given).
    """

    treatment: str
    outcomes: tuple[Outcome, ...]
    groups: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    arms: tuple[Any, Any] = (0, 1)
    unit_id: str | None = None
    name: str = "experiment"

    def __post_init__(self) -> None:
        outcomes = tuple(o if isinstance(o, Outcome) else Outcome(str(o)) for o in self.outcomes)
        object.__setattr__(self, "outcomes", outcomes)
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "covariates", tuple(self.covariates))
        object.__setattr__(self, "arms", tuple(self.arms))
        if not outcomes:
            raise SpecError("spec has no outcomes; list at least one outcome column")
        if len(self.arms) != 2 or self.arms[0] == self.arms[1]:
            raise SpecError(
                f"arms={self.arms!r}: give exactly two distinct values (control, treatment)"
            )
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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outcomes"] = [
            {"name": o.name, "kind": o.kind.value, "label": o.label, "unit": o.unit}
            for o in self.outcomes
        ]
        d["arms"] = list(self.arms)
        d["groups"] = list(self.groups)
        d["covariates"] = list(self.covariates)
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


__all__ = [
    "ExperimentSpec",
    "Outcome",
    "OutcomeKind",
    "RETENTION_COVARIATES",
    "RETENTION_OUTCOMES",
    "retention_spec",
]
