"""A multi-market retention-outreach experiment with known cell effects: products x regions x
segments x risk bands.

The retention program of the seed notebook is run as one randomized experiment across product
families and regions. Customers are randomized (Bernoulli, ``treat_share``) to proactive outreach
before renewal; outcomes are measured per customer over a 90-day window, money in dollars.

Data-generating process (one *cell* = product x region x segment x risk band)
--------------------------------------------------------------------------------
Cell membership is drawn from the population cell shares: independent product, region and segment
shares, and risk band given segment. Within cell ``c``, with ``T`` the assignment (0/1):

- ``tenure_months ~ Gamma(3.5, 8)`` (pre-treatment); it moves the renewal probability by
  ``h = 0.10 * (E[exp(-tenure / 24)] - exp(-tenure / 24))``, which has mean exactly zero;
- ``margin = M_c * L`` with ``L`` lognormal of mean 1 (sd of log 0.45): the customer's 90-day gross
  margin if renewed; ``prior_spend = 1.7 * M_c * L * V`` (``V`` lognormal, mean 1, sd of log
  0.30) is the pre-period spend, strongly correlated with the margin (covariate adjustment helps);
- ``renewed ~ Bernoulli(p0_c + h + T * lift_c)``;
- ``gross_margin = renewed * margin * (1 + T * upsell_c)``;
- ``contact_cost = T * contact_c * G`` with ``G ~ Gamma(25, 1/25)`` (mean 1);
- ``discount_cost = T * renewed * discount_rate_c * margin``;
- ``support_tickets ~ Poisson(rate_c * exp(T * ticket_effect_c))``;
- ``annoyance ~ Bernoulli(annoy0_c + T * annoy_lift_c)``;
- ``net_value = gross_margin - contact_cost - discount_cost - 18 * support_tickets
  - 35 * annoyance``.

Because ``h``, ``L``, ``V`` and ``G`` are independent of each other and of ``T`` and have known
means, the expected effect of assignment per customer of cell ``c`` is exact in closed form:
``renewed: lift``, ``gross_margin: M((1 + upsell)(p0 + lift) - p0)``, ``contact_cost: contact``,
``discount_cost: discount_rate * M * (p0 + lift)``, ``support_tickets: rate (exp(ticket_effect) -
1)``, ``annoyance: annoy_lift`` and ``net_value`` the linear combination above. Probabilities are
kept inside (0.01, 0.99) at the cell level, never clipped per unit, so the closed form stays exact.

The renewal lift is hierarchical: ``lift_c = base + product + region + segment + risk band +
product x region + cell noise`` (the last two small, drawn from ``effect_seed``); margins, contact
costs, ticket and annoyance effects are products/sums of factor main effects. With the default
levels (3 products x 5 regions x 3 segments x 3 risk bands = 135 cells) the true net value of
assignment is about +$2.4 per customer over 90 days overall; by region (dollars per customer)
North America +5.5, Europe +1.8, APAC +2.3, Nordics +3.6, and LATAM -6.7: outreach loses money
there (low margins, expensive contact, smaller lift, more annoyance). Analytics gains (+10),
Payments loses (-3: its outreach triggers support tickets), Core is about break-even; high-risk
customers gain and low-risk ones lose. Payments in APAC is a product x region pocket of weaker
lift. The Nordics are a small region (1.5% of customers) whose cells hold few customers, so
pooling matters there. Outcome standard deviations: net value and gross margin about $225,
contact cost about $7, support tickets about 0.4.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesdecide.data.spec import ExperimentSpec, Outcome
from bayesdecide.simulate.simulation import Simulation

SUPPORT_TICKET_COST = 18.0  # dollars per support ticket
ANNOYANCE_PENALTY = 35.0  # dollars per annoyed customer
GROUPS = ("product", "region", "segment", "risk_band")
PRODUCTS = ("Core", "Analytics", "Payments")
REGIONS = ("North America", "Europe", "APAC", "LATAM", "Nordics")
SEGMENTS = ("SMB", "Mid-market", "Enterprise")
RISK_BANDS = ("Low risk", "Medium risk", "High risk")
DEFAULT_CHUNK_ROWS = 1_000_000
DEFAULT_EFFECT_SEED = 2026

MONEY = "dollars per customer over 90 days"
MARKETS_OUTCOMES: tuple[Outcome, ...] = (
    Outcome("net_value", "continuous", "Net value", MONEY),
    Outcome("renewed", "binary", "Renewal rate", "probability of renewal"),
    Outcome("gross_margin", "continuous", "Gross margin", MONEY),
    Outcome("contact_cost", "continuous", "Contact cost", MONEY),
    Outcome("discount_cost", "continuous", "Discount cost", MONEY),
    Outcome("support_tickets", "count", "Support tickets", "tickets per customer over 90 days"),
    Outcome("annoyance", "binary", "Annoyance rate", "probability of an annoyance report"),
)
MARKETS_COVARIATES: tuple[str, ...] = ("prior_spend", "tenure_months")
VALUE_WEIGHTS: dict[str, float] = {
    "gross_margin": 1.0,
    "contact_cost": -1.0,
    "discount_cost": -1.0,
    "support_tickets": -SUPPORT_TICKET_COST,
    "annoyance": -ANNOYANCE_PENALTY,
}

# Factor-level parameters of the default levels. Levels not listed here get parameters drawn
# deterministically from (effect_seed, factor, name); see _fallback.
_PRODUCT = {  # share, margin multiplier, renewal lift, upsell, ticket log-effect, contact mult.
    "Core": dict(share=0.50, margin=1.00, lift=0.000, upsell=0.00, tickets=0.15, contact=1.00),
    "Analytics": dict(share=0.30, margin=1.30, lift=0.010, upsell=0.03, tickets=0.10, contact=1.10),
    "Payments": dict(share=0.20, margin=0.80, lift=-0.008, upsell=0.00, tickets=0.40, contact=0.90),
}
_REGION = {  # share, price level (margin mult.), contact mult., lift, base/extra annoyance, p0 shift
    "North America": dict(
        share=0.420, margin=1.00, contact=1.00, lift=0.005, annoy0=0.010, annoy=0.008, p0=0.00
    ),
    "Europe": dict(
        share=0.270, margin=0.92, contact=1.15, lift=0.000, annoy0=0.010, annoy=0.010, p0=0.01
    ),
    "APAC": dict(
        share=0.170, margin=0.80, contact=0.85, lift=0.004, annoy0=0.008, annoy=0.008, p0=-0.01
    ),
    "LATAM": dict(
        share=0.125, margin=0.50, contact=1.25, lift=-0.015, annoy0=0.012, annoy=0.025, p0=-0.02
    ),
    "Nordics": dict(
        share=0.015, margin=1.10, contact=1.40, lift=0.012, annoy0=0.008, annoy=0.006, p0=0.02
    ),
}
_SEGMENT = {  # share, margin ($ per 90 days if renewed), contact ($), lift, p0, ticket log-rate
    "SMB": dict(share=0.58, margin=85.0, contact=3.0, lift=0.000, p0=-0.02, tickets=-2.0),
    "Mid-market": dict(share=0.30, margin=240.0, contact=8.5, lift=0.005, p0=0.00, tickets=-1.8),
    "Enterprise": dict(share=0.12, margin=700.0, contact=24.0, lift=0.015, p0=0.03, tickets=-1.5),
}
_RISK_GIVEN_SEGMENT = {  # P(risk band | segment)
    "SMB": {"Low risk": 0.35, "Medium risk": 0.40, "High risk": 0.25},
    "Mid-market": {"Low risk": 0.45, "Medium risk": 0.37, "High risk": 0.18},
    "Enterprise": {"Low risk": 0.55, "Medium risk": 0.32, "High risk": 0.13},
}
_RISK = {  # control renewal, lift, discount rate, extra annoyance, ticket log-offset
    "Low risk": dict(p0=0.90, lift=0.006, discount=0.004, annoy=0.012, tickets=0.20),
    "Medium risk": dict(p0=0.74, lift=0.045, discount=0.012, annoy=0.004, tickets=0.00),
    "High risk": dict(p0=0.50, lift=0.100, discount=0.025, annoy=0.000, tickets=-0.10),
}
_PRODUCT_REGION = {("Payments", "APAC"): -0.020, ("Analytics", "Europe"): 0.008}
_BASE_LIFT = 0.010
_INTERACTION_SD = 0.005  # product x region renewal-lift deviations (probability)
_CELL_SD = 0.004  # cell-level renewal-lift noise (probability)

_TENURE_SHAPE, _TENURE_SCALE, _TENURE_TAU, _TENURE_EFFECT = 3.5, 8.0, 24.0, 0.10
# E[exp(-tenure / tau)] for tenure ~ Gamma(shape, scale): the Laplace transform, exactly.
_TENURE_MEAN_EXP = (1.0 + _TENURE_SCALE / _TENURE_TAU) ** (-_TENURE_SHAPE)
_H_MIN = _TENURE_EFFECT * (_TENURE_MEAN_EXP - 1.0)
_H_MAX = _TENURE_EFFECT * _TENURE_MEAN_EXP
_MARGIN_SIGMA, _SPEND_SIGMA, _SPEND_RATIO, _CONTACT_SHAPE = 0.45, 0.30, 1.7, 25.0


def _fallback(factor: str, name: str, effect_seed: int) -> dict[str, float]:
    """Parameters for a level not in the defaults, drawn deterministically from its name."""
    key = zlib.crc32(f"{factor}:{name}".encode())
    rng = np.random.default_rng([effect_seed, key])
    if factor == "product":
        return dict(
            share=0.0,
            margin=rng.uniform(0.7, 1.3),
            lift=rng.normal(0.0, 0.01),
            upsell=rng.uniform(0.0, 0.03),
            tickets=rng.uniform(0.05, 0.4),
            contact=rng.uniform(0.8, 1.2),
        )
    if factor == "region":
        return dict(
            share=0.0,
            margin=rng.uniform(0.5, 1.1),
            contact=rng.uniform(0.8, 1.4),
            lift=rng.normal(0.0, 0.01),
            annoy0=rng.uniform(0.006, 0.014),
            annoy=rng.uniform(0.005, 0.025),
            p0=rng.normal(0.0, 0.015),
        )
    if factor == "segment":
        return dict(
            share=0.0,
            margin=float(np.exp(rng.uniform(np.log(60.0), np.log(900.0)))),
            contact=rng.uniform(3.0, 35.0),
            lift=rng.normal(0.0, 0.008),
            p0=rng.normal(0.0, 0.02),
            tickets=rng.uniform(-2.2, -1.4),
        )
    return dict(  # risk band
        p0=rng.uniform(0.5, 0.9),
        lift=rng.uniform(0.005, 0.1),
        discount=rng.uniform(0.004, 0.025),
        annoy=rng.uniform(0.0, 0.012),
        tickets=rng.normal(0.0, 0.1),
    )


def _levels(name: str, levels: Sequence[str]) -> tuple[str, ...]:
    if isinstance(levels, str):
        raise ValueError(f"{name}: give a sequence of level names, not the string {levels!r}")
    out = tuple(str(v) for v in levels)
    if not out:
        raise ValueError(f"{name}: give at least one level")
    if len(set(out)) != len(out):
        raise ValueError(f"{name}={out!r}: level names must be distinct")
    return out


def _shares(
    name: str, levels: tuple[str, ...], shares: Sequence[float] | None, table: Mapping[str, Any]
) -> np.ndarray:
    """Population shares: given, else the defaults' shares (equal shares for unknown levels)."""
    if shares is None:
        known = [table[v]["share"] for v in levels if v in table]
        fill = 1.0 / len(levels) if len(known) < len(levels) else 0.0
        w = np.array([table[v]["share"] if v in table else fill for v in levels], dtype=float)
    else:
        w = np.asarray(shares, dtype=float)
        if w.shape != (len(levels),):
            raise ValueError(f"{name}: give one share per level ({len(levels)}), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"{name}: shares must be positive and finite, got {w.tolist()}")
    return w / w.sum()


def _params(factor: str, levels: tuple[str, ...], table: Mapping, effect_seed: int) -> dict:
    rows = [table[v] if v in table else _fallback(factor, v, effect_seed) for v in levels]
    return {k: np.array([r[k] for r in rows], dtype=float) for k in rows[0] if k != "share"}


@dataclass(frozen=True)
class MarketsDesign:
    """The cell-level parameters of one simulated market experiment (everything but the rows).

    Attributes
    ----------
    levels:
        Factor name -> level names, in the order of :data:`GROUPS`.
    cell_share:
        Population share of every cell (sums to 1), indexed like ``truth``.
    truth:
        True expected effect of assignment per customer of the cell, one column per outcome, in
        the outcome's units (dollars per customer over 90 days; probability; tickets per customer).
    params:
        Per-cell DGP parameters (``M``, ``p0``, ``lift``, ``upsell``, ``contact``, ``discount``,
        ``rate``, ``ticket_effect``, ``annoy0``, ``annoy_lift``) as flat arrays in cell order.
    treat_share:
        Probability of assignment to outreach.
    """

    levels: dict[str, tuple[str, ...]]
    cell_share: pd.Series
    truth: pd.DataFrame
    params: dict[str, np.ndarray]
    treat_share: float

    @property
    def n_cells(self) -> int:
        return len(self.cell_share)


def markets_design(
    products: Sequence[str] = PRODUCTS,
    regions: Sequence[str] = REGIONS,
    segments: Sequence[str] = SEGMENTS,
    risk_bands: Sequence[str] = RISK_BANDS,
    *,
    treat_share: float = 0.5,
    product_shares: Sequence[float] | None = None,
    region_shares: Sequence[float] | None = None,
    segment_shares: Sequence[float] | None = None,
    effect_seed: int = DEFAULT_EFFECT_SEED,
) -> MarketsDesign:
    """Cell shares, true cell effects and DGP parameters of :func:`simulate_markets` (no rows).

    Arguments are those of :func:`simulate_markets`.
    """
    products = _levels("products", products)
    regions = _levels("regions", regions)
    segments = _levels("segments", segments)
    risk_bands = _levels("risk_bands", risk_bands)
    if not 0.0 < float(treat_share) < 1.0:
        raise ValueError(f"treat_share={treat_share!r}: give a probability strictly in (0, 1)")
    pw = _shares("product_shares", products, product_shares, _PRODUCT)
    rw = _shares("region_shares", regions, region_shares, _REGION)
    sw = _shares("segment_shares", segments, segment_shares, _SEGMENT)
    bw = np.array(
        [
            [_RISK_GIVEN_SEGMENT.get(s, {}).get(b, 1.0 / len(risk_bands)) for b in risk_bands]
            for s in segments
        ]
    )
    bw /= bw.sum(axis=1, keepdims=True)

    P = _params("product", products, _PRODUCT, effect_seed)
    R = _params("region", regions, _REGION, effect_seed)
    S = _params("segment", segments, _SEGMENT, effect_seed)
    B = _params("risk_band", risk_bands, _RISK, effect_seed)
    n_p, n_r, n_s, n_b = len(products), len(regions), len(segments), len(risk_bands)
    rng = np.random.default_rng([effect_seed, 7])
    pr = rng.normal(0.0, _INTERACTION_SD, size=(n_p, n_r))
    for (p, r), v in _PRODUCT_REGION.items():
        if p in products and r in regions:
            pr[products.index(p), regions.index(r)] += v
    noise = rng.normal(0.0, _CELL_SD, size=(n_p, n_r, n_s, n_b))

    # Broadcast over the (product, region, segment, risk band) grid, then flatten in C order.
    p_ = (slice(None), None, None, None)
    r_ = (None, slice(None), None, None)
    s_ = (None, None, slice(None), None)
    b_ = (None, None, None, slice(None))
    shape = (n_p, n_r, n_s, n_b)
    share = pw[p_] * rw[r_] * (sw[:, None] * bw)[None, None, :, :]
    M = P["margin"][p_] * R["margin"][r_] * S["margin"][s_] * np.ones(shape)
    p0 = np.clip(B["p0"][b_] + S["p0"][s_] + R["p0"][r_], 0.01 - _H_MIN, 0.95 - _H_MAX)
    lift = _BASE_LIFT + P["lift"][p_] + R["lift"][r_] + S["lift"][s_] + B["lift"][b_]
    lift = lift + pr[:, :, None, None] + noise
    lift = np.clip(lift, 0.01 - _H_MIN - p0, 0.99 - _H_MAX - p0)  # keep p0 + h + lift in range
    upsell = P["upsell"][p_] * np.ones(shape)
    contact = P["contact"][p_] * R["contact"][r_] * S["contact"][s_] * np.ones(shape)
    discount = B["discount"][b_] * np.ones(shape)
    rate = np.exp(S["tickets"][s_] + B["tickets"][b_]) * np.ones(shape)
    ticket_effect = P["tickets"][p_] * np.ones(shape)
    annoy0 = R["annoy0"][r_] + 0.004 * (B["p0"][b_] < 0.6) * np.ones(shape)
    annoy_lift = 0.003 * (ticket_effect > 0.3) + R["annoy"][r_] + B["annoy"][b_]
    annoy_lift = np.clip(annoy_lift, -annoy0 + 0.001, 0.99 - annoy0)

    params = {
        k: np.ascontiguousarray(np.broadcast_to(v, shape), dtype=float).reshape(-1)
        for k, v in dict(
            M=M,
            p0=p0,
            lift=lift,
            upsell=upsell,
            contact=contact,
            discount=discount,
            rate=rate,
            ticket_effect=ticket_effect,
            annoy0=annoy0,
            annoy_lift=annoy_lift,
        ).items()
    }
    t = params
    gross = t["M"] * ((1.0 + t["upsell"]) * (t["p0"] + t["lift"]) - t["p0"])
    disc = t["discount"] * t["M"] * (t["p0"] + t["lift"])
    tickets = t["rate"] * np.expm1(t["ticket_effect"])
    net = (
        gross
        - t["contact"]
        - disc
        - SUPPORT_TICKET_COST * tickets
        - ANNOYANCE_PENALTY * t["annoy_lift"]
    )
    index = pd.MultiIndex.from_product([products, regions, segments, risk_bands], names=GROUPS)
    truth = pd.DataFrame(
        {
            "net_value": net,
            "renewed": t["lift"],
            "gross_margin": gross,
            "contact_cost": t["contact"],
            "discount_cost": disc,
            "support_tickets": tickets,
            "annoyance": t["annoy_lift"],
        },
        index=index,
    )
    cell_share = pd.Series(share.reshape(-1) / share.sum(), index=index, name="cell_share")
    levels = dict(zip(GROUPS, (products, regions, segments, risk_bands), strict=True))
    return MarketsDesign(levels, cell_share, truth, params, float(treat_share))


def markets_spec() -> ExperimentSpec:
    """Spec of :func:`simulate_markets` data: 7 outcomes, 4 grouping factors, 2 covariates."""
    return ExperimentSpec(
        name="markets_outreach",
        unit_id="customer_id",
        treatment="treatment",
        arms=(0, 1),
        outcomes=MARKETS_OUTCOMES,
        groups=GROUPS,
        covariates=MARKETS_COVARIATES,
    )


def _block_rng(seed: int, block: int) -> np.random.Generator:
    """Generator of block ``block``: a child of ``SeedSequence(seed)`` (deterministic)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(block,)))


def _block(design: MarketsDesign, rows: int, first_id: int, rng: np.random.Generator) -> dict:
    """Columns of one block of ``rows`` customers (ids from ``first_id``), as numpy arrays."""
    t = design.params
    cum = np.cumsum(design.cell_share.to_numpy())
    cum /= cum[-1]
    cell = np.minimum(np.searchsorted(cum, rng.random(rows), side="right"), len(cum) - 1)
    n_r, n_s, n_b = (len(design.levels[g]) for g in GROUPS[1:])
    band, rest = cell % n_b, cell // n_b
    seg, rest = rest % n_s, rest // n_s
    reg, prod = rest % n_r, rest // n_r

    treat = rng.random(rows) < design.treat_share
    tenure = rng.gamma(_TENURE_SHAPE, _TENURE_SCALE, size=rows)
    h = _TENURE_EFFECT * (_TENURE_MEAN_EXP - np.exp(-tenure / _TENURE_TAU))
    M = t["M"][cell]
    L = np.exp(rng.standard_normal(rows) * _MARGIN_SIGMA - 0.5 * _MARGIN_SIGMA**2)
    V = np.exp(rng.standard_normal(rows) * _SPEND_SIGMA - 0.5 * _SPEND_SIGMA**2)
    margin = M * L
    prior_spend = _SPEND_RATIO * margin * V

    p = t["p0"][cell] + h + np.where(treat, t["lift"][cell], 0.0)
    renewed = rng.random(rows) < p
    gross = np.where(renewed, margin * np.where(treat, 1.0 + t["upsell"][cell], 1.0), 0.0)
    contact = np.where(
        treat, t["contact"][cell] * rng.gamma(_CONTACT_SHAPE, 1.0 / _CONTACT_SHAPE, rows), 0.0
    )
    discount = np.where(treat & renewed, t["discount"][cell] * margin, 0.0)
    lam = t["rate"][cell] * np.where(treat, np.exp(t["ticket_effect"][cell]), 1.0)
    tickets = rng.poisson(lam)
    annoyed = rng.random(rows) < t["annoy0"][cell] + np.where(treat, t["annoy_lift"][cell], 0.0)
    net = (
        gross
        - contact
        - discount
        - SUPPORT_TICKET_COST * tickets
        - ANNOYANCE_PENALTY * annoyed.astype(np.float64)
    )
    f4 = np.float32
    return {
        "customer_id": np.arange(first_id, first_id + rows, dtype=np.int64),
        **{
            g: codes.astype(np.int8 if len(design.levels[g]) < 128 else np.int32)
            for g, codes in zip(GROUPS, (prod, reg, seg, band), strict=True)
        },
        "tenure_months": tenure.astype(f4),
        "prior_spend": prior_spend.astype(f4),
        "treatment": treat.astype(np.int8),
        "renewed": renewed.astype(np.int8),
        "gross_margin": gross.astype(f4),
        "contact_cost": contact.astype(f4),
        "discount_cost": discount.astype(f4),
        "support_tickets": tickets.astype(np.int16),
        "annoyance": annoyed.astype(np.int8),
        "net_value": net.astype(f4),
    }


def _frame(design: MarketsDesign, cols: dict) -> pd.DataFrame:
    cols = dict(cols)
    for g in GROUPS:
        cols[g] = pd.Categorical.from_codes(cols[g], categories=list(design.levels[g]))
    return pd.DataFrame(cols, copy=False)


def _blocks(n: int, chunk_rows: int) -> Iterator[tuple[int, int, int]]:
    """(block index, rows, first customer id) of the blocks that make up ``n`` rows."""
    if int(n) != n or n < 1:
        raise ValueError(f"n={n!r}: give a positive whole number of customers")
    if int(chunk_rows) != chunk_rows or chunk_rows < 1:
        raise ValueError(f"chunk_rows={chunk_rows!r}: give a positive whole number of rows")
    n, chunk_rows = int(n), int(chunk_rows)
    for k, start in enumerate(range(0, n, chunk_rows)):
        yield k, min(chunk_rows, n - start), start + 1


def simulate_markets(
    products: Sequence[str] = PRODUCTS,
    regions: Sequence[str] = REGIONS,
    segments: Sequence[str] = SEGMENTS,
    risk_bands: Sequence[str] = RISK_BANDS,
    *,
    n: int = 1_000_000,
    seed: int = 2027,
    treat_share: float = 0.5,
    product_shares: Sequence[float] | None = None,
    region_shares: Sequence[float] | None = None,
    segment_shares: Sequence[float] | None = None,
    effect_seed: int = DEFAULT_EFFECT_SEED,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Simulation:
    """Simulate a multi-market retention-outreach experiment with known cell effects.

    Parameters
    ----------
    products, regions, segments, risk_bands:
        Level names of the four grouping factors; every combination is a cell (135 by default).
        Default levels have hand-set parameters (see the module docstring); other names get
        parameters drawn deterministically from ``effect_seed`` and the name. Risk bands are
        drawn given the segment.
    n:
        Number of randomized customers.
    seed:
        Seed of the unit-level draws. Same seed (and ``chunk_rows``), same data.
    treat_share:
        Probability of assignment to outreach (Bernoulli randomization).
    product_shares, region_shares, segment_shares:
        Population shares per level (normalised); defaults are the default levels' shares (the
        Nordics hold 1.5% of customers) and equal shares for other names.
    effect_seed:
        Seed of the true effects' random parts (product x region interaction, cell noise). Kept
        apart from ``seed`` so that replicate data sets share one truth.
    chunk_rows:
        Rows are generated in blocks of this size, block ``k`` from a child of
        ``SeedSequence(seed)``; :func:`write_markets_parquet` with the same ``chunk_rows`` writes
        exactly these rows.

    Returns
    -------
    Simulation
        ``data``: one row per customer: ``customer_id``; ``product``, ``region``, ``segment``,
        ``risk_band`` (pandas categoricals, levels in the given order); covariates
        ``tenure_months`` and ``prior_spend`` (dollars over the previous 90 days); ``treatment``
        (0/1, int8); outcomes ``net_value``, ``gross_margin``, ``contact_cost``, ``discount_cost``
        (float32 dollars per customer over 90 days), ``renewed``, ``annoyance`` (0/1, int8) and
        ``support_tickets`` (int16 counts). ``truth``: one row per cell (all cells of the grid,
        indexed by ``product, region, segment, risk_band``), the exact expected effect of
        assignment per customer of the cell on every outcome; ``truth.attrs["cell_share"]`` maps
        each cell (a tuple of labels) to its population share. ``spec``: :func:`markets_spec`.
    """
    design = markets_design(
        products,
        regions,
        segments,
        risk_bands,
        treat_share=treat_share,
        product_shares=product_shares,
        region_shares=region_shares,
        segment_shares=segment_shares,
        effect_seed=effect_seed,
    )
    parts = [
        _block(design, rows, first, _block_rng(seed, k))
        for k, rows, first in _blocks(n, chunk_rows)
    ]
    cols = (
        parts[0]
        if len(parts) == 1
        else {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
    )
    return Simulation(data=_frame(design, cols), truth=_truth(design), spec=markets_spec())


def _truth(design: MarketsDesign) -> pd.DataFrame:
    truth = design.truth.copy()
    truth.attrs["cell_share"] = dict(design.cell_share.items())
    return truth


@dataclass(frozen=True)
class MarketsParquet:
    """What :func:`write_markets_parquet` wrote: the file and its known truth (no rows in memory).

    Attributes
    ----------
    path:
        The Parquet file.
    n, seed, chunk_rows:
        Rows written, the seed and the block size (one row group per block).
    truth, spec:
        As in the :class:`~bayesdecide.simulate.Simulation` of :func:`simulate_markets`.
    cell_share:
        Population share per cell, indexed like ``truth``.
    """

    path: Path
    n: int
    seed: int
    chunk_rows: int
    truth: pd.DataFrame
    spec: ExperimentSpec
    cell_share: pd.Series


def write_markets_parquet(
    path: str | Path,
    n: int,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    seed: int = 2027,
    compression: str = "zstd",
    **design: Any,
) -> MarketsParquet:
    """Stream :func:`simulate_markets` data to one Parquet file, block by block.

    Memory is bounded by one block of ``chunk_rows`` rows (about 350 bytes per row while
    generating: some 0.35 GB above the interpreter for the default 1 million rows), so files far
    larger than memory can be written (about 1.5 million rows per second with zstd, about 22 bytes
    per row on disk). The rows are exactly those of
    ``simulate_markets(n=n, seed=seed, chunk_rows=chunk_rows, **design)``; group columns are
    dictionary-encoded strings (DuckDB reads them as VARCHAR).

    Parameters
    ----------
    path:
        Output file (overwritten; parent folders are created).
    n, chunk_rows, seed:
        As in :func:`simulate_markets`.
    compression:
        Parquet codec (``"zstd"``, ``"snappy"``, ``"none"`` ...).
    **design:
        Other keyword arguments of :func:`simulate_markets` (levels, shares, ``treat_share``,
        ``effect_seed``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = markets_design(**design)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        for k, rows, first in _blocks(n, chunk_rows):
            table = pa.Table.from_pandas(
                _frame(d, _block(d, rows, first, _block_rng(seed, k))), preserve_index=False
            )
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression=compression)
            writer.write_table(table, row_group_size=rows)
    finally:
        if writer is not None:
            writer.close()
    return MarketsParquet(
        path=path,
        n=int(n),
        seed=int(seed),
        chunk_rows=int(chunk_rows),
        truth=_truth(d),
        spec=markets_spec(),
        cell_share=d.cell_share,
    )


__all__ = [
    "GROUPS",
    "MARKETS_COVARIATES",
    "MARKETS_OUTCOMES",
    "MarketsDesign",
    "MarketsParquet",
    "VALUE_WEIGHTS",
    "markets_design",
    "markets_spec",
    "simulate_markets",
    "write_markets_parquet",
]
