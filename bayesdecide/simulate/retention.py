"""The seed notebook's retention-outreach experiment, reproduced draw for draw.

A subscription company randomizes 42,000 eligible customers 50/50 to proactive human-assisted
outreach before renewal. Outcomes are measured over a 90-day window. The random draws are taken in
exactly the seed's order, so ``simulate_retention()`` (seed 808) yields the seed's data to the last
digit; the only additions are a ``customer_id`` column and the true expected effects.

A second offer (``second_offer=True``)
--------------------------------------
A three-arm version: next to human outreach, a **discount-only email** (an automated renewal
email offering a discount on the renewal price). Every draw of the seed is taken as before, in
the same order, from the same generator; then a separate child generator
(``SeedSequence(seed).spawn(1)``) moves each of the seed's control customers to the email arm
with probability ``email_share`` (default 1/2) and draws the email customers' outcomes. So the
arms are control, outreach and email with shares about 25% / 50% / 25%, and every outreach and
remaining control customer's row is the seed's row exactly. The ``treatment`` column then holds
``"control"``, ``"outreach"`` or ``"email"``.

The email arm's data-generating process, per customer (``p0`` the control renewal probability,
``m`` the base margin, ``h`` the support history; low, medium, high the risk band):

* renewal probability ``clip(p0 + lift, 0.02, 0.99)`` with ``lift`` = 0.045 (low risk), 0.140
  (medium), 0.080 (high): a discount moves customers who are undecided, not those about to leave,
  where human outreach (+0.003 / +0.122 / +0.292, and +0.04 in Enterprise) works best;
* contact cost ~ Normal($0.50, $0.10) per email (sending and platform cost);
* discount cost ``renewed x 0.02 x m`` (2% off the renewal, taken by every renewing recipient);
* support tickets ~ Poisson with log rate ``-2.25 + 0.35 low + 0.15 h + 0.05`` (+5%);
* annoyance ~ Bernoulli(``clip(0.010 + 0.002 + 0.004 low + 0.006 h, 0, 0.30)``).

The net value per customer (the seed's: gross margin − contact − discount − $18 × tickets −
$35 × annoyance) makes the **best arm differ by risk band**: the email wins in low and medium
risk (outreach loses money in low risk and costs far more per customer), outreach wins in high
risk. ``truth`` then has one column per (arm, outcome): ``truth["email"]["net_margin"]`` is each
customer's true expected effect of the email against control, ``truth["outreach"]`` the seed's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesdecide.data.spec import retention_spec, retention_three_arm_spec
from bayesdecide.simulate.simulation import Simulation

SUPPORT_TICKET_COST = 18.0  # dollars per support ticket (the seed's support cost)
ANNOYANCE_PENALTY = 35.0  # dollars per annoyed customer (the seed's business assumption)
# Per segment: (mean, sd) of the log of the base margin (dollars per customer over 90 days if the
# customer renews), drawn independently of everything else about the customer.
BASE_MARGIN_LOG = {"SMB": (4.35, 0.45), "Mid-market": (5.45, 0.42), "Enterprise": (6.65, 0.38)}
RISK_BANDS = ("Low risk", "Medium risk", "High risk")
SEGMENTS = ("SMB", "Mid-market", "Enterprise")
REGIONS = ("Americas", "EMEA", "APAC")


def simulate_retention(
    seed: int = 808,
    n: int = 42_000,
    *,
    second_offer: bool = False,
    email_share: float = 0.5,
) -> Simulation:
    """Simulate the retention-outreach experiment of the seed notebook.

    Parameters
    ----------
    seed:
        Seed of ``numpy.random.default_rng``; 808 reproduces the seed notebook.
    n:
        Number of randomized customers.
    second_offer:
        Add the discount-only email as a third arm (module docstring); off, the data are the
        seed's draw for draw.
    email_share:
        With ``second_offer``: the probability that one of the seed's control customers is
        moved to the email arm (strictly between 0 and 1).

    Returns
    -------
    Simulation
        ``data`` has one row per customer with the seed's columns (money in dollars per customer
        over 90 days, ``renewed`` and ``annoyance`` 0/1, ``support_tickets`` counts) plus
        ``customer_id``; ``truth`` holds, per customer, the true expected effect of assignment on
        each outcome (e.g. ``net_margin`` in dollars, ``renewed`` in probability); with
        ``second_offer`` per treatment arm against control (columns ``(arm, outcome)``).
    """
    if second_offer and not 0 < email_share < 1:
        raise ValueError(
            f"email_share is {email_share}; give the probability that a control customer gets "
            "the email, strictly between 0 and 1"
        )
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
        rng.lognormal(*BASE_MARGIN_LOG["SMB"], size=n),
        np.where(
            is_mid,
            rng.lognormal(*BASE_MARGIN_LOG["Mid-market"], size=n),
            rng.lognormal(*BASE_MARGIN_LOG["Enterprise"], size=n),
        ),
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
    if not second_offer:
        return Simulation(data=data, truth=truth, spec=retention_spec())
    child = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    email = _email_arm(
        child,
        treatment,
        email_share,
        untreated_renewal_prob,
        base_margin,
        is_low,
        is_medium,
        is_high,
        ticket_log_rate,
        support_history,
    )
    data = _with_email(data, email)
    truth = pd.concat({"outreach": truth, "email": email.truth}, axis=1)
    return Simulation(data=data, truth=truth, spec=retention_three_arm_spec())


EMAIL_LIFT = {"Low risk": 0.045, "Medium risk": 0.140, "High risk": 0.080}  # renewal probability
EMAIL_CONTACT_COST = 0.50  # dollars per email (mean)
EMAIL_DISCOUNT_RATE = 0.02  # share of the base margin given back on renewal
EMAIL_TICKET_LOG_LIFT = 0.05  # on the support-ticket log rate
EMAIL_ANNOYANCE = 0.002  # extra annoyance probability (+0.004 more in low risk)
EMAIL_ANNOYANCE_LOW = 0.004


@dataclass(frozen=True)
class _EmailArm:
    """The email arm: who got it, their outcomes, and every customer's true effects."""

    assigned: np.ndarray
    renewed: np.ndarray
    contact_cost: np.ndarray
    discount_cost: np.ndarray
    support_tickets: np.ndarray
    annoyance: np.ndarray
    truth: pd.DataFrame


