"""Fit speed of the hierarchical model: samplers, cold and warm starts, ESS per second.

Run: ``python benchmarks/fit_speed.py [--quick]`` (prints figures; not a test). Every figure is
measured in this run on this machine; targets are printed as ratios.

1. Cold start: a fresh process with empty numba and PyTensor caches (what CI's first fit pays,
   the compiled log density included), then a warm process (caches on disk) for the first and
   second fit. Retention model: 27 cells, 7 outcomes, 4 chains x (1000 tune + 1000 draws).
2. Samplers on the same model in one process: ``nutpie`` (the compiled log density),
   ``nutpie-pytensor`` (nutpie on the PyMC graph compiled by PyTensor/numba per model), ``pymc``
   (PyMC's NUTS, C backend), and numpyro (JAX) when it is installed.
3. ESS per second of the cell-statistics fit against the unit-level fit of the same factor
   structure on the same 42,000 rows (outcome ``renewed``, Bernoulli-logit), same settings.

``--quick`` skips the PyMC sampler and the unit-level fit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")

TARGET_SECONDS = 15.0
TARGET_ESS_RATIO = 30.0
SETTINGS = dict(draws=1000, tune=1000, chains=4, cores=2, progressbar=False)


def _min_ess_per_s(tau, seconds: float) -> float:
    import arviz as az
    import numpy as np

    ess = az.ess(tau.to_dataset(name="tau"), method="bulk")["tau"].values
    return float(np.nanmin(ess)) / seconds


def _table(adjust: bool = True):
    import bayesdecide as bd

    sim = bd.simulate_retention()
    return sim, bd.cell_effects(
        bd.cell_stats(sim.data, sim.spec, single_arm_cells="keep"), adjust=adjust
    )


def _timed_fit(table, **kw) -> dict:
    from bayesdecide.model.fitting import fit

    t0 = time.perf_counter()
    f = fit(table, retry_target_accept=None, **SETTINGS, **kw)
    seconds = time.perf_counter() - t0
    d = f.diagnostics
    return {
        "seconds": seconds,
        "ess_per_s": _min_ess_per_s(f.tau, seconds),
        "divergences": d["divergences"],
        "max_rhat": d["max_rhat"],
        "min_ess_bulk": d["min_ess_bulk"],
    }


def child(mode: str) -> None:
    """One measurement in this (fresh) process; prints one JSON line."""
    t0 = time.perf_counter()
    _, table = _table()
    t1 = time.perf_counter()
    import bayesdecide.model.kernel  # noqa: F401  (loads or compiles the log density)

    density = time.perf_counter() - t1
    first = _timed_fit(table)
    second = _timed_fit(table)
    out = {"mode": mode, "imports_data_s": t1 - t0, "density_s": density}
    print(json.dumps(out | {"first": first, "second": second}))


def _run_child(mode: str, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _line(label: str, r: dict) -> str:
    return (
        f"  {label:38s} {r['seconds']:6.1f} s ({r['seconds'] / TARGET_SECONDS:4.2f}x the {TARGET_SECONDS:.0f} s "
        f"target)  min bulk ESS(tau)/s {r['ess_per_s']:7.1f}  R-hat {r['max_rhat']:.3f}  "
        f"divergences {r['divergences']}"
    )


def main(quick: bool) -> None:
    print(
        "1. Retention model (27 cells x 7 outcomes), nutpie on the compiled density, 4 x 1000 draws"
    )
    import bayesdecide.model.kernel  # noqa: F401  (fills the default cache for the warm process)

    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NUMBA_CACHE_DIR=d, PYTENSOR_FLAGS=f"compiledir={d}/pytensor")
        cold = _run_child("cold", env)
    warm = _run_child("warm", dict(os.environ))
    for label, r, verb in (("cold", cold, "compiling"), ("warm", warm, "loading")):
        print(
            f"  {label} process: imports and data {r['imports_data_s']:.1f} s, "
            f"{verb} the density {r['density_s']:.1f} s"
        )
        print(_line(f"{label} process, first fit", r["first"]))
        print(_line(f"{label} process, second fit", r["second"]))
        first_s = r["first"]["seconds"]
        total = r["imports_data_s"] + r["density_s"] + first_s
        ess = r["first"]["ess_per_s"] * first_s / total
        everything = dict(r["first"], seconds=total, ess_per_s=ess)
        print(_line(f"{label} process, all of it to the 1st fit", everything))

    print("2. Samplers on the same model (first fit in this process, compilation included)")
    _, table = _table()
    samplers = ["nutpie", "nutpie-pytensor"] + ([] if quick else ["pymc"])
    results = {s: _timed_fit(table, sampler=s) for s in samplers}
    for s, r in results.items():
        print(_line(s, r))
    try:
        import numpyro  # noqa: F401
    except ImportError:
        print("  numpyro: not installed (pip install numpyro to measure it here)")
    else:
        print(_line("numpyro (JAX)", _numpyro_fit(table)))
    base = results["nutpie"]["seconds"]
    for s, r in results.items():
        print(f"  {s}: {r['seconds'] / base:.1f}x the time of nutpie on the compiled density")

    if quick:
        return
    print("3. Cell statistics vs unit level, outcome 'renewed', same factor structure and settings")
    from bayesdecide.model.unit_level import fit_unit_level

    sim, raw = _table(adjust=False)
    cell = _timed_fit(raw, outcomes=["renewed"])
    t0 = time.perf_counter()
    tau, idata = fit_unit_level(sim.data, sim.spec, "renewed", **SETTINGS)
    unit_s = time.perf_counter() - t0
    unit = {"seconds": unit_s, "ess_per_s": _min_ess_per_s(tau, unit_s)}
    print(
        f"  cell statistics: {cell['seconds']:.1f} s, min bulk ESS(tau)/s {cell['ess_per_s']:.1f}"
    )
    print(
        f"  unit level ({len(sim.data):,} rows): {unit['seconds']:.1f} s, "
        f"min bulk ESS(tau)/s {unit['ess_per_s']:.1f}, "
        f"divergences {int(idata.sample_stats['diverging'].sum())}"
    )
    ratio = cell["ess_per_s"] / unit["ess_per_s"]
    print(
        f"  ratio {ratio:.1f}x (target {TARGET_ESS_RATIO:.0f}x: {ratio / TARGET_ESS_RATIO:.2f} of it)"
    )


def _numpyro_fit(table) -> dict:
    import arviz as az
    import pymc as pm

    from bayesdecide.model.hierarchical import build_model
    from bayesdecide.model.inputs import build_inputs

    model = build_model(build_inputs(table))
    t0 = time.perf_counter()
    with model:
        idata = pm.sample(
            draws=1000,
            tune=1000,
            chains=4,
            nuts_sampler="numpyro",
            progressbar=False,
            random_seed=1,
        )
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "ess_per_s": _min_ess_per_s(idata.posterior["tau"], seconds),
        "divergences": int(idata.sample_stats["diverging"].sum()),
        "max_rhat": float(az.rhat(idata.posterior["tau"]).max()),
    }


if __name__ == "__main__":
    if "--child" in sys.argv:
        child(sys.argv[sys.argv.index("--child") + 1])
    else:
        main(quick="--quick" in sys.argv)
