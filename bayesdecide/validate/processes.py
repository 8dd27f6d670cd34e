"""Data-generating processes with known truth that the hierarchical model was not designed around.

Every simulator here returns a :class:`~bayesdecide.simulate.Simulation` whose ``spec`` works with
:func:`bayesdecide.cell_stats` and whose ``truth`` holds, per unit (one row per row of ``data``),
the exact expected effect of assignment on every outcome given that unit's pre-treatment
characteristics, and whose ``population`` holds, per cell, the expected effect of assignment for a
unit drawn from the cell's population (:func:`plan_tiers_population`,
:func:`regional_coupon_population`, :func:`retention_population`). The calibration compares the
posterior with the population effect (:meth:`~bayesdecide.simulate.Simulation.true_cell_effects`):
it is what a decision about a cell's next customers needs, and what a cell estimate's standard
error is for (its arm variances include the spread of the units' own effects). The mean of the
cell's own units' truths (the sample effect,
:meth:`~bayesdecide.simulate.Simulation.sample_cell_effects`) differs from it by the luck of the
draw: +-12% in a 26-account cell whose effect scales with a lognormal margin, $155 against $229
in a 4-customer Enterprise high-risk cell of the retention process. Against the sample effects,
the unpooled 90% intervals of the multiplicative process's discount cost covered 95.5% of cells
(20 replicates), against the population effects 90.3%.

A :class:`Process` pairs a simulator with the model settings an analyst would choose for it
(factors, interactions, primary outcome). :data:`PROCESSES` lists the processes of the calibration
study; they are written independently of :func:`bayesdecide.simulate_markets` (the package's own
generator, kept as the reference process ``"markets"``):

- ``"retention"`` / ``"retention_risk_band"``: the seed notebook's retention process
  (:func:`bayesdecide.simulate_retention`) with other seeds; the model card's hierarchy (segment,
  region, risk band and segment x risk band) and risk band alone;
- ``"multiplicative"`` / ``"multiplicative_plan_channel"``: :func:`simulate_plan_tiers`, dollar
  effects = probability lift x each account's own margin, plan tier x sales channel x country;
  fitted with plan x country, and with the plan x channel interaction that ``bd.fit`` names
  before sampling added;
- ``"outlying_region"``: :func:`simulate_regional_coupon`, a products x regions experiment with one
  region whose effect has the opposite sign and four regions of 1-2% of units each.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesdecide.data.spec import ExperimentSpec, Outcome, OutcomeKind
from bayesdecide.simulate.simulation import Simulation

# ------------------------------------------------------------------------------------------------
# Multiplicative effects: plan tier x sales channel x country
# ------------------------------------------------------------------------------------------------
PLAN_TIERS = ("Starter", "Team", "Business", "Enterprise")
SALES_CHANNELS = ("Self-serve", "Inside sales", "Partner")
COUNTRIES = (
    "United States",
    "United Kingdom",
    "Germany",
    "France",
    "Brazil",
    "India",
    "Japan",
    "Australia",
)
TICKET_COST = 20.0  # dollars per support ticket in the multiplicative process
_QUARTER = "dollars per account over the quarter"

# Per plan tier: share of accounts, margin price level (mean dollars of margin per quarter if the
# account renews), renewal-probability shift, lift (probability points), discount rate granted to
# treated accounts that renew (fraction of margin), contact-cost multiplier, ticket-rate multiplier.
_PLAN = {
    "Starter": dict(share=0.46, price=45.0, p0=0.00, lift=0.010, discount=0.05, contact=1.0, tickets=1.0),
    "Team": dict(share=0.30, price=140.0, p0=0.03, lift=0.025, discount=0.05, contact=1.3, tickets=1.2),
    "Business": dict(share=0.17, price=420.0, p0=0.06, lift=0.045, discount=0.03, contact=2.0, tickets=1.5),
    "Enterprise": dict(share=0.07, price=1600.0, p0=0.08, lift=0.060, discount=0.02, contact=4.0, tickets=2.0),
}  # fmt: skip
# Channel share given plan tier (rows: plans in PLAN_TIERS order; columns: SALES_CHANNELS).
_CHANNEL_GIVEN_PLAN = np.array(
    [[0.80, 0.12, 0.08], [0.55, 0.30, 0.15], [0.25, 0.55, 0.20], [0.04, 0.78, 0.18]]
)
# Per channel: lift (probability points), contact cost (dollars, before plan and country
# multipliers), log ticket-rate effect of outreach.
_CHANNEL = {
    "Self-serve": dict(lift=-0.010, contact=2.0, ticket_effect=0.30),
    "Inside sales": dict(lift=0.020, contact=14.0, ticket_effect=0.05),
    "Partner": dict(lift=0.000, contact=9.0, ticket_effect=0.15),
}
# Per country: share, price index (margin multiplier), labour index (contact-cost multiplier), lift.
_COUNTRY = {
    "United States": dict(share=0.33, price=1.00, labour=1.00, lift=0.010),
    "United Kingdom": dict(share=0.12, price=0.92, labour=0.90, lift=0.005),
    "Germany": dict(share=0.12, price=0.97, labour=1.00, lift=0.000),
    "France": dict(share=0.09, price=0.88, labour=0.95, lift=-0.005),
    "Brazil": dict(share=0.11, price=0.42, labour=0.45, lift=0.015),
    "India": dict(share=0.11, price=0.28, labour=0.30, lift=0.020),
    "Japan": dict(share=0.07, price=1.05, labour=1.10, lift=-0.040),
    "Australia": dict(share=0.05, price=0.95, labour=0.95, lift=0.005),
}
_MARGIN_SIGMA = 0.55  # sd of log margin within plan x country (lognormal, mean 1)
_REVENUE_SIGMA = 0.25  # sd of log(prior revenue / (1.6 x margin))
_ENGAGEMENT_LIFT = 0.10  # extra lift (probability points) of a fully disengaged account
_ENGAGEMENT_BETA = (2.2, 2.0)  # Beta parameters of engagement (mean 0.524)
_CONTACT_SHAPE = 16.0  # Gamma shape of the contact-cost multiplier (mean 1, cv 0.25)

PLAN_TIER_OUTCOMES: tuple[Outcome, ...] = (
    Outcome("net_revenue", OutcomeKind.CONTINUOUS, "Net revenue", _QUARTER),
    Outcome("renewed", OutcomeKind.BINARY, "Renewal rate", "probability of renewal"),
    Outcome("gross_margin", OutcomeKind.CONTINUOUS, "Gross margin", _QUARTER),
    Outcome("discount_cost", OutcomeKind.CONTINUOUS, "Discount cost", _QUARTER),
    Outcome("contact_cost", OutcomeKind.CONTINUOUS, "Contact cost", _QUARTER),
    Outcome(
        "support_tickets", OutcomeKind.COUNT, "Support tickets", "tickets per account per quarter"
    ),
)


def plan_tiers_spec() -> ExperimentSpec:
    """Spec of :func:`simulate_plan_tiers` data: 6 outcomes, plan x channel x country."""
    return ExperimentSpec(
        name="plan_tier_outreach",
        unit_id="account_id",
        treatment="treatment",
        arms=(0, 1),
        outcomes=PLAN_TIER_OUTCOMES,
        groups=("plan", "channel", "country"),
        covariates=("engagement", "prior_revenue"),
    )


def _per(table: dict[str, dict[str, float]], names: tuple[str, ...], key: str) -> np.ndarray:
    """One parameter of every level, in ``names`` order."""
    return np.array([table[name][key] for name in names])


def _cell_grid(levels: dict[str, tuple[str, ...]]) -> tuple[list[np.ndarray], pd.MultiIndex]:
    """Every combination of the factors' levels: the level codes per factor (in ``levels``'
    order) and the index named by the factors."""
    codes = [c.ravel() for c in np.indices(tuple(len(v) for v in levels.values()))]
    index = pd.MultiIndex.from_arrays(
        [np.array(v)[c] for v, c in zip(levels.values(), codes, strict=True)], names=list(levels)
    )
    return codes, index


def _plan_tier_parts(
    plan_i: np.ndarray,
    channel_i: np.ndarray,
    country_i: np.ndarray,
    engagement: np.ndarray,
    margin_level: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per account of :func:`simulate_plan_tiers`, from its level codes, engagement (0-1) and
    lognormal margin factor (mean 1): ``margin`` if renewed (dollars), control renewal probability
    ``p0``, ``lift`` (probability points), ``discount_rate`` (share of margin), ``contact_mean``
    (dollars), control ticket rate ``lam0`` (tickets per quarter) and ``ticket_effect`` (log
    rate)."""
    return {
        "margin": _per(_PLAN, PLAN_TIERS, "price")[plan_i]
        * _per(_COUNTRY, COUNTRIES, "price")[country_i]
        * margin_level,
        "p0": 0.45 + 0.35 * engagement + _per(_PLAN, PLAN_TIERS, "p0")[plan_i],
        "lift": _per(_PLAN, PLAN_TIERS, "lift")[plan_i]
        + _per(_CHANNEL, SALES_CHANNELS, "lift")[channel_i]
        + _per(_COUNTRY, COUNTRIES, "lift")[country_i]
        + _ENGAGEMENT_LIFT * (1.0 - engagement),
        "discount_rate": _per(_PLAN, PLAN_TIERS, "discount")[plan_i],
        "contact_mean": _per(_CHANNEL, SALES_CHANNELS, "contact")[channel_i]
        * _per(_PLAN, PLAN_TIERS, "contact")[plan_i]
        * _per(_COUNTRY, COUNTRIES, "labour")[country_i],
        "lam0": 0.25 * _per(_PLAN, PLAN_TIERS, "tickets")[plan_i] * (1.6 - engagement),
        "ticket_effect": _per(_CHANNEL, SALES_CHANNELS, "ticket_effect")[channel_i],
    }


