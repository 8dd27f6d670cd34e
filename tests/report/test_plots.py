"""Every plot renders to a non-trivial PNG from hand-built inputs (no sampling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesdecide.decide import factor_level_effects
from bayesdecide.report import plots


def _png(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    plots.save(fig, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    return path


def test_money_formatter():
    assert plots.money(1_234_567) == "$1.23M"
    assert plots.money(-350_000) == "-$350k"
    assert plots.money(42) == "$42"
    assert plots.money(float("nan")) == "n/a"


def test_effect_plots(fake_fit, tmp_path):
    tau = fake_fit.idata.posterior["tau"]
    t = plots.raw_and_pooled(fake_fit.effects, tau, "net_margin")
    assert len(t) == 27 and t["pooled"].notna().all()
    assert t["raw"].isna().sum() == 1  # the single-arm cell
    _png(
        plots.effects_shrinkage(fake_fit.effects, tau, "net_margin", unit="dollars"), tmp_path, "s"
    )
    _png(plots.effects_shrinkage(fake_fit.effects, tau, "net_margin", max_cells=5), tmp_path, "s2")
    lv = factor_level_effects(
        fake_fit.effects, tau, "net_margin", "risk_band", 0.9, fake_fit.cell_share
    )
    assert lv.loc["Low risk", "raw"] == pytest.approx(-8.9, abs=0.3)  # the seed's subgroup OLS
    assert (lv["lower"] < lv["mean"]).all() and (lv["mean"] < lv["upper"]).all()
    _png(
        plots.effects_by_factor(
            fake_fit.effects, tau, "net_margin", ["risk_band", "segment", "region"]
        ),
        tmp_path,
        "f",
    )


def test_decision_plots(tmp_path):
    rng = np.random.default_rng(0)
    _png(
        plots.value_posterior(rng.normal(2e5, 3e5, 2000), policy="p", large_loss=5e5), tmp_path, "v"
    )
    table = pd.DataFrame(
        {
            "expected_value": [0, 2.5e4, 7.2e5],
            "p10": [0, -1.7e5, 5e5],
            "p90": [0, 2.2e5, 9e5],
            "prob_positive": [0, 0.56, 0.99],
        },
        index=["Treat none", "Treat all", "Targeted"],
    )
    _png(plots.policy_values(table, recommended="Targeted"), tmp_path, "p")
    rows = [
        {
            "rule": r,
            "policy": p,
            "probability": 0.9,
            "passes": True,
            "required": 0.8,
            "comparison": c,
        }
        for r, c in (("Value", ">="), ("Loss", "<="))
        for p in ("A", "B")
    ]
    _png(plots.guardrail_probabilities(rows), tmp_path, "g")
    x = np.linspace(0.4, 1.2, 9)
    curve = pd.DataFrame(
        {"expected_value": 1e6 * (x - 0.8), "p10": 1e6 * (x - 0.9), "p90": 1e6 * (x - 0.7)}, index=x
    )
    _png(
        plots.sensitivity_curves(
            {"transport_multiplier": curve, "annoyance_penalty": curve},
            break_even={"transport_multiplier": {"median": 0.8, "lower": 0.7, "upper": 0.9}},
            current={"transport_multiplier": 1.0},
        ),
        tmp_path,
        "sens",
    )
    regions = ["A", "B", "C"]
    prob = pd.DataFrame(rng.uniform(size=(3, 3)), index=regions, columns=regions)
    _png(plots.region_comparison(prob), tmp_path, "r")
