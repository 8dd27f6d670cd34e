"""The value model: weights on outcome effects give net value per assigned customer.

Net value of treating a customer in cell ``c`` (dollars per assigned customer over the horizon)::

    value[c] = sum_k weight[k] * m_k * tau[c, k],   m_k = transport_multiplier if k is a benefit else 1

and, in a multi-arm experiment, of giving treatment arm ``a`` to a customer in cell ``c``
(``tau[c, a, k]`` is arm ``a``'s effect against the shared control)::

    value[c, a] = sum_k weight[k] * m_k * tau[c, a, k]

The seed's net margin is ``gross_margin - contact_cost - discount_cost - 18 * support_tickets -
35 * annoyance`` (:func:`retention_value_model`); the transport multiplier scales only the benefit
outcomes (by default those with a positive weight: gross margin), so
``value = m * gross - contact - discount - 18 * tickets - 35 * annoyance``. Weights are data, so any
of them can be changed later without refitting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import xarray as xr

from bayesdecide.decide._draws import (
    ARM_DIM,
    DEFAULT_SAMPLE_DIMS,
    as_sample_dims,
    check_tau,
    option_draws,
    sample_layout,
)
from bayesdecide.errors import SpecError


@dataclass(frozen=True)
class ValueModel:
    """Linear value of outcome effects, in dollars per assigned customer.

    Parameters
    ----------
    weights:
        ``{outcome: dollars per unit of the outcome's effect}``; e.g. ``gross_margin: 1``,
        ``support_tickets: -18`` (dollars per ticket), ``annoyance: -35`` (dollars per annoyed
        customer, effect in probability). Outcomes not listed get weight 0.
    benefits:
        Outcomes the transport multiplier scales. ``None`` (default): the outcomes with a positive
        weight.
    name:
        Label of the value (used in tables).
    unit:
        Unit of the value, e.g. ``"dollars per eligible customer over 90 days"``.
    assumptions:
        Named cost assumptions, ``{name: outcome}``: ``{"annoyance_penalty": "annoyance"}`` means
        the weight on ``annoyance`` is minus the annoyance penalty (dollars per annoyed customer).
        A name can be changed without a refit, read as a break-even assumption and swept.
    description:
        The value formula in words.
    """

    weights: Mapping[str, float]
    benefits: tuple[str, ...] | None = None
    name: str = "net_value"
    unit: str = field(default="dollars per assigned customer", compare=False)
    assumptions: Mapping[str, str] = field(default_factory=dict)
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.weights, Mapping) or not self.weights:
            raise SpecError("value model weights must be a non-empty {outcome: weight} mapping")
        weights = {}
        for k, w in self.weights.items():
            try:
                w = float(w)
            except (TypeError, ValueError):
                raise SpecError(f"value weight for {k!r} is {w!r}; give a number") from None
            if not np.isfinite(w):
                raise SpecError(f"value weight for {k!r} is {w}; give a finite number")
            weights[str(k)] = w
        object.__setattr__(self, "weights", weights)
        if self.benefits is not None:
            benefits = (self.benefits,) if isinstance(self.benefits, str) else self.benefits
            benefits = tuple(str(b) for b in benefits)
            unknown = [b for b in benefits if b not in weights]
            if unknown:
                raise SpecError(
                    f"benefits {unknown} have no weight; benefits must be among the weighted "
                    f"outcomes {list(weights)}"
                )
            object.__setattr__(self, "benefits", benefits)
        assumptions = {str(k): str(v) for k, v in dict(self.assumptions).items()}
        unpriced = {k: o for k, o in assumptions.items() if o not in weights}
        if unpriced:
            raise SpecError(
                f"value assumptions {unpriced} name outcomes without a weight; each assumption "
                f"must name one of the weighted outcomes {list(weights)}"
            )
        object.__setattr__(self, "assumptions", assumptions)

    @property
    def benefit_outcomes(self) -> tuple[str, ...]:
        """Outcomes scaled by the transport multiplier."""
        if self.benefits is not None:
            return self.benefits
        return tuple(k for k, w in self.weights.items() if w > 0)

    def check_outcomes(self, outcomes: Sequence[str]) -> None:
        """Raise a clear error when a weighted outcome is not among ``outcomes``."""
        valid = [str(o) for o in outcomes]
        unknown = [k for k in self.weights if k not in valid]
        if unknown:
            raise SpecError(
                f"value model weights name unknown outcomes {unknown}; valid outcomes are {valid}"
            )

    def weight_vectors(self, outcomes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(benefit weights, other weights)`` as vectors over ``outcomes``.

        Value with transport multiplier ``m`` is ``m * tau @ wb + tau @ wr``.
        """
        self.check_outcomes(outcomes)
        names = [str(o) for o in outcomes]
        wb = np.zeros(len(names))
        wr = np.zeros(len(names))
        benefits = set(self.benefit_outcomes)
        for k, w in self.weights.items():
            i = names.index(k)
            if k in benefits:
                wb[i] = w
            else:
                wr[i] = w
        return wb, wr

    def with_weights(self, **changes: float) -> ValueModel:
        """A copy with some weights changed (or added), e.g. ``with_weights(annoyance=-50)``."""
        return replace(self, weights={**self.weights, **changes})

    def with_penalty(self, outcome: str, penalty: float) -> ValueModel:
        """A copy whose ``outcome`` costs ``penalty`` dollars per unit (weight ``-penalty``)."""
        return self.with_weights(**{outcome: -float(penalty)})

    def penalty(self, outcome: str) -> float:
        """Dollars lost per unit of ``outcome`` (the negated weight)."""
        return -self.weights.get(outcome, 0.0)

    def assumption_values(self) -> dict[str, float]:
        """Each named cost assumption in dollars per unit of its outcome (the negated weight)."""
        return {name: self.penalty(o) for name, o in self.assumptions.items()}

    def with_assumption(self, name: str, dollars: float) -> ValueModel:
        """A copy with the named cost assumption set to ``dollars`` per unit (weight -dollars)."""
        if name not in self.assumptions:
            raise SpecError(
                f"unknown value assumption {name!r}; named assumptions are {list(self.assumptions)}"
            )
        return self.with_penalty(self.assumptions[name], dollars)

    def cell_value(
        self,
        tau: xr.DataArray,
        transport_multiplier: float = 1.0,
        sample_dims: str | Sequence[str] = DEFAULT_SAMPLE_DIMS,
    ) -> xr.DataArray:
        """Net value per assigned customer per cell, as draws (dims ``(*sample_dims, cell)``;
        ``(*sample_dims, cell, treatment_arm)`` for multi-arm draws: the value of giving that arm).

        Dollars per assigned customer over the outcome horizon (when the money outcomes are).
        """
        dims = as_sample_dims(sample_dims)
        check_tau(tau, dims)
        x = cell_value_array(tau, self, transport_multiplier, dims)
        layout = sample_layout(tau, dims)
        coords = {n: c for n, c in tau.coords.items() if c.dims == ("cell",)}
        if ARM_DIM in tau.dims:
            coords[ARM_DIM] = tau[ARM_DIM].values
            x = x.reshape(x.shape[0], tau.sizes["cell"], tau.sizes[ARM_DIM])
            return layout.wrap(x, ("cell", ARM_DIM), coords, name=self.name)
        return layout.wrap(x, ("cell",), coords, name=self.name)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"weights": dict(self.weights), "name": self.name}
        if self.benefits is not None:
            d["benefits"] = list(self.benefits)
        if self.assumptions:
            d["assumptions"] = dict(self.assumptions)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ValueModel:
        d = dict(d)
        if "weights" not in d:
            raise SpecError("value model needs 'weights' = {outcome: weight}")
        valid = {"weights", "benefits", "name", "unit", "assumptions", "description"}
        unknown = set(d) - valid
        if unknown:
            raise SpecError(f"unknown value model keys {sorted(unknown)}; use {sorted(valid)}")
        if d.get("benefits") is not None:
            d["benefits"] = tuple(d["benefits"])
        return cls(**d)