def _plan_tier_truth(parts: dict[str, np.ndarray]) -> pd.DataFrame:
    """Expected effect of assignment on every outcome given :func:`_plan_tier_parts`."""
    gross = parts["lift"] * parts["margin"]
    discount = parts["discount_rate"] * parts["margin"] * (parts["p0"] + parts["lift"])
    tickets = parts["lam0"] * np.expm1(parts["ticket_effect"])
    return pd.DataFrame(
        {
            "net_revenue": gross - discount - parts["contact_mean"] - TICKET_COST * tickets,
            "renewed": parts["lift"],
            "gross_margin": gross,
            "discount_cost": discount,
            "contact_cost": parts["contact_mean"],
            "support_tickets": tickets,
        }
    )


def plan_tiers_population() -> pd.DataFrame:
    """Population cell effects of :func:`simulate_plan_tiers`: per plan x channel x country, the
    expected effect of assignment for an account drawn from the cell (outcomes' units).

    Exact, not simulated: engagement and the margin factor are independent of each other and of
    the labels, and every per-account effect is linear in each of them, so the expectation is the
    per-account effect at their means (engagement 2.2 / 4.2, margin factor 1).
    """
    codes, grid = _cell_grid({"plan": PLAN_TIERS, "channel": SALES_CHANNELS, "country": COUNTRIES})
    cells = len(grid)
    a, b = _ENGAGEMENT_BETA
    parts = _plan_tier_parts(*codes, np.full(cells, a / (a + b)), np.ones(cells))
    return _plan_tier_truth(parts).set_index(grid)


