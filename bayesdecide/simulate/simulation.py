"""The container that every simulator returns: data, known truth and the matching spec."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    population:
        The *population* cell effects, when the simulator can state them: per cell (indexed by
        the grouping factors), the expected effect of assignment for a unit drawn from the cell's
        population, in the outcome's units. None when ``truth`` is already per cell (it is then
        the population effect) or the simulator does not know it.

    Two cell estimands
    ------------------
    With per-unit truth, a cell's *sample* effect (the mean of its units' true effects) differs
    from its *population* effect by the luck of which units the cell drew: for a 26-account cell
    whose effect scales with a lognormal margin (coefficient of variation 0.6), by about 12%. The
    cell's estimate and its standard error (difference in arm means, adjusted or not) are for the
    population effect, and so is a hierarchical model's cell effect: a decision about the next
    units of a cell needs that one. :meth:`true_cell_effects` returns the population effect when
    it is known, :meth:`sample_cell_effects` the sample effect.
    """

    data: pd.DataFrame
    truth: pd.DataFrame
    spec: ExperimentSpec
    population: pd.DataFrame | None = field(default=None, kw_only=True)

    def true_cell_effects(self) -> pd.DataFrame:
        """True effect per cell, indexed by the groups: the population effect when the simulator
        states it (:attr:`population`), else the mean of the cell's units' true effects."""
        if self.population is not None:
            return self.population
        return self.sample_cell_effects()

    def sample_cell_effects(self) -> pd.DataFrame:
        """Mean of the true effects of each cell's own units, indexed by the groups (the truth
        itself when it is per cell)."""
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
