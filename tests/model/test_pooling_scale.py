"""pooling_scale="auto": each outcome pools as a relative lift exactly when its effects are closer
to additive in the factors on the control-mean scale than on the unit-sd scale."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayesdecide.errors import SpecError
from bayesdecide.model.inputs import additivity_q, build_inputs

# per level of fa: control-mean base, lift, unit sd; of fb: base, lift
A = {
    "a1": (1.0, 0.02, 20.0),
    "a2": (3.0, 0.05, 60.0),
    "a3": (9.0, -0.01, 180.0),
    "a4": (2.0, 0.08, 40.0),
}
B = {"b1": (1.0, 0.00), "b2": (0.5, 0.03), "b3": (2.0, -0.02)}  # base, lift
N = 4000.0  # units per arm and cell


def _table(kind: str) -> xr.Dataset:
    """Effects of two outcomes on a 4 x 3 grid, equal to their truth (no sampling noise) with
    the sampling covariance of 4,000 units per arm.

    ``relative``: lift (additive in the factors) x control mean (multiplicative in them), unit sd
    the same in every cell; ``unit_sd``: an additive effect x a unit sd that varies with ``fa``,
    control mean varying with ``fb`` only. ``negative``: as ``relative`` with one control mean
    below zero (no relative pooling possible)."""
    cells, fa, fb, eff, ctrl, sd = [], [], [], [], [], []
    for a, (base_a, lift_a, sd_a) in A.items():
        for b, (base_b, lift_b) in B.items():
            cells.append(f"{a} | {b}")
            fa.append(a)
            fb.append(b)
            if kind == "unit_sd":
                control, unit_sd = 100.0 * base_b, sd_a
                effect = (lift_a + lift_b) * 100.0 * sd_a
            else:
                control, unit_sd = 100.0 * base_a * base_b, 40.0
                effect = (lift_a + lift_b) * control
            ctrl.append(control)
            sd.append(unit_sd)
            eff.append(effect)
    ctrl_arr = np.array(ctrl)
    if kind == "negative":
        ctrl_arr[0] = -5.0
    var = np.array(sd) ** 2 * (2.0 / N)
    k = 2
    outcomes = ["y0", "y1"]
    return xr.Dataset(
        {
            "effect": (("cell", "outcome"), np.stack([eff, eff], axis=1)),
            "effect_cov": (
                ("cell", "outcome", "outcome_b"),
                np.array([v * (0.5 * np.eye(k) + 0.5) for v in var]),
            ),
            "control_mean": (("cell", "outcome"), np.stack([ctrl_arr, ctrl_arr], axis=1)),
            "control_se": (("cell", "outcome"), np.full((len(cells), k), 0.1)),
            "n_control": (("cell",), np.full(len(cells), N)),
            "n_treatment": (("cell",), np.full(len(cells), N)),
        },
        coords={
            "cell": cells,
            "outcome": outcomes,
            "outcome_b": outcomes,
            "fa": ("cell", fa),
            "fb": ("cell", fb),
        },
        attrs={"factors": ["fa", "fb"]},
    )


def test_auto_pools_relative_lifts_where_they_add_up():
    table = _table("relative")
    auto = build_inputs(table, outcomes=["y0"], derive=False)
    assert auto.pooling_scale == "auto" and auto.relative == ["y0"]
    # on the chosen scale the effects are additive in the factors (up to the scale smoother's
    # slight shrinkage of its level coefficients)
    ctrl = build_inputs(table, outcomes=["y0"], pooling_scale="control_mean", derive=False)
    np.testing.assert_allclose(auto.r, ctrl.r)
    theta = auto.y[:, 0] * auto.unit[0]
    lift = np.array([A[c.split(" | ")[0]][1] + B[c.split(" | ")[1]][1] for c in auto.cells])
    np.testing.assert_allclose(theta / theta[0], lift / lift[0], rtol=0.02)
    # forced unit sd keeps every outcome off the relative scale
    assert (
        build_inputs(table, outcomes=["y0"], pooling_scale="unit_sd", derive=False).relative == []
    )


def test_auto_keeps_the_unit_sd_where_effects_add_up_on_it():
    table = _table("unit_sd")
    auto = build_inputs(table, outcomes=["y0"], derive=False)
    assert auto.relative == []
    forced = build_inputs(table, outcomes=["y0"], pooling_scale="control_mean", derive=False)
    assert forced.relative == ["y0"]
    obs = np.ones((12, 1), bool)
    e = table["effect"].values[:, :1]
    v = table["effect_cov"].values[:, :1, 0]
    q_sd = additivity_q(e, v, obs, auto.r, auto.hierarchy)
    q_ctrl = additivity_q(e, v, obs, forced.r, forced.hierarchy)
    assert q_sd[0] < 1.0 < 100.0 < q_ctrl[0]  # measured: 0.17 and 22,380


def test_no_relative_pooling_without_a_positive_baseline_everywhere():
    table = _table("negative")
    assert build_inputs(table, outcomes=["y0"], derive=False).relative == []
    assert (
        build_inputs(table, outcomes=["y0"], pooling_scale="control_mean", derive=False).relative
        == []
    )


def test_pooling_scale_none_and_unknown():
    table = _table("relative")
    inp = build_inputs(table, outcomes=["y0"], pooling_scale="none", derive=False)
    assert inp.relative == [] and np.all(inp.r == 1.0)
    with pytest.raises(SpecError, match="pooling_scale"):
        build_inputs(table, pooling_scale="lift")
