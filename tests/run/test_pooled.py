"""Cards that pool several experiments ([[data.sources]]): rows and published estimates in one
effect table with an experiment factor, and a decision about one experiment's population."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesdecide as bd
from bayesdecide.card import load_card
from bayesdecide.errors import CardError, DataValidationError

from ..fakes import ROOT, FakeFit

WAVES_CARD = ROOT / "models" / "retention_waves.toml"
LOOP_CARD = ROOT / "models" / "retention_loop.toml"


@pytest.fixture(scope="module")
def card():
    return load_card(WAVES_CARD)


@pytest.fixture(scope="module")
def cells(card):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return card.cells()


def test_the_waves_card_describes_three_experiments(card):
    assert card.pooled and card.experiment_factor == "experiment"
    assert card.experiments == ["2024-study", "2025-main", "2026-pilot"]
    assert card.target_experiment == "2026-pilot"
    assert card.row_spec.groups == ("segment", "risk_band")
    assert card.spec.groups == ("experiment", "segment", "risk_band")
    assert "3 experiments" in card.data.label
    with pytest.raises(CardError, match="card.cells"):
        card.data.load()


def test_rows_of_every_experiment_are_aggregated_and_combined(card, cells):
    assert cells.spec.groups == ("experiment", "segment", "risk_band")
    assert set(cells.ds["experiment"].values) == {"2025-main", "2026-pilot"}
    assert cells.n_units == 42_000 + 3_000
    with pytest.raises(CardError, match="takes no data"):
        card.cells(pd.DataFrame())


def test_published_estimates_join_the_effect_table(card, cells):
    eff = card.effects(cells)
    levels = list(dict.fromkeys(eff["experiment"].values))
    assert sorted(levels) == ["2024-study", "2025-main", "2026-pilot"]
    study = eff.sel(cell=eff["experiment"].values == "2024-study")
    published = pd.read_csv(ROOT / "models" / "published" / "retention_2024_estimates.csv")
    one = published.query("segment == 'SMB' and risk_band == 'High risk'").set_index("outcome")
    cell = study.sel(cell="2024-study | SMB | High risk")
    assert float(cell["effect"].sel(outcome="gross_margin")) == one.loc["gross_margin", "estimate"]
    var = float(cell["effect_cov"].sel(outcome="gross_margin", outcome_b="gross_margin"))
    assert np.sqrt(var) == pytest.approx(one.loc["gross_margin", "std_error"])
    assert float(cell["n_control"] + cell["n_treatment"]) == one.loc["gross_margin", "n"]
    # net margin is not published: missing there, and derived from its components by the model
    assert np.isnan(study["effect"].sel(outcome="net_margin").values).all()


def test_a_pooled_run_decides_about_its_target_experiment(card, tmp_path, monkeypatch):
    from bayesdecide.run import pipeline, rerendering

    def fit_model(cells, card, settings, progressbar):
        return FakeFit.from_effects(card.effects(cells), draws=settings["draws"], chains=2)

    monkeypatch.setattr(pipeline, "fit_model", fit_model)
    monkeypatch.setattr(rerendering, "load_fit", FakeFit.load)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bd.run_card(WAVES_CARD, tmp_path, quick=True, progress=None)
    s = res.summary
    assert s.hierarchy.factors == ["experiment", "segment", "risk_band"]
    # the decision's cells and mix are the 2026 pilot's
    shares = pd.read_csv(res.folder / "tables" / "effects.csv")
    assert not shares.empty
    fit = FakeFit.load(res.folder / "fit.nc")
    assert set(fit.tau["experiment"].values) == {"2024-study", "2025-main", "2026-pilot"}
    view = card.decision_fit(fit)
    assert set(view.tau["experiment"].values) == {"2026-pilot"}
    decision = card.decide(fit)
    for p, row in s.policies.items():
        assert row.expected_value == pytest.approx(
            float(decision.policy_table().loc[p, "expected_value"])
        )
    lineage = json.loads((res.folder / "lineage.json").read_text())
    assert lineage["experiments"] == card.experiments
    assert lineage["decision_experiment"] == "2026-pilot"
    rec = bd.registry(tmp_path / "registry.duckdb").iloc[0]
    assert rec["experiments"] == card.experiments
    # a re-render decides about the same experiment
    again = rerendering.rerender(res.folder, {"fixed_cost": 280000.0}, progress=None)
    for p, row in s.policies.items():
        assert again.summary.policies[p].expected_value == pytest.approx(row.expected_value)


def _card(tmp_path: Path, text: str) -> Path:
    (tmp_path / "published").mkdir(exist_ok=True)
    src = ROOT / "models" / "published" / "retention_2024_estimates.csv"
    (tmp_path / "published" / src.name).write_text(src.read_text())
    path = tmp_path / "card.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ('label = "2026-pilot"', 'label = "2025-main"', "used twice"),
        ('label = "2026-pilot"', 'label = "2026 pilot"', "letters, digits"),
        (
            'factors = ["experiment", "segment", "risk_band"]',
            'factors = ["segment", "risk_band"]',
            "not in hierarchy.factors",
        ),
        (
            'experiment = "2026-pilot"',
            'experiment = "2027"',
            "not a \\[\\[data.sources\\]\\] label",
        ),
        (
            'summary = "published/retention_2024_estimates.csv"',
            'summary = "published/retention_2024_estimates.csv"\nsimulator = "retention"',
            "exactly one of simulator, path",
        ),
        ("[data]\n", '[data]\nsimulator = "retention"\n', "remove data.simulator"),
        (
            'levels = ["2024-study", "2025-main", "2026-pilot"]',
            'levels = ["2024-study", "2025-main"]',
            "not among its declared levels",
        ),
    ],
)
def test_bad_pooled_cards_name_the_key_and_the_fix(tmp_path, old, new, match):
    text = WAVES_CARD.read_text()
    assert old in text
    with pytest.raises(CardError, match=match):
        load_card(_card(tmp_path, text.replace(old, new, 1)))


def test_a_card_with_only_published_estimates_is_refused(tmp_path):
    text = WAVES_CARD.read_text()
    start = text.index('[[data.sources]]\nlabel = "2025-main"')
    end = text.index("[experiment]")
    text = text[:start] + text[end:]
    text = text.replace('experiment = "2026-pilot"\n', "")
    with pytest.raises(CardError, match="no source with rows"):
        load_card(_card(tmp_path, text))


def test_published_estimates_of_a_derived_outcome_are_refused(tmp_path):
    path = _card(tmp_path, WAVES_CARD.read_text())
    csv = tmp_path / "published" / "retention_2024_estimates.csv"
    table = pd.read_csv(csv)
    extra = table[table.outcome == "gross_margin"].assign(outcome="net_margin")
    pd.concat([table, extra]).to_csv(csv, index=False)
    card = load_card(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataValidationError, match="derives exactly from its components"):
            card.effects()


def test_published_estimates_without_unit_counts_are_refused(tmp_path):
    path = _card(tmp_path, WAVES_CARD.read_text())
    csv = tmp_path / "published" / "retention_2024_estimates.csv"
    pd.read_csv(csv).drop(columns=["n"]).to_csv(csv, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataValidationError, match="2024-study"):
            load_card(path).effects()


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ('outcome = "annoyance"\nthreshold = 0.015', "threshold = 0.015", "needs outcome"),
        ('outcome = "annoyance"', 'outcome = "anoyance"', "Did you mean 'annoyance'"),
        (
            'type = "transport_below"',
            'type = "transport_below"\noutcome = "gross_margin"',
            "does not apply",
        ),  # fmt: skip
        (
            'min_prob = 0.8\ndescription = "Stop if annoyance',
            'min_prob = 1.5\ndescription = "Stop if annoyance',
            "min_prob is 1.5",
        ),  # fmt: skip
        ('type = "transport_below"', 'type = "transport_above"', "use one of"),
        ("holdout_share = 0.10", "holdout_share = 1.5", "strictly between 0 and 1"),
    ],
)
def test_bad_stop_rules_name_the_key_and_the_fix(tmp_path, old, new, match):
    text = LOOP_CARD.read_text()
    assert old in text, old
    path = tmp_path / "card.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(CardError, match=match):
        load_card(path)


def test_launch_experiment_needs_pooled_sources(tmp_path):
    text = LOOP_CARD.read_text().replace("[launch]\n", '[launch]\nexperiment = "x"\n', 1)
    path = tmp_path / "card.toml"
    path.write_text(text)
    with pytest.raises(CardError, match="launch.experiment' applies to cards that pool"):
        load_card(path)