def simulate_plan_tiers(seed: int = 1, n: int = 150_000, treat_share: float = 0.5) -> Simulation:
    """A renewal-outreach experiment whose dollar effects are probability lift x own margin.

    Data-generating process (accounts over one quarter; money in dollars per account)
    ------------------------------------------------------------------------------------
    Plan tier ~ Categorical(0.46, 0.30, 0.17, 0.07) over Starter/Team/Business/Enterprise;
    sales channel given plan (Enterprise mostly inside sales, Starter mostly self-serve); country
    ~ Categorical over 8 countries independently. Per account: engagement ``e ~ Beta(2.2, 2)``;
    margin if renewed ``m = price_plan * price_country * L``, ``L`` lognormal of mean 1 (sd of log
    0.55); prior-quarter revenue ``1.6 * m * V`` (``V`` lognormal, mean 1, sd of log 0.25).
    Assignment ``T ~ Bernoulli(treat_share)``. Renewal probability
    ``p0 + T * lift`` with ``p0 = 0.45 + 0.35 e + shift_plan`` (0.45 to 0.88) and the lift additive
    on the probability scale, ``lift = lift_plan + lift_channel + lift_country + 0.10 (1 - e)``
    (-0.04 to +0.20; the renewal probability stays within 0.41-0.98, so nothing is clipped).
    Outcomes:
    ``gross_margin = renewed * m``; ``discount_cost = T * renewed * d_plan * m``;
    ``contact_cost = T * c_channel * c_plan * labour_country * G`` (``G ~ Gamma(16, 1/16)``);
    ``support_tickets ~ Poisson(lam0 * exp(T * g_channel))`` with
    ``lam0 = 0.25 * t_plan * (1.6 - e)``; ``net_revenue = gross_margin - discount_cost -
    contact_cost - 20 * support_tickets``.

    Exact per-account truth (expected effect of assignment given ``e``, ``m`` and the labels):
    ``renewed: lift``; ``gross_margin: lift * m``; ``discount_cost: d_plan * m * (p0 + lift)``;
    ``contact_cost: c_channel * c_plan * labour_country``; ``support_tickets: lam0 (exp(g) - 1)``;
    ``net_revenue`` the same combination. In dollars the effect is a product of plan and country
    price levels and a sum of lifts: the cell effects are neither additive in the factors nor
    homogeneous within a cell, and within-cell outcome spreads range over two orders of magnitude.
    Defaults: 150,000 accounts, 96 cells (4 x 3 x 8; the smallest, Enterprise x Self-serve x
    Australia, has about 25 accounts); the experiment-mix net-revenue effect is about
    +$5.4 per account, from about -$4 (Starter, Team) to about +$100 (Enterprise); Japan, where
    outreach lowers renewal, about -$4. Net revenue's sd is about $375 per account.

    Parameters
    ----------
    seed:
        Seed of ``numpy.random.default_rng``; the same seed gives the same data and truth.
    n:
        Number of randomized accounts.
    treat_share:
        Probability of assignment to outreach.

    Returns
    -------
    Simulation
        ``data``: one row per account: ``account_id``, ``plan``, ``channel``, ``country``,
        ``engagement`` (0-1), ``prior_revenue`` (dollars last quarter), ``treatment`` (0/1) and
        the six outcomes; ``truth``: one row per account (aligned with ``data``), the exact
        expected effect of assignment on every outcome in its unit; ``spec``:
        :func:`plan_tiers_spec`.
    """
    rng = np.random.default_rng(seed)
    plans = np.array(PLAN_TIERS)
    plan_i = rng.choice(len(PLAN_TIERS), size=n, p=[_PLAN[p]["share"] for p in PLAN_TIERS])
    u = rng.random(n)
    cum = np.cumsum(_CHANNEL_GIVEN_PLAN, axis=1)[plan_i]
    channel_i = np.minimum((u[:, None] > cum).sum(axis=1), len(SALES_CHANNELS) - 1)
    country_i = rng.choice(len(COUNTRIES), size=n, p=[_COUNTRY[c]["share"] for c in COUNTRIES])
    engagement = rng.beta(*_ENGAGEMENT_BETA, size=n)
    margin_level = np.exp(_MARGIN_SIGMA * rng.standard_normal(n) - 0.5 * _MARGIN_SIGMA**2)
    revenue_noise = np.exp(_REVENUE_SIGMA * rng.standard_normal(n) - 0.5 * _REVENUE_SIGMA**2)
    treatment = (rng.random(n) < treat_share).astype(np.int8)

    parts = _plan_tier_parts(plan_i, channel_i, country_i, engagement, margin_level)
    margin = parts["margin"]
    prior_revenue = 1.6 * margin * revenue_noise
    renewed = (rng.random(n) < parts["p0"] + treatment * parts["lift"]).astype(np.int8)
    contact_cost = (
        treatment * parts["contact_mean"] * rng.gamma(_CONTACT_SHAPE, 1.0 / _CONTACT_SHAPE, n)
    )
    support_tickets = rng.poisson(parts["lam0"] * np.exp(treatment * parts["ticket_effect"]))
    gross_margin = renewed * margin
    discount_cost = treatment * renewed * parts["discount_rate"] * margin
    net_revenue = gross_margin - discount_cost - contact_cost - TICKET_COST * support_tickets

    data = pd.DataFrame(
        {
            "account_id": np.arange(1, n + 1, dtype=np.int64),
            "plan": plans[plan_i],
            "channel": np.array(SALES_CHANNELS)[channel_i],
            "country": np.array(COUNTRIES)[country_i],
            "engagement": engagement,
            "prior_revenue": prior_revenue,
            "treatment": treatment,
            "net_revenue": net_revenue,
            "renewed": renewed,
            "gross_margin": gross_margin,
            "discount_cost": discount_cost,
            "contact_cost": contact_cost,
            "support_tickets": support_tickets.astype(np.int32),
        }
    )
    truth = _plan_tier_truth(parts)
    return Simulation(
        data=data, truth=truth, spec=plan_tiers_spec(), population=plan_tiers_population()
    )


