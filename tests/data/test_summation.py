"""Exact order-independent sums: the grids, and the sums cell_stats returns, checked exactly."""

from __future__ import annotations

import math
from fractions import Fraction

import duckdb
import numpy as np
import pandas as pd
import pytest

from bayesdecide import ExperimentSpec, Outcome, cell_stats
from bayesdecide.data.summation import MAX_ABS_VALUE, exponents_for, term_exponent


@pytest.mark.parametrize("max_abs", [1e-90, 3.0e-5, 0.75, 1.0, 4096.0, 123456.789, 1e29])
def test_grid_is_the_finest_that_keeps_terms_in_a_bigint(max_abs):
    e = term_exponent(10**8, max_abs, integer_valued=False)
    assert e is not None
    assert 2.0 ** (e + 61) >= max_abs > 2.0 ** (e + 60)


def test_plain_sums_where_they_are_exact_or_rejected():
    assert term_exponent(1000, 0.0, integer_valued=False) is None  # all zero
    assert term_exponent(1000, math.nan, integer_valued=False) is None  # rejected by validation
    assert term_exponent(1000, math.inf, integer_valued=False) is None
    assert term_exponent(1000, MAX_ABS_VALUE**2 * 4, integer_valued=False) is None
    assert term_exponent(10**6, 1e4, integer_valued=True) is None  # integers: exact in doubles
    assert term_exponent(10**6, 1e10, integer_valued=True) is not None  # 1e16 > 2**53


def test_product_bounds_come_from_the_columns():
    factors = {"sy_0": (0,), "syy_0_1": (0, 1), "sxx_0_0": (2, 2)}
    out = exponents_for(factors, 100, [3.0, 5.0, 0.0], [False, True, False])
    assert out["sy_0"] == term_exponent(100, 3.0, integer_valued=False)
    assert out["syy_0_1"] == term_exponent(100, 15.0 * (1 + 2.0**-50), integer_valued=False)
    assert out["sxx_0_0"] is None


def exact_grid_sum(values: np.ndarray, max_abs: float, n_rows: int) -> float:
    """What the sums must be: each term rounded to the grid (ties to even), summed exactly,
    rounded once."""
    e = term_exponent(n_rows, max_abs, integer_valued=False)
    assert e is not None
    total = sum(round(Fraction(float(v)) / Fraction(2) ** e) for v in values)
    return float(Fraction(total) * Fraction(2) ** e)


def test_cell_stats_sums_are_the_exact_grid_sums_in_any_order():
    rng = np.random.default_rng(4)
    n = 3000
    frame = pd.DataFrame(
        {
            "arm": rng.integers(0, 2, n),
            "y": rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 6, n),
            "x": rng.lognormal(0.0, 3.0, n),
        }
    )
    spec = ExperimentSpec(treatment="arm", outcomes=(Outcome("y"),), covariates=("x",))
    max_y, max_x = frame["y"].abs().max(), frame["x"].max()
    for seed in range(3):
        shuffled = frame.sample(frac=1.0, random_state=seed)
        con = duckdb.connect()
        con.execute(f"SET threads = {1 + 3 * seed}")
        ds = cell_stats(shuffled, spec, connection=con).ds
        for arm, name in enumerate(("control", "treatment")):
            sub = frame[frame["arm"] == arm]
            y, x = sub["y"].to_numpy(), sub["x"].to_numpy()
            sel = ds.sel(cell="all", arm=name)
            assert float(sel["sum_y"].item()) == exact_grid_sum(y, max_y, n)
            assert float(sel["sum_yy"].item()) == exact_grid_sum(
                y * y, max_y * max_y * (1 + 2.0**-50), n
            )
            assert float(sel["sum_xy"].item()) == exact_grid_sum(
                x * y, max_x * max_y * (1 + 2.0**-50), n
            )
            assert float(sel["sum_xx"].item()) == exact_grid_sum(
                x * x, max_x * max_x * (1 + 2.0**-50), n
            )
