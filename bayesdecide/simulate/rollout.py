"""The retention experiment's rollout: a launch population with another mix, a randomized
holdout, and a known true transport factor.

After a launch, the seed's rollout plan keeps a randomized holdout. :func:`simulate_retention_rollout`
simulates that read: customers are drawn from the seed's process
(:func:`~bayesdecide.simulate.retention.simulate_retention`, covariates and all) in another mix of
segments, regions and risk bands (post-stratified by raking to the given margins; within a cell
the customers are the experiment's kind), each is assigned to the holdout with probability
``holdout_share`` and treated otherwise, and outcomes are drawn from the seed's outcome model
with the outreach's *renewal lift* scaled by ``transport``: a treated customer renews with
probability ``p0 + transport * (p1 - p0)`` instead of ``p1`` (fidelity fades at scale, the seed's
risk "effect fades after account managers scale workload"); contact cost, support tickets and
annoyance are the experiment's.

So the true effect of the launch on gross margin (and on renewal) is exactly ``transport`` times
the experiment's, customer by customer, whatever the mix: the true *transport multiplier* of the
card's benefit outcome (gross margin) is ``transport``. :attr:`RolloutSimulation.experiment_truth`
holds the experiment's effects for the same customers, so any multiplier can be checked with
:meth:`RolloutSimulation.true_transport`.

The outcome model below restates the seed's equations (the experiment's simulator draws its
outcomes with a fixed effect and a 50/50 assignment); a test checks that with ``transport = 1``
its true effects equal :func:`simulate_retention`'s for the same customers, to the last digit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesdecide.errors import SpecError
from bayesdecide.simulate.retention import (
    ANNOYANCE_PENALTY,
    RISK_BANDS,
    SUPPORT_TICKET_COST,
    simulate_retention,
)
from bayesdecide.simulate.simulation import Simulation

CELL_FACTORS = ("segment", "region", "risk_band")


@dataclass(frozen=True)
class RolloutSimulation(Simulation):
    """A simulated rollout read with known truth (see the module docstring).

    Attributes
    ----------
    data, spec:
        One row per launch customer, the experiment's columns (``treatment`` 1 = treated, 0 =
        randomized holdout); the retention spec.
    truth:
        Per customer, the true expected effect of the launch (treated minus holdout) on every
        outcome, in the outcome's units.
    experiment_truth:
        Per customer, the true effect the experiment's treatment has on the same customer.
    transport:
        The simulated scaling of the renewal lift (the true transport factor of gross margin).
    holdout_share:
        Designed probability of assignment to the holdout.
    """

    experiment_truth: pd.DataFrame
    transport: float
    holdout_share: float

    def true_transport(
        self,
        outcomes: Sequence[str] = ("gross_margin",),
        weights: Mapping[str, float] | None = None,
    ) -> float:
        """The true transport multiplier: the launch population's mix-weighted effect on the
        weighted benefit outcomes over the experiment's effect on the same customers
        (dimensionless; ``weights`` default 1 per outcome)."""
        w = {o: 1.0 for o in outcomes} if weights is None else dict(weights)
        launch = sum(w[o] * self.truth[o].mean() for o in outcomes)
        experiment = sum(w[o] * self.experiment_truth[o].mean() for o in outcomes)
        return float(launch / experiment)

    def mix(self, factor: str) -> pd.Series:
        """The launch population's share of customers per level of ``factor``."""
        return self.data[factor].value_counts(normalize=True).sort_index()