# ------------------------------------------------------------------------------------------------
# An outlying region and small regions: products x regions x shopper type
# ------------------------------------------------------------------------------------------------
PRODUCTS = ("Grocery", "Fashion", "Electronics", "Home")
REGIONS = (
    "North",
    "South",
    "East",
    "West",
    "Central",
    "Metro",
    "Alpine",
    "Coastal",
    "Delta",
    "Island",
)
OUTLYING_REGION = "Metro"
SMALL_REGIONS = ("Alpine", "Coastal", "Delta", "Island")
SHOPPER_TYPES = ("New", "Returning")
COUPON_RATE = 0.08  # the coupon takes this fraction off the first order in the window
_MONTH = "dollars per shopper over 30 days"

# Per product line: share of shoppers, order-frequency multiplier, mean order value (dollars),
# contribution margin on order value, order-rate lift, basket-size lift of the coupon.
_PRODUCT = {
    "Grocery": dict(share=0.35, freq=1.6, basket=45.0, margin=0.30, rate=0.04, basket_lift=0.03),
    "Fashion": dict(share=0.30, freq=0.8, basket=70.0, margin=0.45, rate=0.02, basket_lift=0.06),
    "Electronics": dict(share=0.15, freq=0.4, basket=180.0, margin=0.15, rate=-0.03, basket_lift=0.02),
    "Home": dict(share=0.20, freq=0.6, basket=95.0, margin=0.35, rate=0.00, basket_lift=0.05),
}  # fmt: skip
# Per region: share of shoppers, price level (order-value multiplier), order-rate lift, extra
# basket-size lift. Metro is the outlier: the coupon mostly pulls forward orders that would have
# happened anyway and splits baskets, so orders and basket sizes fall.
_REGION = {
    "North": dict(share=0.22, price=1.00, rate=0.12, basket_lift=0.00),
    "South": dict(share=0.20, price=0.90, rate=0.10, basket_lift=0.00),
    "East": dict(share=0.18, price=0.85, rate=0.08, basket_lift=0.00),
    "West": dict(share=0.15, price=1.05, rate=0.14, basket_lift=0.00),
    "Central": dict(share=0.10, price=0.95, rate=0.09, basket_lift=0.00),
    "Metro": dict(share=0.09, price=1.20, rate=-0.12, basket_lift=-0.04),
    "Alpine": dict(share=0.015, price=1.10, rate=0.16, basket_lift=0.00),
    "Coastal": dict(share=0.020, price=0.80, rate=0.09, basket_lift=0.00),
    "Delta": dict(share=0.010, price=0.75, rate=0.11, basket_lift=0.00),
    "Island": dict(share=0.015, price=0.90, rate=0.13, basket_lift=0.00),
}
# Per shopper type: share, mean orders per 30 days (before the product multiplier), rate lift.
_SHOPPER = {
    "New": dict(share=0.40, orders=0.8, rate=0.05),
    "Returning": dict(share=0.60, orders=1.8, rate=-0.02),
}
_PRODUCT_REGION_SD = 0.02  # sd of the fixed product x region deviations of the order-rate lift
_PRODUCT_REGION_SEED = 31  # seed of those deviations (one truth shared by all replicates)
_FREQ_SHAPE = 2.0  # Gamma shape of a shopper's order rate around its cell mean
_BASKET_SIGMA = 0.5  # sd of log of a shopper's mean order value (lognormal, mean 1)
_ORDER_SHAPE = 4.0  # Gamma shape of one order's value around the shopper's mean (cv 0.5)

