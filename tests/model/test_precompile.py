"""Compiling the model's kernels ahead of the first fit (bayesdecide.model.precompile)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

import bayesdecide as bd
from bayesdecide.cli import main
from bayesdecide.model.precompile import compile_kernels, kernels

from .conftest import synthetic_table


def _signatures() -> dict[str, list]:
    return {name: list(d.signatures) for name, d in kernels().items()}


def test_after_compile_kernels_fits_of_other_models_compile_nothing(retention_table):
    """The kernels' argument types do not depend on the model: other factors, interactions,
    outcomes, tails and chain counts reuse what compile_kernels compiled or loaded."""
    ready = compile_kernels()
    assert sorted(ready.compiled + ready.loaded) == sorted(kernels())
    before = _signatures()
    assert all(before.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bd.fit(
            retention_table,
            interactions=[("segment", "risk_band")],
            outcomes=["net_margin", "renewed"],
            draws=30,
            tune=30,
            chains=2,
            random_seed=3,
            progressbar=False,
        )
        bd.fit(
            synthetic_table(n_outcomes=3),
            factors=["fa", "fb"],
            priors={"level_nu": bd.Prior("Fixed", value=4), "cell_nu": bd.Prior("Fixed", value=5)},
            draws=31,
            tune=30,
            chains=3,
            random_seed=4,
            progressbar=False,
        )
    assert _signatures() == before


def test_the_command_says_what_it_did(capsys):
    assert main(["compile"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bayesdecide: model kernels ready in ")
    assert "log density" in out and "effect draws" in out and "diagnostics" in out
    assert main(["compile", "--quiet"]) == 0
    assert capsys.readouterr().out == ""


_FIT_AND_COUNT = """
import warnings
warnings.simplefilter("ignore")
import bayesdecide as bd
from bayesdecide.model.precompile import kernels
sim = bd.simulate_markets(["P0", "P1", "P2"], ["R0", "R1", "R2", "R3", "R4"], n=30_000, seed=2)
eff = bd.cell_effects(bd.cell_stats(sim.data, sim.spec, single_arm_cells="keep"))
bd.fit(eff, factors=["product", "region"], interactions=[("product", "region")], draws=50,
       tune=50, progressbar=False)
for name, d in kernels().items():
    print(name, sum(d.stats.cache_misses.values()), sum(d.stats.cache_hits.values()))
"""


@pytest.mark.slow
def test_a_new_process_after_the_command_compiles_nothing(tmp_path):
    """From an empty numba cache: ``bayesdecide compile`` compiles the three kernels, and a new
    process fitting another model (markets, product x region) loads every one of them."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    run = subprocess.run(
        [sys.executable, "-m", "bayesdecide.cli", "compile"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "compiled log density, effect draws, diagnostics" in run.stdout, run.stdout
    fit = subprocess.run(
        [sys.executable, "-c", _FIT_AND_COUNT], env=env, capture_output=True, text=True, check=True
    )
    counts = {
        line.rsplit(" ", 2)[0]: tuple(int(x) for x in line.rsplit(" ", 2)[1:])
        for line in fit.stdout.strip().splitlines()
    }
    assert set(counts) == set(kernels())
    for name, (misses, hits) in counts.items():
        assert misses == 0 and hits >= 1, (name, misses, hits)