def _rake(base: pd.Series, margins: Mapping[str, Mapping[str, float]]) -> pd.Series:
    """Cell shares ``base`` (indexed by the cell factors) raked to the given factor margins."""
    share = base.astype(float).copy()
    for factor, levels in margins.items():
        if factor not in CELL_FACTORS:
            raise SpecError(f"mix names factor {factor!r}; use {list(CELL_FACTORS)}")
        have = set(share.index.get_level_values(factor))
        unknown = [lv for lv in levels if lv not in have]
        if unknown:
            raise SpecError(f"mix for {factor!r} names unknown levels {unknown}; levels: {have}")
        missing = [lv for lv in have if lv not in levels]
        if missing:
            raise SpecError(f"mix for {factor!r} is missing levels {missing}; give every level")
        total = sum(float(v) for v in levels.values())
        if not np.isclose(total, 1.0) or any(float(v) < 0 for v in levels.values()):
            raise SpecError(f"mix for {factor!r} must be shares >= 0 summing to 1, not {total}")
    for _ in range(200 if len(margins) > 1 else 1):
        for factor, levels in margins.items():
            have = share.groupby(level=factor).sum()
            ratio = pd.Series({k: float(v) for k, v in levels.items()}) / have
            share = (
                share
                * ratio.replace([np.inf, np.nan], 0.0)
                .reindex(share.index.get_level_values(factor))
                .to_numpy()
            )
        done = all(
            np.allclose(
                share.groupby(level=f).sum().reindex(list(lv)).to_numpy(),
                [float(v) for v in lv.values()],
                atol=1e-10,
            )
            for f, lv in margins.items()
        )
        if done:
            break
    return share / share.sum()


def _draw_population(
    n: int, mix: Mapping[str, Mapping[str, float]] | None, seed: int
) -> pd.DataFrame:
    """``n`` customers of the seed's process in the launch mix (without replacement)."""
    rng = np.random.default_rng([seed, 1])
    pool_n = 4 * n
    for attempt in range(6):
        pool = simulate_retention(seed=seed + 7919 * attempt, n=pool_n).data
        counts = pool.groupby(list(CELL_FACTORS)).size()
        target = _rake(counts / counts.sum(), mix or {})
        want = pd.Series(rng.multinomial(n, target.to_numpy()), index=target.index)
        short = (want / counts.reindex(want.index)).max()
        if short <= 1:
            break
        pool_n = int(np.ceil(pool_n * short * 1.2))
    else:  # pragma: no cover - the pool grows each time
        raise SpecError("could not draw the launch population; give a less extreme mix")
    rows_of = pool.groupby(list(CELL_FACTORS)).indices
    picked = []
    for cell, k in want.items():
        if k > 0:
            picked.append(rng.choice(rows_of[cell], size=int(k), replace=False))
    index = np.sort(np.concatenate(picked))
    return pool.iloc[index].reset_index(drop=True)


def retention_effects(pop: pd.DataFrame, transport: float = 1.0) -> pd.DataFrame:
    """True expected effects of outreach for customers ``pop`` (the seed's covariates), with the
    renewal lift scaled by ``transport``: one column per outcome, in the outcome's units."""
    p = _probabilities(pop, transport)
    renewal = p["treated"] - p["control"]
    gross = renewal * pop["base_margin"].to_numpy()
    discount = p["treated"] * p["discount_rate"] * pop["base_margin"].to_numpy()
    tickets = np.exp(p["ticket_log_rate"]) * (np.exp(0.20) - 1.0)
    annoyance = p["annoyance_treated"] - p["annoyance_control"]
    contact = p["contact_mean"]
    return pd.DataFrame(
        {
            "net_margin": gross
            - contact
            - discount
            - SUPPORT_TICKET_COST * tickets
            - ANNOYANCE_PENALTY * annoyance,
            "renewed": renewal,
            "gross_margin": gross,
            "contact_cost": contact,
            "discount_cost": discount,
            "support_tickets": tickets,
            "annoyance": annoyance,
        }
    )


def _probabilities(pop: pd.DataFrame, transport: float) -> dict[str, np.ndarray]:
    """The seed's outcome model, per customer (probabilities, rates, means)."""
    segment = pop["segment"].to_numpy()
    risk = pop["risk_band"].to_numpy()
    history = pop["support_history"].to_numpy()
    is_smb, is_mid, is_ent = (segment == s for s in ("SMB", "Mid-market", "Enterprise"))
    is_low, is_medium, is_high = (risk == r for r in RISK_BANDS)
    control = np.clip(np.clip(1 - pop["churn_risk"].to_numpy(), 0.05, 0.98), 0.02, 0.99)
    lift = 0.012 + 0.110 * is_medium + 0.280 * is_high + 0.040 * is_ent - 0.015 * is_low
    treated_exp = np.clip(np.clip(1 - pop["churn_risk"].to_numpy(), 0.05, 0.98) + lift, 0.02, 0.99)
    return {
        "control": control,
        "treated": control + transport * (treated_exp - control),
        "discount_rate": np.where(is_high, 0.025, np.where(is_medium, 0.012, 0.004)),
        "ticket_log_rate": -2.25 + 0.35 * is_low + 0.15 * history,
        "annoyance_control": np.clip(0.010 + 0.006 * history, 0, 0.30),
        "annoyance_treated": np.clip(0.010 + 0.009 + 0.014 * is_low + 0.006 * history, 0, 0.30),
        "contact_mean": np.where(is_smb, 3.5, np.where(is_mid, 9.0, 28.0)),
        "contact_sd": np.where(is_smb, 0.7, np.where(is_mid, 1.5, 4.0)),
    }


