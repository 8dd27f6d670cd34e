"""Cross-validation by level: an outlying level is flagged, ordinary ones are not."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import bayesdecide as bd
from bayesdecide.errors import SpecError
from bayesdecide.validate import PIT_BOUNDS, cross_validate_levels


def _table(outlier_shift: float) -> xr.Dataset:
    """6 regions x 3 segments, one outcome; region R5's effect shifted by ``outlier_shift``."""
    rng = np.random.default_rng(4)
    regions, segments = [f"R{i}" for i in range(6)], ["s0", "s1", "s2"]
    cells, reg, seg = [], [], []
    for r in regions:
        for s in segments:
            cells.append(f"{r} | {s}")
            reg.append(r)
            seg.append(s)
    u_region = rng.normal(0, 0.3, len(regions))
    u_region[-1] += outlier_shift
    truth = 1.0 + u_region[[regions.index(r) for r in reg]] + np.array([0.0, 0.4, -0.4] * 6)
    n = np.full(len(cells), 4000.0)
    se = 2.0 / np.sqrt(n / 2)
    effect = truth + se * rng.standard_normal(len(cells))
    return xr.Dataset(
        {
            "effect": (("cell", "outcome"), effect[:, None]),
            "effect_cov": (("cell", "outcome", "outcome_b"), (se**2)[:, None, None]),
            "n_control": (("cell",), n / 2),
            "n_treatment": (("cell",), n / 2),
            "observed": (("cell",), np.ones(len(cells), bool)),
        },
        coords={
            "cell": cells,
            "outcome": ["y"],
            "outcome_b": ["y"],
            "region": ("cell", reg),
            "segment": ("cell", seg),
        },
        attrs={"factors": ["region", "segment"]},
    )


def _fit(table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bd.fit(table, draws=200, tune=200, chains=2, seed=1, progressbar=False)


def test_an_outlying_region_is_surprising_and_the_others_are_not():
    result = cross_validate_levels(_table(outlier_shift=4.0), "region", _fit, levels=["R0", "R5"])
    assert list(result["level"]) == ["R0", "R5"]
    r0, r5 = result.set_index("level").loc["R0"], result.set_index("level").loc["R5"]
    assert r5["surprising"] and r5["pit"] > PIT_BOUNDS[1] and not r5["covered"]
    assert not r0["surprising"] and r0["covered"]
    assert r5["width"] > 0 and r5["units"] == 12000
    assert abs(r0["estimate"] - r0["mean"]) < 3 * r0["sd"]


def test_bad_requests_name_the_problem():
    table = _table(0.0)
    with pytest.raises(SpecError, match="not a grouping column"):
        cross_validate_levels(table, "country", _fit)
    with pytest.raises(SpecError, match="not in the data"):
        cross_validate_levels(table, "region", _fit, levels=["Mars"])
    with pytest.raises(SpecError, match="too few"):
        cross_validate_levels(table.isel(cell=slice(0, 6)), "region", _fit)
