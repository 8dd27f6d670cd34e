"""The operating loop against the truth (real fits, slow): a run of the loop card, a simulated
rollout with a known transport factor and another mix, and the update's posterior multiplier."""

from __future__ import annotations

import json
import warnings

import pytest

import bayesdecide as bd
from bayesdecide.run.updating import update_run
from bayesdecide.simulate.rollout import simulate_retention_rollout

from ..fakes import ROOT

LOOP_CARD = ROOT / "models" / "retention_loop.toml"
TRUE_TRANSPORT = 0.7
# The launch reaches more high-risk customers than the experiment (3% high risk there).
MIX = {"risk_band": {"Low risk": 0.3, "Medium risk": 0.5, "High risk": 0.2}}


@pytest.mark.slow
def test_update_recovers_the_true_transport_factor(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = bd.run_card(
            LOOP_CARD, tmp_path, draws=1000, tune=1000, chains=2, progress=None,
            progressbar=False,
        )  # fmt: skip
        rollout = simulate_retention_rollout(TRUE_TRANSPORT, 60_000, mix=MIX, seed=2027)
        path = tmp_path / "rollout.parquet"
        rollout.data.to_parquet(path)
        upd = update_run(run.folder, path, progress=None, progressbar=False)
    truth = rollout.true_transport(["gross_margin"])
    assert truth == pytest.approx(TRUE_TRANSPORT)
    info = json.loads((upd.folder / "update.json").read_text())
    t = info["transport"]["summary"]
    print(
        f"true transport {truth:.3f}; posterior mean {t['mean']:.3f}, "
        f"{t['ci_prob']:.0%} interval [{t['lower']:.3f}, {t['upper']:.3f}], "
        f"P(m < 1) = {t['prob_below_1']:.3f}"
    )
    assert t["ci_prob"] == 0.90
    assert t["lower"] <= truth <= t["upper"]
    # the read is informative: it says the launch kept less than the experiment's benefit
    assert t["prob_below_1"] > 0.8 and t["upper"] - t["lower"] < 0.6
    # the sampler converged on the joint fit
    assert upd.summary.diagnostics["max_rhat"] < 1.05
    # the decision moved the way the fade says: treating everyone is worth less than before
    before = run.summary.policies["treat_all"].expected_value
    after = upd.summary.policies["treat_all"].expected_value
    assert after < before
    # the update's summary lists the priors its own fit used (the experiment factor's included)
    assert any(k.startswith("sigma_experiment[") for k in upd.summary.priors), upd.summary.priors