REGIONAL_OUTCOMES: tuple[Outcome, ...] = (
    Outcome("contribution", OutcomeKind.CONTINUOUS, "Contribution", _MONTH),
    Outcome("orders", OutcomeKind.COUNT, "Orders", "orders per shopper over 30 days"),
    Outcome("gmv", OutcomeKind.CONTINUOUS, "Gross merchandise value", _MONTH),
    Outcome("coupon_cost", OutcomeKind.CONTINUOUS, "Coupon cost", _MONTH),
)


def regional_coupon_spec() -> ExperimentSpec:
    """Spec of :func:`simulate_regional_coupon` data: 4 outcomes, product x region x type."""
    return ExperimentSpec(
        name="regional_coupon",
        unit_id="shopper_id",
        treatment="treatment",
        arms=(0, 1),
        outcomes=REGIONAL_OUTCOMES,
        groups=("product", "region", "shopper_type"),
        covariates=("prior_orders", "prior_gmv"),
    )


def product_region_lift() -> pd.DataFrame:
    """The fixed product x region deviations of the order-rate lift (products x regions)."""
    rng = np.random.default_rng(_PRODUCT_REGION_SEED)
    values = rng.normal(0.0, _PRODUCT_REGION_SD, size=(len(PRODUCTS), len(REGIONS)))
    return pd.DataFrame(values, index=list(PRODUCTS), columns=list(REGIONS))


def _coupon_parts(
    product_i: np.ndarray, region_i: np.ndarray, type_i: np.ndarray
) -> dict[str, np.ndarray]:
    """Per shopper of :func:`simulate_regional_coupon`, from the level codes: ``mean_rate``
    (orders per 30 days), ``basket`` (mean order value before the shopper's lognormal factor,
    dollars), the order-rate lift ``rho``, the order-value lift ``delta`` and the product's
    ``margin`` (share of GMV)."""
    return {
        "mean_rate": _per(_SHOPPER, SHOPPER_TYPES, "orders")[type_i]
        * _per(_PRODUCT, PRODUCTS, "freq")[product_i],
        "basket": _per(_PRODUCT, PRODUCTS, "basket")[product_i]
        * _per(_REGION, REGIONS, "price")[region_i],
        "rho": _per(_REGION, REGIONS, "rate")[region_i]
        + _per(_PRODUCT, PRODUCTS, "rate")[product_i]
        + _per(_SHOPPER, SHOPPER_TYPES, "rate")[type_i]
        + product_region_lift().to_numpy()[product_i, region_i],
        "delta": _per(_PRODUCT, PRODUCTS, "basket_lift")[product_i]
        + _per(_REGION, REGIONS, "basket_lift")[region_i],
        "margin": _per(_PRODUCT, PRODUCTS, "margin")[product_i],
    }


def regional_coupon_population() -> pd.DataFrame:
    """Population cell effects of :func:`simulate_regional_coupon`: per product x region x
    shopper type, the expected effect of assignment for a shopper drawn from the cell (outcomes'
    units).

    Exact, not simulated: a shopper's order rate ``f ~ Gamma(k, mean / k)`` and basket factor
    (lognormal, mean 1) are independent, so ``E[f rho] = mean rho``, the GMV effect is
    ``mean * basket * ((1 + rho)(1 + delta) - 1)`` and the coupon cost's
    ``E[1 - exp(-f (1 + rho))] = 1 - (1 + (1 + rho) mean / k) ** -k``.
    """
    codes, grid = _cell_grid(
        {"product": PRODUCTS, "region": REGIONS, "shopper_type": SHOPPER_TYPES}
    )
    parts = _coupon_parts(*codes)
    mean, rho, delta = parts["mean_rate"], parts["rho"], parts["delta"]
    gmv = mean * parts["basket"] * ((1.0 + rho) * (1.0 + delta) - 1.0)
    some_order = 1.0 - (1.0 + (1.0 + rho) * mean / _FREQ_SHAPE) ** -_FREQ_SHAPE
    coupon = COUPON_RATE * parts["basket"] * (1.0 + delta) * some_order
    return pd.DataFrame(
        {
            "contribution": parts["margin"] * gmv - coupon,
            "orders": mean * rho,
            "gmv": gmv,
            "coupon_cost": coupon,
        },
        index=grid,
    )