def _email_arm(
    rng: np.random.Generator,
    treatment: np.ndarray,
    email_share: float,
    control_renewal_prob: np.ndarray,
    base_margin: np.ndarray,
    is_low: np.ndarray,
    is_medium: np.ndarray,
    is_high: np.ndarray,
    ticket_log_rate: np.ndarray,
    support_history: np.ndarray,
) -> _EmailArm:
    """Assign the email among the seed's controls and draw its outcomes (module docstring), all
    from the child generator ``rng``."""
    n = len(treatment)
    assigned = (treatment == 0) & (rng.random(n) < email_share)
    lift = (
        EMAIL_LIFT["Low risk"] * is_low
        + EMAIL_LIFT["Medium risk"] * is_medium
        + EMAIL_LIFT["High risk"] * is_high
    )
    email_prob = np.clip(control_renewal_prob + lift, 0.02, 0.99)
    renewed = rng.binomial(1, email_prob)
    contact = np.maximum(rng.normal(EMAIL_CONTACT_COST, 0.10, size=n), 0.0)
    discount = renewed * EMAIL_DISCOUNT_RATE * base_margin
    tickets = rng.poisson(np.exp(ticket_log_rate + EMAIL_TICKET_LOG_LIFT), size=n)
    annoyance_control = np.clip(0.010 + 0.006 * support_history, 0, 0.30)
    annoyance_email = np.clip(
        0.010 + EMAIL_ANNOYANCE + EMAIL_ANNOYANCE_LOW * is_low + 0.006 * support_history, 0, 0.30
    )
    annoyed = rng.binomial(1, annoyance_email)

    renewal_effect = email_prob - control_renewal_prob
    gross_effect = renewal_effect * base_margin
    discount_effect = email_prob * EMAIL_DISCOUNT_RATE * base_margin
    ticket_effect = np.exp(ticket_log_rate) * (np.exp(EMAIL_TICKET_LOG_LIFT) - 1.0)
    annoyance_effect = annoyance_email - annoyance_control
    # E[max(Normal(0.5, 0.1), 0)] - 0.5 is 5e-9 dollars: the clip at zero is negligible
    truth = pd.DataFrame(
        {
            "net_margin": gross_effect
            - EMAIL_CONTACT_COST
            - discount_effect
            - SUPPORT_TICKET_COST * ticket_effect
            - ANNOYANCE_PENALTY * annoyance_effect,
            "renewed": renewal_effect,
            "gross_margin": gross_effect,
            "contact_cost": np.full(n, EMAIL_CONTACT_COST),
            "discount_cost": discount_effect,
            "support_tickets": ticket_effect,
            "annoyance": annoyance_effect,
        }
    )
    return _EmailArm(assigned, renewed, contact, discount, tickets, annoyed, truth)


def _with_email(data: pd.DataFrame, email: _EmailArm) -> pd.DataFrame:
    """The seed's rows with the email customers' outcomes replaced and arm labels."""
    data = data.copy()
    e = email.assigned
    data["treatment"] = np.where(
        e, "email", np.where(data["treatment"].to_numpy() == 1, "outreach", "control")
    )
    data.loc[e, "renewed"] = email.renewed[e]
    data.loc[e, "gross_margin"] = (email.renewed * data["base_margin"].to_numpy())[e]
    data.loc[e, "contact_cost"] = email.contact_cost[e]
    data.loc[e, "discount_cost"] = email.discount_cost[e]
    data.loc[e, "support_tickets"] = email.support_tickets[e]
    data.loc[e, "annoyance"] = email.annoyance[e]
    data.loc[e, "net_margin"] = (
        data.loc[e, "gross_margin"]
        - data.loc[e, "contact_cost"]
        - data.loc[e, "discount_cost"]
        - SUPPORT_TICKET_COST * data.loc[e, "support_tickets"]
        - ANNOYANCE_PENALTY * data.loc[e, "annoyance"]
    )
    return data
