"""Post-launch updating: `bayesdecide update RUN --data ROLLOUT` (fake fits, no sampling), the
transport multiplier's estimand on hand-built draws, and stop rules."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import bayesdecide as bd
from bayesdecide.cli import EXIT_OK, EXIT_USAGE, main
from bayesdecide.run.summary import read_summary
from bayesdecide.run.transport import (
    benefit_loadings,
    transport_draws,
    transport_tau,
    transported_view,
)
from bayesdecide.simulate.rollout import simulate_retention_rollout

from ..fakes import ROOT, FakeFit

LOOP_CARD = ROOT / "models" / "retention_loop.toml"
MIX = {"risk_band": {"Low risk": 0.3, "Medium risk": 0.5, "High risk": 0.2}}


@pytest.fixture(scope="module")
def fake_update():
    """The run, re-render and update stages with fake fits (no sampling), for the module."""
    from bayesdecide.run import pipeline, rerendering, updating

    def fit_cells(cells, card, settings, progressbar):
        return FakeFit.from_cells(cells, draws=settings["draws"], chains=settings["chains"])

    def fit_table(table, card, factors, settings, progressbar):
        return FakeFit.from_effects(table, draws=settings["draws"], chains=settings["chains"])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "fit_model", fit_cells)
        mp.setattr(rerendering, "load_fit", FakeFit.load)
        mp.setattr(updating, "fit_model", fit_table)
        mp.setattr(updating, "load_fit", FakeFit.load)
        yield updating


@pytest.fixture(scope="module")
def base_run(fake_update, tmp_path_factory):
    """One fake run of the loop card, shared by the tests that do not change the card."""
    return _run(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def rollout_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rollout") / "rollout.parquet"
    simulate_retention_rollout(0.7, 20_000, mix=MIX, seed=5).data.to_parquet(path)
    return path


def _run(tmp_path: Path, card: Path = LOOP_CARD) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bd.run_card(card, tmp_path / "runs", quick=True, progress=None).folder


def test_update_end_to_end(fake_update, base_run, rollout_file, capsys):
    run = base_run
    assert main(["update", str(run), "--data", str(rollout_file)]) == EXIT_OK
    out, err = capsys.readouterr()
    folder = Path(out.strip().splitlines()[-1])
    assert folder.parent == run.parent and folder.name.startswith("retention_loop-update-")
    assert "[8/8]" in err and "registered" in err
    for name in ("memo.md", "memo.html", "summary.json", "update.json", "fit.nc", "card.toml",
                 "lineage.json", "tables/transport_multiplier.csv", "tables/decision_change.csv",
                 "tables/stop_rules.csv", "figures/transport_multiplier.png"):  # fmt: skip
        assert (folder / name).is_file(), name
    info = json.loads((folder / "update.json").read_text())
    assert info["factor"] == "experiment" and info["reference"] == "experiment"
    assert info["levels"] == ["experiment", "rollout"] and info["holdout_share"] == 0.1
    t = info["transport"]["summary"]
    assert t["lower"] < t["mean"] < t["upper"] and 0 <= t["prob_below_1"] <= 1
    assert info["transport"]["assumed"] == 1.0 and info["transport"]["outcomes"] == ["gross_margin"]
    # the rollout read 20,000 customers, ~10% of them in the holdout
    r = info["rollout_data"]
    assert r["n_units"] == 20_000 and 1_700 < r["n_holdout"] < 2_300
    s = read_summary(folder / "summary.json")
    assert s.run.parent == str(run.resolve())
    assert s.hierarchy.factors == ["experiment", "risk_band"]
    assert s.experiment.assignment_share == pytest.approx(0.9)
    assert s.settings.transport_multiplier == 1.0  # the posterior replaces the assumption
    assert {c.name for c in s.checks.results} >= {"Sample ratio mismatch"}
    assert [x["name"] for x in info["stop_rules"]] == ["Annoyance", "Support load", "Transport"]
    transport_rule = info["stop_rules"][2]
    assert transport_rule["threshold_source"].startswith("break-even")
    memo = (folder / "memo.md").read_text()
    assert "Post-launch update" in memo and "Earlier run and update side by side" in memo
    assert f"Earlier run {run.name}" in memo and "Stop rules on the rollout" in memo
    assert "## The updated decision" in memo
    # registered as an update of the run
    rec = bd.registry(run.parent / "registry.duckdb").loc[folder.name]
    assert rec["kind"] == "update" and rec["parent_run"] == run.name
    assert rec["experiments"] == ["experiment", "rollout"]
    assert rec["transport"]["mean"] == pytest.approx(t["mean"])


def test_decision_after_update_uses_the_multiplier_draw_by_draw(
    fake_update, base_run, rollout_file
):
    """The update's launch values equal the decision rebuilt by hand from the saved fit."""
    from bayesdecide.card import load_card
    from bayesdecide.data.combine import experiment_view
    from bayesdecide.decide import Decision

    res = fake_update.update_run(base_run, rollout_file, progress=None)
    fit = FakeFit.load(res.folder / "fit.nc")
    card = load_card(LOOP_CARD)
    view = transported_view(fit, "experiment", "experiment", "rollout", {"gross_margin": 1.0})
    settings = card.decision_settings().with_changes(transport_multiplier=1.0)
    by_hand = Decision.from_fit(view, settings).policy_table()["expected_value"]
    for p, row in res.summary.policies.items():
        assert row.expected_value == pytest.approx(float(by_hand[p]))
    # and they differ from scaling nothing: the multiplier moved the values
    plain = Decision.from_fit(
        experiment_view(fit, "experiment", "experiment"), settings
    ).policy_table()["expected_value"]
    assert not np.allclose(plain.to_numpy(), by_hand.to_numpy())