def simulate_regional_coupon(
    seed: int = 1, n: int = 150_000, treat_share: float = 0.5
) -> Simulation:
    """A marketplace coupon experiment across regions, one of them outlying and four of them small.

    Data-generating process (shoppers over 30 days; money in dollars per shopper)
    --------------------------------------------------------------------------------
    Product line (the shopper's main category), region and shopper type (New/Returning) are drawn
    independently; the Metro region (9% of shoppers) is the outlier and Alpine, Coastal, Delta and
    Island hold 1.5%, 2%, 1% and 1.5%. Per shopper: order rate ``f ~ Gamma(2, mean =
    orders_type * freq_product)`` per 30 days; mean order value
    ``b = basket_product * price_region * L`` (``L`` lognormal of mean 1, sd of log 0.5); prior
    30-day orders ``~ Poisson(f)`` and their value ``b * Gamma(4 k, 1/4)`` (covariates).
    Assignment ``T ~ Bernoulli(treat_share)``; treatment is a coupon for 8% off the first order in
    the window. Orders ``N ~ Poisson(f (1 + T rho))`` with the order-rate lift
    ``rho = rho_region + rho_product + rho_type + rho_product_x_region`` (the last fixed, sd 0.02)
    and each order's value ``b (1 + T delta) * Gamma(4, 1/4)`` with
    ``delta = delta_product + delta_region``. ``gmv`` is the value of all orders,
    ``coupon_cost = T * 0.08 * value of the first order`` and
    ``contribution = margin_product * gmv - coupon_cost``.

    Exact per-shopper truth (expected effect of assignment given ``f``, ``b`` and the labels):
    ``orders: f rho``; ``gmv: f b ((1 + rho)(1 + delta) - 1)``;
    ``coupon_cost: 0.08 b (1 + delta)(1 - exp(-f (1 + rho)))``;
    ``contribution: margin_product * gmv effect - coupon_cost effect``. Metro's order-rate lift is
    -0.12 (others +0.08 to +0.16) and its coupon shrinks baskets, so its contribution effect is
    about -$8 per shopper against about +$0.3 to +$3.5 in the other regions (all shoppers: about
    +$0.5; Electronics loses about $5, Fashion gains about $2.5). Defaults: 150,000 shoppers,
    80 cells (4 x 10 x 2); the smallest (Electronics x Delta x New) has about 90 shoppers.

    Parameters
    ----------
    seed:
        Seed of ``numpy.random.default_rng``; the same seed gives the same data and truth (the
        product x region deviations are fixed across seeds: one truth, many replicates).
    n:
        Number of randomized shoppers.
    treat_share:
        Probability of assignment to the coupon.

    Returns
    -------
    Simulation
        ``data``: one row per shopper: ``shopper_id``, ``product``, ``region``, ``shopper_type``,
        ``prior_orders``, ``prior_gmv`` (dollars), ``treatment`` (0/1), ``contribution``,
        ``orders``, ``gmv`` and ``coupon_cost``; ``truth``: one row per shopper (aligned with
        ``data``), the exact expected effect of assignment on every outcome in its unit; ``spec``:
        :func:`regional_coupon_spec`.
    """
    rng = np.random.default_rng(seed)
    product_i = rng.choice(len(PRODUCTS), size=n, p=[_PRODUCT[p]["share"] for p in PRODUCTS])
    region_i = rng.choice(len(REGIONS), size=n, p=[_REGION[r]["share"] for r in REGIONS])
    type_i = rng.choice(len(SHOPPER_TYPES), size=n, p=[_SHOPPER[s]["share"] for s in SHOPPER_TYPES])

    parts = _coupon_parts(product_i, region_i, type_i)
    mean_rate = parts["mean_rate"]
    f = rng.gamma(_FREQ_SHAPE, mean_rate / _FREQ_SHAPE)
    basket = parts["basket"] * np.exp(
        _BASKET_SIGMA * rng.standard_normal(n) - 0.5 * _BASKET_SIGMA**2
    )
    prior_orders = rng.poisson(f)
    prior_gmv = basket * rng.gamma(_ORDER_SHAPE * np.maximum(prior_orders, 1), 1.0 / _ORDER_SHAPE)
    prior_gmv = np.where(prior_orders > 0, prior_gmv, 0.0)
    treatment = (rng.random(n) < treat_share).astype(np.int8)

    rho, delta, margin = parts["rho"], parts["delta"], parts["margin"]
    rate = f * (1.0 + treatment * rho)
    orders = rng.poisson(rate)
    order_mean = basket * (1.0 + treatment * delta)
    first = order_mean * rng.gamma(_ORDER_SHAPE, 1.0 / _ORDER_SHAPE, n)
    rest = order_mean * rng.gamma(_ORDER_SHAPE * np.maximum(orders - 1, 1), 1.0 / _ORDER_SHAPE)
    gmv = np.where(orders > 0, first, 0.0) + np.where(orders > 1, rest, 0.0)
    coupon_cost = treatment * COUPON_RATE * np.where(orders > 0, first, 0.0)
    contribution = margin * gmv - coupon_cost

    data = pd.DataFrame(
        {
            "shopper_id": np.arange(1, n + 1, dtype=np.int64),
            "product": np.array(PRODUCTS)[product_i],
            "region": np.array(REGIONS)[region_i],
            "shopper_type": np.array(SHOPPER_TYPES)[type_i],
            "prior_orders": prior_orders.astype(np.int32),
            "prior_gmv": prior_gmv,
            "treatment": treatment,
            "contribution": contribution,
            "orders": orders.astype(np.int32),
            "gmv": gmv,
            "coupon_cost": coupon_cost,
        }
    )
    gmv_effect = f * basket * ((1.0 + rho) * (1.0 + delta) - 1.0)
    coupon_effect = COUPON_RATE * basket * (1.0 + delta) * -np.expm1(-f * (1.0 + rho))
    truth = pd.DataFrame(
        {
            "contribution": margin * gmv_effect - coupon_effect,
            "orders": f * rho,
            "gmv": gmv_effect,
            "coupon_cost": coupon_effect,
        }
    )
    return Simulation(
        data=data,
        truth=truth,
        spec=regional_coupon_spec(),
        population=regional_coupon_population(),
    )


