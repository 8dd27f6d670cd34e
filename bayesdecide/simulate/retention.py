"""The seed notebook's retention-outreach experiment, reproduced draw for draw.

A subscription company randomizes 42,000 eligible customers 50/50 to proactive human-assisted
outreach before renewal. Outcomes are measured over a 90-day window. The random draws are taken in
exactly the seed's order, so ``simulate_retention()`` (seed 808) yields the seed's data to the last
digit; the only additions are a ``customer_id`` column and the true expected effects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesdecide.data.spec import retention_spec
from bayesdecide.simulate.simulation import Simulation

SUPPORT_TICKET_COST = 18.0  # dollars per support ticket (the seed's support cost)
ANNOYANCE_PENALTY = 35.0  # dollars per annoyed customer (the seed's business assumption)
RISK_BANDS = ("Low risk", "Medium risk", "High risk")
SEGMENTS = ("SMB", "Mid-market", "Enterprise")
REGIONS = ("Americas", "EMEA", "APAC")


def simulate_retention(seed: int = 808, n: int = 42_000) -> Simulation:
    """Simulate the retention-outreach experiment of the seed notebook.

    Parameters
    ----------
    seed:
        Seed of ``numpy.random.default_rng``; 808 reproduces the seed notebook.
    n:
        Number of randomized customers.

    Returns
    -------
    Simulation
        ``data`` has one row per customer with the seed's columns (money in dollars per customer
        over 90 days, ``renewed`` and ``annoyance`` 0/1, ``support_tickets`` counts) plus
        ``customer_id``; ``truth`` holds, per customer, the true expected effect of assignment on
        each outcome (e.g. ``net_margin`` in dollars, ``renewed`` in probability).
    """
    rng = np.random.default_rng(seed)
    segment = rng.choice(list(SEGMENTS), size=n, p=[0.58, 0.30, 0.12])
    region = rng.choice(list(REGIONS), size=n, p=[0.55, 0.28, 0.17])
    tenure_months = np.clip(rng.gamma(shape=3.5, scale=8.0, size=n), 1, 96)
    is_smb = segment == "SMB"
    is_mid = segment == "Mid-market"
    is_ent = segment == "Enterprise"
    seats = np.where(
        is_smb,
        rng.poisson(8, size=n) + 1,
        np.where(is_mid, rng.poisson(35, size=n) + 5, rng.poisson(130, size=n) + 20),
    )
    prior_usage = np.clip(rng.beta(3.2, 2.4, size=n), 0.02, 0.99)
    support_history = rng.poisson(np.exp(-0.8 + 0.7 * (1 - prior_usage) + 0.25 * is_ent), size=n)
    base_margin = np.where(
        is_smb,
        rng.lognormal(4.35, 0.45, size=n),
        np.where(is_mid, rng.lognormal(5.45, 0.42, size=n), rng.lognormal(6.65, 0.38, size=n)),
    )
    churn_risk = np.clip(
        0.08
        + 0.40 * (1 - prior_usage)
        + 0.035 * support_history
        - 0.0018 * tenure_months
        + 0.05 * is_smb
        - 0.04 * is_ent
        + rng.normal(0, 0.05, size=n),
        0.02,
        0.85,
    )
    treatment = rng.binomial(1, 0.50, size=n)
    risk_band = np.where(
        churn_risk <= 0.25,
        RISK_BANDS[0],
        np.where(churn_risk <= 0.45, RISK_BANDS[1], RISK_BANDS[2]),
    )
    is_low = risk_band == RISK_BANDS[0]
    is_medium = risk_band == RISK_BANDS[1]
    is_high = risk_band == RISK_BANDS[2]

    control_renewal_prob = np.clip(1 - churn_risk, 0.05, 0.98)
    incremental_renewal = (
        0.012 + 0.110 * is_medium + 0.280 * is_high + 0.040 * is_ent - 0.015 * is_low
    )
    treated_renewal_prob = np.clip(control_renewal_prob + incremental_renewal, 0.02, 0.99)
    untreated_renewal_prob = np.clip(control_renewal_prob, 0.02, 0.99)
    renewal_prob = np.where(treatment == 1, treated_renewal_prob, untreated_renewal_prob)
    renewed = rng.binomial(1, renewal_prob)

    contact_mean = np.where(is_smb, 3.5, np.where(is_mid, 9.0, 28.0))
    contact_cost = treatment * np.where(
        is_smb,
        rng.normal(3.5, 0.7, size=n),
        np.where(is_mid, rng.normal(9.0, 1.5, size=n), rng.normal(28.0, 4.0, size=n)),
    )
    discount_rate = np.where(is_high, 0.025, np.where(is_medium, 0.012, 0.004))
    discount_cost = treatment * renewed * discount_rate * base_margin

    ticket_log_rate = -2.25 + 0.35 * is_low + 0.15 * support_history
    support_tickets = rng.poisson(np.exp(ticket_log_rate + 0.20 * treatment), size=n)

    annoyance_control = np.clip(0.010 + 0.006 * support_history, 0, 0.30)
    annoyance_treated = np.clip(0.010 + 0.009 + 0.014 * is_low + 0.006 * support_history, 0, 0.30)
    annoyance = rng.binomial(1, np.where(treatment == 1, annoyance_treated, annoyance_control))

    gross_margin = renewed * base_margin
    net_margin = (
        gross_margin
        - contact_cost
        - discount_cost
        - SUPPORT_TICKET_COST * support_tickets
        - ANNOYANCE_PENALTY * annoyance
    )

    data = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "segment": segment,
            "region": region,
            "tenure_months": tenure_months,
            "seats": seats,
            "prior_usage": prior_usage,
            "support_history": support_history,
            "base_margin": base_margin,
            "churn_risk": churn_risk,
            "risk_band": risk_band,
            "treatment": treatment,
            "renewed": renewed,
            "gross_margin": gross_margin,
            "contact_cost": contact_cost,
            "discount_cost": discount_cost,
            "support_tickets": support_tickets,
            "annoyance": annoyance,
            "net_margin": net_margin,
        }
    )

    renewal_effect = treated_renewal_prob - untreated_renewal_prob
    gross_effect = renewal_effect * base_margin
    discount_effect = treated_renewal_prob * discount_rate * base_margin
    ticket_effect = np.exp(ticket_log_rate) * (np.exp(0.20) - 1.0)
    annoyance_effect = annoyance_treated - annoyance_control
    truth = pd.DataFrame(
        {
            "net_margin": gross_effect
            - contact_mean
            - discount_effect
            - SUPPORT_TICKET_COST * ticket_effect
            - ANNOYANCE_PENALTY * annoyance_effect,
            "renewed": renewal_effect,
            "gross_margin": gross_effect,
            "contact_cost": contact_mean,
            "discount_cost": discount_effect,
            "support_tickets": ticket_effect,
            "annoyance": annoyance_effect,
        }
    )
    return Simulation(data=data, truth=truth, spec=retention_spec())