def test_a_memo_of_an_update_keeps_its_multiplier(fake_update, base_run, rollout_file):
    from bayesdecide.run.rerendering import rerender

    upd = fake_update.update_run(base_run, rollout_file, progress=None)
    same = rerender(upd.folder, {"fixed_cost": 280000.0}, progress=None)
    for p, row in upd.summary.policies.items():
        assert same.summary.policies[p].expected_value == pytest.approx(row.expected_value)
    assert same.summary.settings.transport_multiplier == 1.0
    assert same.summary.experiment.assignment_share == pytest.approx(0.9)
    assert same.record.kind == "memo" and same.record.parent_run == upd.folder.name


def test_a_second_update_adds_another_level(fake_update, base_run, rollout_file):
    first = fake_update.update_run(base_run, rollout_file, progress=None)
    second = fake_update.update_run(first.folder, rollout_file, progress=None)
    info = json.loads((second.folder / "update.json").read_text())
    assert info["levels"] == ["experiment", "rollout", "rollout-2"]
    assert info["reference"] == "experiment" and info["parent_run"] == first.folder.name
    with pytest.raises(bd.SpecError, match="already a level"):
        fake_update.update_run(first.folder, rollout_file, label="rollout", progress=None)


def test_update_without_a_holdout_share_is_refused(fake_update, rollout_file, tmp_path, capsys):
    card = tmp_path / "card.toml"
    card.write_text(LOOP_CARD.read_text().replace("holdout_share = 0.10\n", ""))
    run = _run(tmp_path, card)
    assert main(["update", str(run), "--data", str(rollout_file), "--quiet"]) == EXIT_USAGE
    assert "holdout_share" in capsys.readouterr().err


def test_rollout_data_that_do_not_match_the_card_is_a_data_error(
    fake_update, base_run, tmp_path, capsys
):
    bad = tmp_path / "bad.parquet"
    simulate_retention_rollout(0.7, 500).data.drop(columns=["annoyance"]).to_parquet(bad)
    assert main(["update", str(base_run), "--data", str(bad), "--quiet"]) == 3
    assert "annoyance" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the estimand on hand-built draws
# ---------------------------------------------------------------------------------------------


