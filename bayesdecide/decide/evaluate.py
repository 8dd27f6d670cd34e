"""Policy evaluation at launch scale, vectorised over draws and policies.

:class:`LaunchDraws` holds the draws flattened to ``(S, O, K)`` (samples x options x outcomes), the
launch mix and the option values. An *option* is a cell (two-arm experiments) or a (cell, treatment
arm) pair (multi-arm: option ``o = c * A + a``, cell-major), with the launch mix of its cell
``mix[o] = mix[c]``; a policy is a 0/1 mask ``treat[p, o]`` treating at most one option per cell.
:meth:`LaunchDraws.evaluate` turns masks ``(P, O)`` into :class:`PolicyDraws`: every quantity is
one BLAS matrix product over options, no loop over draws::

    value[s, p]  = N * sum_o mix[o] * treat[p, o] * value[s, o] - fixed_cost(p)      (dollars)
    effect[s, p] = sum_o mix[o] * treat[p, o] * tau[s, o, k]    (per eligible customer, outcome unit)

With several arms ``tau[s, o, k]`` is the effect of option ``o``'s arm against the shared control,
so ``effect`` is the policy's effect against the status quo (everyone in control). With two arms
options are cells and every formula below reads as written.

:meth:`PolicyDraws.level_draws` gives the same quantities for each level ``l`` of a factor
(:class:`LevelDraws`), over the level's eligible customers at launch (``M_l = sum_{c in l} mix[c]``)::

    effect_l[s, p] = sum_{c in l} mix[c] * treat[p, c] * x[s, c] / M_l          (per eligible)
    effect_l[s, p] = sum_{c in l} mix[c] * treat[p, c] * x[s, c] / T_l[p]       (per treated)

with ``T_l[p] = sum_{c in l} mix[c] * treat[p, c]`` and ``x`` one outcome's effect (its unit) or
net value per customer (dollars). :func:`policy_table` summarises value draws per policy.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.decide._draws import (
    ARM_DIM,
    DEFAULT_SAMPLE_DIMS,
    as_sample_dims,
    cell_vector,
    check_share,
    check_tau,
    factor_labels,
    option_draws,
    prob,
    quantiles,
    sample_layout,
    tau_arms,
)
from bayesdecide.decide.defaults import DECISION_DEFAULTS
from bayesdecide.decide.policies import Policy, as_policy, policy_masks
from bayesdecide.decide.population import Population, resolve_mix
from bayesdecide.decide.value import ValueModel, benefit_and_rest
from bayesdecide.errors import SpecError


class LaunchDraws:
    """Posterior draws prepared for launch decisions (flattened, with the launch mix resolved).

    Parameters
    ----------
    tau:
        Cell effect draws, dims ``(*sample_dims, cell, outcome)``, per assigned customer; with
        several treatment arms ``(*sample_dims, cell, treatment_arm, outcome)``, each arm against
        the shared control.
    cell_share:
        The experiment's mix over ``cell`` (sums to 1).
    value_model, population:
        Value weights and launch population.
    sample_dims:
        Draw dims of ``tau``.
    """

    def __init__(
        self,
        tau: xr.DataArray,
        cell_share: xr.DataArray,
        value_model: ValueModel,
        population: Population,
        sample_dims: str | Sequence[str] = DEFAULT_SAMPLE_DIMS,
    ) -> None:
        self.sample_dims = as_sample_dims(sample_dims)
        check_tau(tau, self.sample_dims)
        if not isinstance(value_model, ValueModel):
            raise SpecError(f"value_model must be a ValueModel, got {type(value_model).__name__}")
        if not isinstance(population, Population):
            raise SpecError(f"population must be a Population, got {type(population).__name__}")
        self.tau = tau
        self.value_model = value_model
        self.population = population
        self.layout = sample_layout(tau, self.sample_dims)
        self.outcomes = [str(o) for o in tau["outcome"].values]
        value_model.check_outcomes(self.outcomes)
        self.cells = pd.Index(tau["cell"].values)
        self.arms = tau_arms(tau)
        n_arms = self.n_arms
        self.option_cell = np.repeat(np.arange(len(self.cells)), n_arms)
        self.option_arm = np.tile(np.arange(n_arms), len(self.cells))
        self.experiment_share = check_share(
            cell_vector(cell_share, self.cells, "cell_share"), "cell_share"
        )
        self.cell_mix = resolve_mix(population.mix, tau, self.experiment_share)
        self.mix = self.cell_mix[self.option_cell]
        self.x = option_draws(tau, self.sample_dims)  # (S, O, K)
        self.parts = benefit_and_rest(tau, value_model, self.sample_dims)  # (S, O, 2)

    @property
    def n_arms(self) -> int:
        """Treatment arms (1 for a two-arm experiment)."""
        return 1 if self.arms is None else len(self.arms)

    @property
    def n_samples(self) -> int:
        return self.x.shape[0]

    @property
    def level_weight(self) -> np.ndarray:
        """(O,) each cell's launch share, counted once per cell (on its first option): the
        weights that give a group of cells its share of the launch population."""
        return np.where(self.option_arm == 0, self.mix, 0.0)

    @cached_property
    def value(self) -> np.ndarray:
        """(S, O) net value per assigned customer of each option (a cell, or a cell given one
        arm), transported (dollars)."""
        m = self.population.transport_multiplier
        return m * self.parts[..., 0] + self.parts[..., 1]

    @cached_property
    def mean_value(self) -> np.ndarray:
        """(O,) posterior mean net value per assigned customer of each option (dollars)."""
        return self.value.mean(axis=0)

    def arm_label(self, option: int) -> str | None:
        """The treatment arm option ``option`` gives (``None`` with two arms)."""
        return None if self.arms is None else self.arms[int(self.option_arm[option])]

    def assignments(self, masks: np.ndarray) -> np.ndarray:
        """(P, C) the arm index each policy gives each cell (-1: untreated) from masks (P, O)."""
        m = np.atleast_2d(masks).reshape(-1, len(self.cells), self.n_arms)
        return np.where(m.max(axis=2) > 0, m.argmax(axis=2), -1)

    def masks_from(self, assignments: np.ndarray) -> np.ndarray:
        """(P, O) masks from arm indices per cell (P, C) (-1: untreated)."""
        z = np.atleast_2d(np.asarray(assignments, dtype=int))
        out = np.zeros((*z.shape, self.n_arms))
        rows, cells = np.nonzero(z >= 0)
        out[rows, cells, z[rows, cells]] = 1.0
        return out.reshape(len(z), -1)

    def outcome_index(self, outcome: str) -> int:
        if outcome not in self.outcomes:
            raise SpecError(f"unknown outcome {outcome!r}; valid outcomes are {self.outcomes}")
        return self.outcomes.index(outcome)

    def labels(self, factor: str) -> np.ndarray:
        return factor_labels(self.tau, factor)

    def cell_coords(self) -> dict:
        return {n: c for n, c in self.tau.coords.items() if c.dims == ("cell",)}

    def masks(self, policies: Sequence[Policy]) -> np.ndarray:
        return policy_masks([as_policy(p) for p in policies], self.tau)

    def level_codes(self, factor: str) -> tuple[list[Any], np.ndarray]:
        """Levels of ``factor`` (order of first appearance along ``cell``) and each option's code
        (its cell's level)."""
        labels = self.labels(factor)
        levels = list(pd.unique(pd.Series(labels)))
        return levels, pd.Index(levels).get_indexer(labels)[self.option_cell]

    def options_of(self, cells: np.ndarray) -> np.ndarray:
        """Option positions (sorted) of the cells at integer positions ``cells``."""
        return np.flatnonzero(np.isin(self.option_cell, np.asarray(cells, dtype=int)))

    def _subset(self, cells: np.ndarray, options: np.ndarray, **changes: Any) -> LaunchDraws:
        sub = copy.copy(self)
        cells = np.asarray(cells, dtype=int)
        sub.__dict__.update(
            tau=self.tau.isel(cell=cells),
            cells=self.cells[cells],
            experiment_share=self.experiment_share[cells],
            cell_mix=self.cell_mix[cells],
            mix=self.mix[options],
            option_cell=np.searchsorted(cells, self.option_cell[options]),
            option_arm=self.option_arm[options],
            x=self.x[:, options],
            parts=self.parts[:, options],
            value=self.value[:, options],
            mean_value=self.mean_value[options],
        )
        sub.__dict__.update(changes)
        return sub

    def restrict(self, cells: np.ndarray) -> LaunchDraws:
        """The same launch seen through the cells ``cells`` (sorted integer positions) only, with
        all their options.

        Draws, mix and value are sliced, not renormalised: a policy over the subset treats the
        same customers, with the same launch shares, as the full policy that is zero elsewhere.
        Per-level quantities of a factor whose levels the subset contains in full are therefore
        the same; population-wide ones are not meaningful on a subset. Cheap (copies of the
        subset's columns only); used to check group rules level by level (:mod:`.optimal`).
        """
        cells = np.asarray(cells, dtype=int)
        return self._subset(cells, self.options_of(cells))

    def arm_view(self, arm: str) -> LaunchDraws:
        """One treatment arm of a multi-arm launch, seen as a two-arm launch (that arm against
        the control, cell by cell): the per-level tables of :mod:`.compare` and
        :mod:`.heterogeneity` read it as they read a two-arm experiment."""
        if self.arms is None:
            raise SpecError("arm_view needs multi-arm draws (a treatment_arm dim)")
        if arm not in self.arms:
            raise SpecError(f"unknown treatment arm {arm!r}; the arms are {self.arms}")
        a = self.arms.index(arm)
        options = np.flatnonzero(self.option_arm == a)
        cells = np.arange(len(self.cells))
        view = self._subset(cells, options, arms=None)
        view.__dict__.update(
            tau=self.tau.sel({ARM_DIM: self.tau[ARM_DIM].values[a]}, drop=True),
            option_cell=cells,
            option_arm=np.zeros(len(cells), dtype=int),
        )
        return view

    def expected_values(self, masks: np.ndarray) -> np.ndarray:
        """(P,) expected launch value in dollars of policies ``masks`` (linear in the mean)."""
        pop = self.population
        return pop.n_eligible * (masks @ (self.mix * self.mean_value)) - (
            pop.fixed_cost * pop.cost_scale(masks, self.mix)
        )

    def evaluate(self, masks: np.ndarray, names: Sequence[str] | None = None) -> PolicyDraws:
        """Launch-scale draws for policies given as 0/1 masks ``(P, O)`` over options."""
        masks = np.atleast_2d(np.asarray(masks, dtype=float))
        if names is None:
            names = [f"policy_{i}" for i in range(masks.shape[0])]
        return PolicyDraws(self, masks, list(names))


@dataclass(frozen=True)
class LevelDraws:
    """Draws of a per-level average effect for a set of policies (:meth:`PolicyDraws.level_draws`).

    ``draws`` (S, P, L) in the quantity's unit, NaN where undefined (nobody treated in the level
    under ``per="treated"``, or a level with no customers at launch); ``share`` (L,) each level's
    share of the launch population; ``treated`` (P, L) the share of the level's eligible
    customers each policy treats.
    """

    factor: str
    levels: list[Any]
    draws: np.ndarray
    share: np.ndarray
    treated: np.ndarray


class PolicyDraws:
    """Draws of launch value and population-average effects for a set of policies."""

    def __init__(self, launch: LaunchDraws, masks: np.ndarray, names: list[str]) -> None:
        self.launch = launch
        self.masks = masks
        self.names = names
        self.weights = masks * launch.mix  # (P, O): mix share treated with each option
        self.treated_share = self.weights.sum(axis=1)
        pop = launch.population
        self.cost = pop.fixed_cost * pop.cost_scale(masks, launch.mix)

    @cached_property
    def value(self) -> np.ndarray:
        """(S, P) launch value in dollars."""
        n = self.launch.population.n_eligible
        return n * (self.launch.value @ self.weights.T) - self.cost

    def outcome_effect(self, outcome: str | None, per: str = "eligible") -> np.ndarray:
        """(S, P) average effect on ``outcome`` (``None``: net value per customer, dollars) per
        eligible (or per treated) customer.

        Per eligible customer: untreated customers contribute 0 (the policy's population-average
        effect at launch). Per treated: divided by the treated share (NaN when nobody is treated).
        """
        if per not in ("eligible", "treated"):
            raise SpecError(f"per={per!r}; use 'eligible' or 'treated'")
        x = (
            self.launch.value
            if outcome is None
            else self.launch.x[:, :, self.launch.outcome_index(outcome)]
        )
        return self.outcome_quantity(x, per)

    def level_draws(
        self,
        factor: str,
        outcome: str | None = None,
        per: str = "eligible",
        relative_to: str | None = None,
    ) -> LevelDraws:
        """Draws of each level's average effect under each policy (module docstring).

        Parameters
        ----------
        factor:
            Grouping factor on ``cell`` (e.g. ``region``).
        outcome:
            Outcome whose effect is averaged (its unit); ``None``: net value per customer
            (dollars, benefits transported).
        per:
            ``"eligible"``: over all the level's eligible customers at launch, untreated customers
            contributing 0; ``"treated"``: over the level's treated customers only (NaN where the
            policy treats nobody in the level).
        relative_to:
            ``None``, or ``"overall"``: the level's effect minus the same quantity over all
            eligible (or all treated) customers of the policy, in the same unit.

        Returns
        -------
        LevelDraws
            Each level's draws under each policy; levels with no customers at launch (zero
            launch share) give NaN.
        """
        if per not in ("eligible", "treated"):
            raise SpecError(f"per={per!r}; use 'eligible' or 'treated'")
        if relative_to not in (None, "overall"):
            raise SpecError(f"relative_to={relative_to!r}; use 'overall' or leave it out")
        levels, codes = self.launch.level_codes(factor)
        x = (
            self.launch.value
            if outcome is None
            else self.launch.x[:, :, self.launch.outcome_index(outcome)]
        )
        onehot = np.eye(len(levels))[codes]  # (O, L)
        w = self.weights[:, :, None] * onehot[None]  # (P, O, L): launch share treated
        share = self.launch.level_weight @ onehot  # (L,)
        treated = w.sum(axis=1)  # (P, L)
        n_p, n_c, n_l = w.shape
        num = (x @ w.transpose(1, 0, 2).reshape(n_c, n_p * n_l)).reshape(-1, n_p, n_l)
        den = np.broadcast_to(share[None], treated.shape) if per == "eligible" else treated
        with np.errstate(invalid="ignore", divide="ignore"):
            draws = num / np.where(den > 0, den, np.nan)[None]
            if relative_to == "overall":
                draws = draws - self.outcome_quantity(x, per)[:, :, None]
            within = np.clip(np.round(treated / np.where(share > 0, share, np.nan)[None], 12), 0, 1)
        return LevelDraws(factor, levels, draws, share, within)

    def outcome_quantity(self, x: np.ndarray, per: str = "eligible") -> np.ndarray:
        """(S, P) policy average of per-cell draws ``x`` (S, C) per eligible (untreated count 0)
        or per treated customer (NaN when nobody is treated)."""
        eff = x @ self.weights.T
        if per == "eligible":
            return eff
        with np.errstate(invalid="ignore", divide="ignore"):
            return eff / np.where(self.treated_share > 0, self.treated_share, np.nan)

    def value_da(self) -> xr.DataArray:
        """Launch value draws as a DataArray ``(*sample_dims, policy)`` in dollars."""
        return self.launch.layout.wrap(
            self.value, ("policy",), {"policy": list(self.names)}, name="launch_value"
        )


def policy_table(
    values: np.ndarray,
    names: Sequence[str],
    treated_share: np.ndarray | None = None,
    loss_threshold: float = DECISION_DEFAULTS["loss_threshold"],
) -> pd.DataFrame:
    """Summary of launch value draws ``(S, P)`` per policy (dollars).

    Columns: ``expected_value``, ``prob_positive`` (P(value > 0)), ``prob_large_loss``
    (P(value < -loss_threshold)), ``p10``, ``p50``, ``p90``, ``expected_loss`` (E[max over policies
    of value - this value], dollars), ``prob_best`` (P(no other policy has higher value): identical
    policies both count as best), ``treated_share``.
    """
    values = np.asarray(values, dtype=float)
    best = values.max(axis=1, keepdims=True)
    q = quantiles(values, [0.1, 0.5, 0.9])
    table = pd.DataFrame(
        {
            "expected_value": values.mean(axis=0),
            "prob_positive": prob(values > 0),
            "prob_large_loss": prob(values < -loss_threshold),
            "p10": q[0],
            "p50": q[1],
            "p90": q[2],
            "expected_loss": (best - values).mean(axis=0),
            "prob_best": prob(values >= best),
            "treated_share": np.nan if treated_share is None else np.asarray(treated_share),
        },
        index=pd.Index(list(names), name="policy"),
    )
    return table


def policy_values(
    tau: xr.DataArray,
    cell_share: xr.DataArray,
    policies: Sequence[Policy],
    value_model: ValueModel,
    population: Population,
    sample_dims: str | Sequence[str] = DEFAULT_SAMPLE_DIMS,
) -> xr.DataArray:
    """Launch value draws in dollars per policy: dims ``(*sample_dims, policy)``.

    ``V = N * sum_c mix_c * treat_c * value_c - fixed cost`` (fixed cost only when something is
    treated; scaled with the treated share when the population says so).
    """
    launch = LaunchDraws(tau, cell_share, value_model, population, sample_dims)
    pols = [as_policy(p) for p in policies]
    return launch.evaluate(launch.masks(pols), [p.name for p in pols]).value_da()