# ------------------------------------------------------------------------------------------------
# Processes: a simulator and the model settings an analyst would choose for it
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Process:
    """A data-generating process with known truth and the model settings it is fitted with.

    Attributes
    ----------
    name:
        Short identifier (a key of :data:`PROCESSES`).
    simulate:
        ``simulate(seed) -> Simulation``: one replicate; the same seed gives the same replicate.
        ``truth`` is per unit (aligned with ``data``) or per cell (indexed by the spec's groups).
    factors:
        Grouping factors the model pools over (a subset of the spec's groups, in order).
    interactions:
        Factor pairs whose combinations get their own pooled effects.
    primary:
        The outcome whose calibration decides (the money outcome of the decision).
    description:
        One paragraph: the process, its units and why it tests the model.
    units:
        Unit of the primary outcome's effect, e.g. ``"dollars per customer over 90 days"``.
    first_seed:
        Seed of replicate 0; replicate ``r`` uses ``first_seed + r``.
    adjust:
        Regression-adjust the cell effects with the spec's covariates
        (:func:`bayesdecide.cell_effects`).
    holdout:
        ``(factor, level)`` whose leave-one-level-out prediction is checked
        (:func:`~bayesdecide.validate.leave_level_out`), or None.
    """

    name: str
    simulate: Callable[[int], Simulation]
    factors: tuple[str, ...]
    primary: str
    description: str
    units: str
    interactions: tuple[tuple[str, ...], ...] = ()
    first_seed: int = 1
    adjust: bool = True
    holdout: tuple[str, str] | None = None

    def seeds(self, replications: int) -> list[int]:
        """Seeds of replicates ``0 .. replications - 1``."""
        return [self.first_seed + r for r in range(int(replications))]

    def effect_table(self, sim: Simulation) -> Any:
        """The EffectTable of one replicate (cells with one arm kept, with NaN effect)."""
        import warnings

        from bayesdecide.data.cells import cell_stats
        from bayesdecide.data.effects import cell_effects

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*one arm.*")
            cells = cell_stats(sim.data, sim.spec, single_arm_cells="keep")
        return cell_effects(cells, adjust=self.adjust)


RETENTION_POPULATION_UNITS = 2_000_000  # simulated customers behind retention_population()
_RETENTION_POPULATION_SEED = 20_261_202


@functools.lru_cache(maxsize=1)
def retention_population() -> pd.DataFrame:
    """Population cell effects of the seed's retention process (:func:`simulate_retention`): per
    segment x region x risk band, the expected effect of assignment for a customer drawn from the
    cell (outcomes' units; computed once per process, about 6 s).

    The base margin is drawn independently of everything else given the segment, and the gross
    margin and discount cost effects are linear in it, so its expectation enters exactly
    (lognormal mean ``exp(mu + sd^2 / 2)`` per segment); the rest (renewal lift, the renewal
    probability the discount applies to, tickets, annoyance, which depend on churn risk, support
    history and the clipping of probabilities) is averaged over
    :data:`RETENTION_POPULATION_UNITS` simulated customers (about 230 in the smallest cell,
    Enterprise x APAC x High risk). Two populations from different seeds differ by at most $0.08
    per customer in any cell's net margin (0.03% of that cell's $229).
    """
    from bayesdecide.simulate.retention import (
        ANNOYANCE_PENALTY,
        BASE_MARGIN_LOG,
        SUPPORT_TICKET_COST,
        simulate_retention,
    )

    sim = simulate_retention(seed=_RETENTION_POPULATION_SEED, n=RETENTION_POPULATION_UNITS)
    groups = list(sim.spec.groups)
    truth, data = sim.truth, sim.data
    margin = data["base_margin"].to_numpy()
    per_unit = pd.DataFrame(
        {
            "renewed": truth["renewed"].to_numpy(),
            "discount_per_margin": truth["discount_cost"].to_numpy() / margin,
            "contact_cost": truth["contact_cost"].to_numpy(),
            "support_tickets": truth["support_tickets"].to_numpy(),
            "annoyance": truth["annoyance"].to_numpy(),
        }
    )
    for g in groups:
        per_unit[g] = data[g].to_numpy()
    cells = per_unit.groupby(groups, observed=True, sort=True).mean()
    segment = cells.index.get_level_values("segment")
    mean_margin = np.array(
        [np.exp(BASE_MARGIN_LOG[s][0] + 0.5 * BASE_MARGIN_LOG[s][1] ** 2) for s in segment]
    )
    gross = cells["renewed"].to_numpy() * mean_margin
    discount = cells["discount_per_margin"].to_numpy() * mean_margin
    net = (
        gross
        - cells["contact_cost"].to_numpy()
        - discount
        - SUPPORT_TICKET_COST * cells["support_tickets"].to_numpy()
        - ANNOYANCE_PENALTY * cells["annoyance"].to_numpy()
    )
    population = pd.DataFrame(
        {
            "net_margin": net,
            "renewed": cells["renewed"].to_numpy(),
            "gross_margin": gross,
            "contact_cost": cells["contact_cost"].to_numpy(),
            "discount_cost": discount,
            "support_tickets": cells["support_tickets"].to_numpy(),
            "annoyance": cells["annoyance"].to_numpy(),
        },
        index=cells.index,
    )
    return population[list(truth.columns)]