def simulate_retention_rollout(
    transport: float = 0.7,
    n: int = 60_000,
    *,
    holdout_share: float = 0.10,
    mix: Mapping[str, Mapping[str, float]] | None = None,
    seed: int = 2027,
) -> RolloutSimulation:
    """Simulate the 90-day read of the retention outreach rollout with a randomized holdout.

    Parameters
    ----------
    transport:
        True transport factor in (0, 1]: the launch keeps this share of the experiment's renewal
        lift, hence of its gross-margin effect, in every customer.
    n:
        Launch customers read at 90 days (treated and holdout).
    holdout_share:
        Probability that a launch customer is kept in the randomized holdout, in (0, 1).
    mix:
        Launch mix over ``segment``, ``region`` and ``risk_band`` margins, e.g. ``{"risk_band":
        {"Low risk": 0.3, "Medium risk": 0.5, "High risk": 0.2}}`` (0 excludes a level, as a
        targeted launch does); default the experiment's mix.
    seed:
        Seed of every random draw.

    Returns
    -------
    RolloutSimulation
        ``data`` (the experiment's columns; money in dollars per customer over 90 days),
        ``truth`` (the launch's true effects per customer), ``experiment_truth`` and
        ``transport``.
    """
    if not 0 < transport <= 1:
        raise SpecError(
            f"transport={transport}: give the share of the experiment's renewal lift kept at "
            "launch, in (0, 1]"
        )
    if not 0 < holdout_share < 1:
        raise SpecError(f"holdout_share={holdout_share}: give a probability in (0, 1)")
    if n < 100:
        raise SpecError(f"n={n}: simulate at least 100 launch customers")
    pop = _draw_population(int(n), mix, seed)
    rng = np.random.default_rng([seed, 2])
    size = len(pop)
    treatment = (rng.random(size) >= holdout_share).astype(np.int64)
    p = _probabilities(pop, transport)
    renewed = rng.binomial(1, np.where(treatment == 1, p["treated"], p["control"]))
    contact_cost = treatment * rng.normal(p["contact_mean"], p["contact_sd"])
    base = pop["base_margin"].to_numpy()
    discount_cost = treatment * renewed * p["discount_rate"] * base
    support_tickets = rng.poisson(np.exp(p["ticket_log_rate"] + 0.20 * treatment))
    annoyance = rng.binomial(
        1, np.where(treatment == 1, p["annoyance_treated"], p["annoyance_control"])
    )
    gross_margin = renewed * base
    data = pop.drop(columns=["treatment"]).assign(
        customer_id=np.arange(1, size + 1, dtype=np.int64),
        treatment=treatment,
        renewed=renewed,
        gross_margin=gross_margin,
        contact_cost=contact_cost,
        discount_cost=discount_cost,
        support_tickets=support_tickets,
        annoyance=annoyance,
        net_margin=gross_margin
        - contact_cost
        - discount_cost
        - SUPPORT_TICKET_COST * support_tickets
        - ANNOYANCE_PENALTY * annoyance,
    )[list(pop.columns)]
    from bayesdecide.data.spec import retention_spec

    return RolloutSimulation(
        data=data,
        truth=retention_effects(pop, transport),
        spec=retention_spec(),
        experiment_truth=retention_effects(pop, 1.0),
        transport=float(transport),
        holdout_share=float(holdout_share),
    )


__all__ = ["RolloutSimulation", "retention_effects", "simulate_retention_rollout"]