def cell_value_array(
    tau: xr.DataArray,
    value_model: ValueModel,
    transport_multiplier: float,
    sample_dims: tuple[str, ...],
) -> np.ndarray:
    """Values as a numpy array (S, O): flattened samples x options (cells; (cell, arm) pairs,
    cell-major, for multi-arm draws)."""
    parts = benefit_and_rest(tau, value_model, sample_dims)
    return transport_multiplier * parts[..., 0] + parts[..., 1]


def benefit_and_rest(
    tau: xr.DataArray, value_model: ValueModel, sample_dims: tuple[str, ...]
) -> np.ndarray:
    """(S, O, 2): per draw and option (cell, or (cell, arm) pair), the benefit part and the rest
    of the value.

    One BLAS matrix product over outcomes; value = m * [..., 0] + [..., 1].
    """
    outcomes = [str(o) for o in tau["outcome"].values]
    wb, wr = value_model.weight_vectors(outcomes)
    x = option_draws(tau, sample_dims)  # (S, O, K)
    w = np.stack([wb, wr], axis=1)  # (K, 2)
    return x @ w


def retention_value_model(
    support_ticket_cost: float = 18.0, annoyance_penalty: float = 35.0
) -> ValueModel:
    """The seed's net margin from its components (dollars per assigned customer over 90 days).

    ``gross_margin - contact_cost - discount_cost - support_ticket_cost * support_tickets -
    annoyance_penalty * annoyance``; gross margin is the benefit the transport multiplier scales.
    """
    return ValueModel(
        weights={
            "gross_margin": 1.0,
            "contact_cost": -1.0,
            "discount_cost": -1.0,
            "support_tickets": -float(support_ticket_cost),
            "annoyance": -float(annoyance_penalty),
        },
        benefits=("gross_margin",),
        name="net_value",
        assumptions={
            "support_tickets_penalty": "support_tickets",
            "annoyance_penalty": "annoyance",
        },
    )
