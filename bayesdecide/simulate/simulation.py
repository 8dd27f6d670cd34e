"""The container that every simulator returns: data, known truth and the matching spec."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bayesdecide.data.spec import ExperimentSpec


@dataclass(frozen=True)
class Simulation:
    """A simulated experiment with known truth.

    Attributes
    ----------
    data:
        One row per unit: assignment, grouping factors, covariates and observed outcomes.
    truth:
        The true (noise-free) expected effect of assignment to treatment on every outcome, in the
        outcome's units, one column per outcome (with several treatment arms, one column per
        ``(arm, outcome)``: each arm against the control). For :func:`simulate_retention` one row
        per customer (aligned with ``data``); for :func:`simulate_markets` one row per cell,
        indexed by the grouping factors.
    spec:
        The :class:`~bayesdecide.data.spec.ExperimentSpec` that describes ``data``.
    """

    data: pd.DataFrame
    truth: pd.DataFrame
    spec: ExperimentSpec

    def true_cell_effects(self) -> pd.DataFrame:
        """True expected effect per cell (mean over the cell's units), indexed by the groups."""
        groups = list(self.spec.groups)
        if set(groups) <= set(self.truth.index.names):
            return self.truth
        frame = self.truth.copy()
        for g in groups:
            frame[g] = self.data[g].to_numpy()
        return frame.groupby(groups, observed=True, sort=True).mean()

    def true_average_effect(self) -> pd.Series:
        """True expected effect per assigned unit, averaged over the whole experiment population."""
        groups = list(self.spec.groups)
        if set(groups) <= set(self.truth.index.names):
            counts = self.data.groupby(groups, observed=True, sort=True).size()
            weights = counts.reindex(self.truth.index).fillna(0.0)
            return self.truth.mul(weights, axis=0).sum() / weights.sum()
        return self.truth.mean()
