"""Several experiments as levels of one factor: combined cell statistics and effect tables, and one
experiment's cells selected back out."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bayesdecide import cell_effects, cell_stats, simulate_retention
from bayesdecide.data.combine import (
    combine_cells,
    combine_effects,
    experiment_levels,
    experiment_view,
    without_factor,
)
from bayesdecide.errors import DataValidationError, SpecError
from bayesdecide.model.summary import table_from_summary

from ..fakes import FakeFit


@pytest.fixture(scope="module")
def waves():
    out = {}
    for label, seed, n in (("w1", 808, 8000), ("w2", 909, 3000)):
        sim = simulate_retention(seed=seed, n=n)
        spec = replace(sim.spec, groups=("segment", "risk_band"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[label] = cell_stats(sim.data, spec, single_arm_cells="keep")
    return out


def test_combined_cells_keep_every_experiments_sums(waves):
    cc = combine_cells(waves, "experiment")
    assert cc.spec.groups == ("experiment", "segment", "risk_band")
    assert cc.ds.attrs["factors"] == ["experiment", "segment", "risk_band"]
    assert cc.ds.sizes["cell"] == sum(w.ds.sizes["cell"] for w in waves.values())
    assert cc.n_units == sum(w.n_units for w in waves.values())
    assert experiment_levels(cc.ds, "experiment") == ["w1", "w2"]
    one = cc.ds.sel(cell="w2 | SMB | Low risk")
    np.testing.assert_array_equal(
        one["sum_y"].values, waves["w2"].ds["sum_y"].sel(cell="SMB | Low risk").values
    )
    # the combination is an ordinary CellStats: effects per cell of every experiment
    eff = cell_effects(cc)
    assert set(eff["experiment"].values) == {"w1", "w2"}


def test_factor_order_follows_the_hierarchy(waves):
    cc = combine_cells(waves, "wave", ["segment", "wave", "risk_band"])
    assert cc.ds["cell"].values[0] == "Enterprise | w1 | High risk"
    with pytest.raises(SpecError, match="plus 'wave'"):
        combine_cells(waves, "wave", ["segment", "risk_band"])


def test_experiments_measured_differently_are_refused(waves):
    other = replace(waves["w2"], spec=replace(waves["w2"].spec, covariates=("seats",)))
    with pytest.raises(DataValidationError, match="another spec"):
        combine_cells({"w1": waves["w1"], "w2": other}, "experiment")


def test_a_label_twice_is_refused(waves):
    e1 = combine_effects({"w1": cell_effects(waves["w1"])}, "experiment")
    with pytest.raises(SpecError, match="used twice"):
        combine_effects({"a": e1, "w1": cell_effects(waves["w2"])}, "experiment")


def _published(n: bool = True) -> pd.DataFrame:
    rows = [
        {"segment": "SMB", "risk_band": "High risk", "outcome": "gross_margin", "estimate": 20.0},
        {"segment": "SMB", "risk_band": "High risk", "outcome": "renewed", "estimate": 0.2},
        {"segment": "SMB", "risk_band": "Low risk", "outcome": "gross_margin", "estimate": -1.0},
    ]
    frame = pd.DataFrame(rows).assign(std_error=[4.0, 0.05, 1.0])
    return frame.assign(n=[400, 400, 3000]) if n else frame


def test_published_estimates_join_as_another_experiment(waves):
    table = table_from_summary(
        _published(),
        estimate="estimate",
        std_error="std_error",
        groups=["segment", "risk_band"],
        outcome="outcome",
        n="n",
    )
    combined = combine_effects({"w1": cell_effects(waves["w1"]), "old": table}, "experiment")
    old = combined.sel(cell=["old | SMB | High risk", "old | SMB | Low risk"])
    assert old["effect"].sel(outcome="gross_margin").values.tolist() == [20.0, -1.0]
    # outcomes a study did not report are missing there, not zero
    assert np.isnan(old["effect"].sel(outcome="annoyance").values).all()
    assert np.isnan(old["control_mean"].values).all()
    assert old["observed"].values.all()
    assert old["n_control"].values.tolist() == [200.0, 1500.0]
    assert "slopes" not in combined  # not per cell
    assert combined.attrs["experiments"] == ["w1", "old"]


def test_published_estimates_need_unit_counts(waves):
    table = table_from_summary(
        _published(n=False), estimate="estimate", std_error="std_error",
        groups=["segment", "risk_band"], outcome="outcome",
    )  # fmt: skip
    with pytest.raises(DataValidationError, match="no unit counts"):
        combine_effects({"w1": cell_effects(waves["w1"]), "old": table}, "experiment")


def test_an_outcome_the_others_do_not_measure_is_refused(waves):
    bad = _published().replace({"outcome": {"renewed": "churned"}})
    table = table_from_summary(
        bad, estimate="estimate", std_error="std_error", groups=["segment", "risk_band"],
        outcome="outcome", n="n",
    )  # fmt: skip
    with pytest.raises(DataValidationError, match="churned"):
        combine_effects({"w1": cell_effects(waves["w1"]), "old": table}, "experiment")


def test_experiment_view_selects_one_experiment_with_its_own_mix(waves):
    fit = FakeFit.from_cells(combine_cells(waves, "experiment"), draws=20)
    view = experiment_view(fit, "experiment", "w2")
    assert set(view.tau["experiment"].values) == {"w2"}
    assert float(view.cell_share.sum()) == pytest.approx(1.0)
    n = waves["w2"].ds["n"].sum("arm")
    np.testing.assert_allclose(view.cell_share.values, (n / n.sum()).values)
    assert view.effects.sizes["cell"] == waves["w2"].ds.sizes["cell"]
    with pytest.raises(SpecError, match="no cells of experiment = 'w3'"):
        experiment_view(fit, "experiment", "w3")


def test_without_factor(waves):
    spec = combine_cells(waves, "experiment").spec
    assert without_factor(spec, "experiment").groups == ("segment", "risk_band")