def _retention(seed: int) -> Simulation:
    from bayesdecide.simulate.retention import simulate_retention

    sim = simulate_retention(seed=seed)
    return dataclasses.replace(sim, population=retention_population())


def _markets(seed: int) -> Simulation:
    from bayesdecide.simulate.markets import simulate_markets

    return simulate_markets(n=60_000, seed=seed)


_RETENTION_UNITS = "dollars per customer over 90 days"

PROCESSES: dict[str, Process] = {
    p.name: p
    for p in (
        Process(
            name="markets",
            simulate=_markets,
            factors=("product", "region", "segment", "risk_band"),
            interactions=(("product", "region"),),
            primary="net_value",
            units=_RETENTION_UNITS,
            first_seed=100,
            description=(
                "Reference: the package's own generator (simulate_markets, 60,000 customers, "
                "135 cells, one fixed truth per cell), fitted with the multi-market card's "
                "hierarchy (product, region, segment, risk band and product x region)."
            ),
        ),
        Process(
            name="retention",
            simulate=_retention,
            factors=("segment", "region", "risk_band"),
            interactions=(("segment", "risk_band"),),
            primary="net_margin",
            units=_RETENTION_UNITS,
            description=(
                "The seed notebook's retention process (simulate_retention) with seeds other "
                "than 808: 42,000 customers, 27 cells, per-customer truth; the retention card's "
                "hierarchy (segment, region, risk band and segment x risk band)."
            ),
        ),
        Process(
            name="retention_risk_band",
            simulate=_retention,
            factors=("risk_band",),
            primary="net_margin",
            units=_RETENTION_UNITS,
            description=(
                "The same replicates as 'retention' fitted with risk band as the only factor "
                "(cells pooled within their risk band)."
            ),
        ),
        Process(
            name="multiplicative",
            simulate=simulate_plan_tiers,
            factors=("plan", "channel", "country"),
            interactions=(("plan", "country"),),
            primary="net_revenue",
            units=_QUARTER,
            description=(
                "simulate_plan_tiers: dollar effect = renewal-probability lift (additive on the "
                "probability scale) x each account's own lognormal margin, with plan-tier and "
                "country price levels; 150,000 accounts, 96 cells (plan x channel x country), "
                "fitted with plan x country."
            ),
        ),
        Process(
            name="multiplicative_plan_channel",
            simulate=simulate_plan_tiers,
            factors=("plan", "channel", "country"),
            interactions=(("plan", "country"), ("plan", "channel")),
            primary="net_revenue",
            units=_QUARTER,
            description=(
                "The same replicates as 'multiplicative' fitted with the interaction that bd.fit "
                "names before sampling added (plan x channel: the channel's lift is priced "
                "through the plan's margin)."
            ),
        ),
        Process(
            name="outlying_region",
            simulate=simulate_regional_coupon,
            factors=("product", "region", "shopper_type"),
            interactions=(("product", "region"),),
            primary="contribution",
            units=_MONTH,
            holdout=("region", OUTLYING_REGION),
            description=(
                "simulate_regional_coupon: a coupon that lifts orders everywhere except Metro "
                "(9% of shoppers, effect of the opposite sign); four regions of 1-2% each; "
                "150,000 shoppers, 80 cells (product x region x shopper type), fitted with "
                "product x region."
            ),
        ),
    )
}
"""The calibration study's processes by name; ``"markets"`` is the reference."""


__all__ = [
    "COUNTRIES",
    "OUTLYING_REGION",
    "PLAN_TIERS",
    "PROCESSES",
    "PRODUCTS",
    "Process",
    "REGIONS",
    "SALES_CHANNELS",
    "SHOPPER_TYPES",
    "SMALL_REGIONS",
    "plan_tiers_spec",
    "product_region_lift",
    "regional_coupon_spec",
    "simulate_plan_tiers",
    "simulate_regional_coupon",
]
