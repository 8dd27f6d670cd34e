"""Three arms against the truth: the retention simulator's second offer, where the best arm differs
by risk band (email in low and medium risk, outreach in high risk).

The recovery test runs the data side and the decision layer on the posterior under a flat prior
(each cell's joint normal N(effect, effect_cov) over arms and outcomes: no pooling, no sampling),
so it checks the EffectTable, the optimal arm per cell and P(best arm) against the known truth.
The end-to-end test fits the hierarchical model itself (real sampling, marked slow: every
(arm, outcome) pair its own hierarchy, :mod:`bayesdecide.model.arms`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bayesdecide import cell_effects, simulate_retention
from bayesdecide.card import load_card
from bayesdecide.decide import Decision

from ..fakes import OFFERS_CARD, FakeFit

BEST = {"Low risk": "email", "Medium risk": "email", "High risk": "outreach"}


@pytest.fixture(scope="module")
def card():
    return load_card(OFFERS_CARD)


@pytest.fixture(scope="module")
def sim(card):
    return simulate_retention(**card.data.args)


@pytest.fixture(scope="module")
def cells(card, sim):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return card.cells(sim.data)


def true_values(card, sim) -> pd.DataFrame:
    """Per customer, the true net value (dollars) of each choice under the card's value model."""
    weights = card.value_model().weights
    out = pd.DataFrame(
        {
            arm: sum(w * sim.truth[arm][k] for k, w in weights.items())
            for arm in ("outreach", "email")
        }
    )
    return out.assign(none=0.0)


def true_launch_value(decision: Decision, policy: str, cell_truth: pd.DataFrame) -> float:
    """True launch value (dollars) of a policy: its assignment scored with the true cell values
    at the launch mix, minus the card's fixed cost (share-scaled with its floor)."""
    launch = decision.launch
    assign = decision.policy_assignment(policy)
    cells = [str(c) for c in launch.cells]
    per = np.array([cell_truth.loc[c, assign.get(c, "none")] for c in cells])
    treated = launch.cell_mix[[c in assign for c in cells]].sum()
    pop = launch.population
    cost = pop.fixed_cost * float(pop.share_scale(treated)) if assign else 0.0
    return pop.n_eligible * float(launch.cell_mix @ per) - cost


def cell_truth_of(sim, values: pd.DataFrame) -> pd.DataFrame:
    key = sim.data[["segment", "region", "risk_band"]].astype(str).agg(" | ".join, axis=1)
    return values.groupby(key.to_numpy()).mean()


def check_recovery(card, sim, decision: Decision, min_prob: float, min_ratio: float) -> None:
    values = true_values(card, sim)
    by_band = values.groupby(sim.data["risk_band"].to_numpy()).mean()
    assert by_band.idxmax(axis=1).to_dict() == BEST  # the truth's best arm differs by band
    levels = decision.best_arm_levels("risk_band")
    found = levels[levels["best"]].set_index("level")
    assert found["choice"].to_dict() == BEST
    assert (found["prob_best"] >= min_prob).all(), found["prob_best"]
    # the recommendation, scored with the truth, is close to the best assignment the truth allows
    cell_truth = cell_truth_of(sim, values)
    best_assignment = cell_truth.idxmax(axis=1)
    rec = decision.recommendation.policy
    assert rec is not None
    achieved = true_launch_value(decision, rec, cell_truth)
    ceiling = true_launch_value(
        decision, "email_low_and_medium_risk_outreach_high_risk", cell_truth
    )
    # that card policy is the truth's optimum: the best arm (or none) per cell
    named = decision.policy_assignment("email_low_and_medium_risk_outreach_high_risk")
    assert all(best_assignment[c] == a for c, a in named.items())
    assert achieved >= min_ratio * ceiling, (achieved, ceiling)


def test_best_arm_by_risk_band_is_recovered_flat_prior(card, sim, cells):
    fit = FakeFit.flat_prior(cell_effects(cells), draws=1000, seed=0)
    decision = card.decide(fit, cells=cells)
    assert decision.arms == ["outreach", "email"]
    check_recovery(card, sim, decision, min_prob=0.95, min_ratio=0.95)
    # and P(best) per cell puts the truth's best arm first in most of the customers' cells
    values = cell_truth_of(sim, true_values(card, sim))
    table = decision.best_arm_cells()
    chosen = table[table["best"]].set_index("cell")
    agree = chosen["choice"] == values.loc[chosen.index].idxmax(axis=1)
    assert chosen.loc[agree, "share"].sum() > 0.75  # no pooling: small cells are noisy


@pytest.mark.slow
def test_three_arm_card_end_to_end_with_the_real_fit(card, sim, cells, tmp_path):
    """The three-arm card, fitted and decided, with its memo; then recovery against the truth."""
    from bayesdecide.run import run_card

    fit = card.fit(cells, draws=1000, tune=1000, chains=4, seed=5, progressbar=False)
    assert fit.diagnostics["ok"], fit.diagnostics  # the memo recommends only on a clean fit
    assert fit.tau.dims == ("chain", "draw", "cell", "treatment_arm", "outcome")
    result = run_card(card, tmp_path, fit=fit, progress=None)
    md = result.memo_md.read_text()
    assert "### Which arm, for whom" in md and result.summary.arms is not None
    assert "best_arm" in result.figures
    decision = card.decide(fit, cells=cells)
    check_recovery(card, sim, decision, min_prob=0.8, min_ratio=0.9)