class _Fit:
    """A fit-like object: tau (chain, draw, cell, outcome) with factor coords, unit counts."""

    def __init__(self, tau: np.ndarray, cells: list[tuple[str, str]], n: list[float]):
        names = [f"{e} | {g}" for e, g in cells]
        self.tau = xr.DataArray(
            tau,
            dims=("chain", "draw", "cell", "outcome"),
            coords={
                "cell": names,
                "outcome": ["gross", "cost", "net"],
                "experiment": ("cell", [e for e, _ in cells]),
                "band": ("cell", [g for _, g in cells]),
            },
        )
        half = np.asarray(n, dtype=float) / 2
        self.effects = xr.Dataset(
            {"n_control": ("cell", half), "n_treatment": ("cell", half)},
            coords={"cell": names},
        )
        self.cell_share = xr.DataArray(half / half.sum(), dims="cell", coords={"cell": names})
        self.diagnostics = {"ok": True}


def test_multiplier_is_the_mix_weighted_ratio_per_draw():
    cells = [("exp", "a"), ("exp", "b"), ("roll", "a"), ("roll", "b")]
    gross = np.array([[[10.0, 30.0, 6.0, 24.0], [10.0, 20.0, 9.0, 10.0]]])  # (1, 2 draws, 4)
    tau = np.stack([gross, np.ones_like(gross), gross - 1.0], axis=-1)
    fit = _Fit(tau, cells, n=[100, 100, 300, 100])  # rollout mix: 3/4 a, 1/4 b
    d = transport_draws(fit, "experiment", "exp", "roll", {"gross": 1.0})
    expected = [
        (0.75 * 6 + 0.25 * 24) / (0.75 * 10 + 0.25 * 30),
        (0.75 * 9 + 0.25 * 10) / (0.75 * 10 + 0.25 * 20),
    ]
    np.testing.assert_allclose(d.multiplier.values.ravel(), expected)
    assert d.mix == {"a": 0.75, "b": 0.25}
    s = d.summary(0.9, threshold=0.72)  # the draws are 0.70 and 0.74
    assert s["mean"] == pytest.approx(np.mean(expected))
    assert s["prob_below_1"] == 1.0 and s["prob_below_threshold"] == 0.5
    # weights scale the benefit but cancel in the ratio
    d2 = transport_draws(fit, "experiment", "exp", "roll", {"gross": 2.0})
    np.testing.assert_allclose(d2.multiplier.values, d.multiplier.values)
    np.testing.assert_allclose(d2.rollout_benefit.values, 2 * d.rollout_benefit.values)


def test_a_rollout_cell_the_experiment_did_not_observe_is_predicted():
    cells = [("exp", "a"), ("roll", "a"), ("roll", "b")]
    gross = np.array([[[10.0, 8.0, 16.0]]])
    tau = np.stack([gross, gross, gross], axis=-1)
    fit = _Fit(tau, cells, n=[100, 100, 100])

    def predict_new(level):
        assert level == {"experiment": "exp"}
        out = fit.tau.isel(cell=[0, 0]).copy()
        out = out.assign_coords(cell=["exp | a", "exp | b"], band=("cell", ["a", "b"]))
        out.values[..., 1, :] = 20.0
        return out

    fit.predict_new = predict_new
    d = transport_draws(fit, "experiment", "exp", "roll", {"gross": 1.0})
    assert d.multiplier.values.item() == pytest.approx((8 + 16) / (10 + 20))


def test_transported_effects_keep_derived_outcomes_consistent():
    """net = gross - cost in the draws stays true after gross is multiplied by m."""
    cells = [("exp", "a"), ("roll", "a")]
    gross = np.array([[[10.0, 7.0]]])
    cost = np.array([[[2.0, 2.0]]])
    tau = np.stack([gross, cost, gross - cost], axis=-1)
    fit = _Fit(tau, cells, n=[10, 10])
    loadings = np.array([[1.0], [0.0], [1.0]])  # net contains gross with weight 1
    d = transport_draws(fit, "experiment", "exp", "roll", {"gross": 1.0})
    out = transport_tau(fit.tau.isel(cell=[0]), d.multiplier, loadings, ("gross",))
    g, c, n = (out.sel(outcome=o).values.item() for o in ("gross", "cost", "net"))
    assert g == pytest.approx(7.0) and c == 2.0 and n == pytest.approx(g - c)


def test_loadings_come_from_the_models_derived_outcomes():
    class Inputs:
        derived = ["net"]
        independent = ["gross", "cost"]
        derive_weights = np.array([[1.0, -1.0]])

    class F:
        inputs = Inputs()

    np.testing.assert_array_equal(
        benefit_loadings(F(), ["gross", "cost", "net"], ["gross"]), [[1.0], [0.0], [1.0]]
    )
    # a fit without a model (a fake) loads only the benefit itself
    np.testing.assert_array_equal(
        benefit_loadings(object(), ["gross", "cost", "net"], ["gross"]), [[1.0], [0.0], [0.0]]
    )


def test_stop_rules_fire_when_the_event_is_probable(fake_update, rollout_file, tmp_path):
    """A threshold below every draw of the rollout's annoyance effect makes the rule fire."""
    card = tmp_path / "card.toml"
    card.write_text(LOOP_CARD.read_text().replace("threshold = 0.015", "threshold = -1.0"))
    run = _run(tmp_path, card)
    res = fake_update.update_run(run, rollout_file, progress=None)
    rules = {
        r["name"]: r for r in json.loads((res.folder / "update.json").read_text())["stop_rules"]
    }
    assert rules["Annoyance"]["probability"] == 1.0 and rules["Annoyance"]["fires"]
    assert rules["Annoyance"]["raw_estimate"] > 0 and rules["Annoyance"]["raw_std_error"] > 0
    assert not rules["Support load"]["fires"]
    assert "**FIRES**" in (res.folder / "memo.md").read_text()


def test_a_sampler_panic_is_a_fit_error_and_leaves_nothing(fake_update, base_run, rollout_file,
                                                           monkeypatch, capsys):  # fmt: skip
    """nutpie's Rust panics are BaseExceptions; the CLI reports them as a failed fit (exit 4)."""

    class PanicException(BaseException):
        pass

    def panics(*args, **kwargs):
        raise PanicException("Logp function returned error")

    monkeypatch.setattr(fake_update, "fit_model", panics)
    before = sorted(base_run.parent.iterdir())
    assert main(["update", str(base_run), "--data", str(rollout_file), "--quiet"]) == 4
    assert "sampler panicked" in capsys.readouterr().err
    assert sorted(base_run.parent.iterdir()) == before


def test_a_rollout_without_a_holdout_is_refused(fake_update, base_run, tmp_path, capsys):
    only_treated = tmp_path / "treated.parquet"
    data = simulate_retention_rollout(0.7, 1_000).data
    data[data.treatment == 1].to_parquet(only_treated)
    assert main(["update", str(base_run), "--data", str(only_treated), "--quiet"]) == 3
    err = capsys.readouterr().err  # the data check names the missing arm (the holdout)
    assert "has no rows for arm(s) [0]" in err


@pytest.mark.parametrize(("parent_tune", "asked"), [(300, None), (2000, 2000)])
def test_the_refit_carries_the_parents_warm_up_only_where_it_was_asked_for(
    fake_update, rollout_file, tmp_path, monkeypatch, parent_tune, asked
):
    """The parent ran nutpie; its 300 steps are nutpie's default and are left to the sampler that
    refits (a fallback to PyMC would otherwise get 300), while a warm-up the run asked for is
    kept."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parent = bd.run_card(
            LOOP_CARD, tmp_path / "runs", quick=True, tune=parent_tune, progress=None
        ).folder
    assert read_summary(parent / "summary.json").run.tune == parent_tune
    seen = []

    def fit_table(table, card, factors, settings, progressbar):
        seen.append(settings["tune"])
        return FakeFit.from_effects(table, draws=settings["draws"], chains=settings["chains"])

    monkeypatch.setattr(fake_update, "fit_model", fit_table)
    assert main(["update", str(parent), "--data", str(rollout_file), "--quiet"]) == EXIT_OK
    assert seen == [asked]
