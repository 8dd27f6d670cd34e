"""Fit speed of the retention model: cold and warm processes, samplers, ESS per second.

Run: ``python benchmarks/fit_speed.py [--quick]`` (prints figures; not a test). Every figure is
measured in this run on this machine; targets are printed as ratios.

1. Cold start: a fresh process with an empty numba cache (what CI's first fit pays: the marginal
   kernels compile once per machine), then a warm process (cache on disk), first and second fit.
   Retention model: 27 cells, 7 outcomes (6 modelled), factors segment, region, risk band and the
   segment x risk band interaction, 4 chains x (1000 tune + 1000 draws).
2. Samplers on the same model in one process: ``nutpie`` (NUTS on the marginal posterior of the
   spreads, effects drawn exactly) and ``pymc`` (PyMC's NUTS on the full model, every effect
   sampled).
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

TARGET_WARM, TARGET_FRESH = 3.0, 9.0  # seconds: the previous engine on this model
TARGET_ESS_RATIO = 30.0
SETTINGS = dict(draws=1000, tune=1000, chains=4, cores=2, progressbar=False)
HIERARCHY = dict(
    factors=["segment", "region", "risk_band"], interactions=[("segment", "risk_band")]
)


def _table(adjust: bool = True):
    import bayesdecide as bd

    sim = bd.simulate_retention()
    cells = bd.cell_stats(sim.data, sim.spec, single_arm_cells="keep")
    return sim, bd.cell_effects(cells, adjust=adjust)


def _timed_fit(table, **kw) -> dict:
    import bayesdecide as bd

    t0 = time.perf_counter()
    f = bd.fit(table, retry_target_accept=None, **{**HIERARCHY, **SETTINGS, **kw})
    seconds = time.perf_counter() - t0
    d = f.diagnostics
    return {
        "seconds": seconds,
        "ess_per_s": d["min_ess_bulk"] / seconds,
        "divergences": d["divergences"],
        "max_rhat": d["max_rhat"],
        "min_ess_bulk": d["min_ess_bulk"],
        "steps": float(f.idata.sample_stats["n_steps"].mean()),
    }


def child(mode: str) -> None:
    """One measurement in this (fresh) process; prints one JSON line."""
    t0 = time.perf_counter()
    import bayesdecide.model.engine  # noqa: F401  (numba: loads or compiles the kernels)

    t1 = time.perf_counter()
    _, table = _table()
    t2 = time.perf_counter()
    first = _timed_fit(table)
    second = _timed_fit(table)
    out = {"mode": mode, "imports_s": t1 - t0, "data_s": t2 - t1}
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


def _line(label: str, r: dict, target: float | None = None) -> str:
    vs = f" ({r['seconds'] / target:4.2f}x the {target:.0f} s target)" if target else ""
    return (
        f"  {label:40s} {r['seconds']:6.1f} s{vs}  min bulk ESS/s {r['ess_per_s']:7.1f}  "
        f"R-hat {r['max_rhat']:.3f}  divergences {r['divergences']}  steps/draw "
        f"{r.get('steps', float('nan')):.1f}"
    )


def main(quick: bool) -> None:
    print("1. Retention model (27 cells x 7 outcomes), default sampler, 4 x 1000 draws")
    with tempfile.TemporaryDirectory() as d:
        cold = _run_child("cold", dict(os.environ, NUMBA_CACHE_DIR=d))
    warm = _run_child("warm", dict(os.environ))
    for label, r in (("cold", cold), ("warm", warm)):
        print(
            f"  {label} process: imports (incl. kernels) {r['imports_s']:.1f} s, data {r['data_s']:.1f} s"
        )
        print(_line(f"{label} process, first fit", r["first"]))
        print(_line(f"{label} process, second fit", r["second"], TARGET_WARM))
        total = r["imports_s"] + r["data_s"] + r["first"]["seconds"]
        print(
            f"  {label} process, start to end of the first fit: {total:.1f} s "
            f"({total / TARGET_FRESH:.2f}x the {TARGET_FRESH:.0f} s target)"
        )

    print("2. Samplers on the same model (this process)")
    _, table = _table()
    samplers = ["nutpie"] + ([] if quick else ["pymc"])
    results = {s: _timed_fit(table, sampler=s) for s in samplers}
    for s, r in results.items():
        print(_line(s, r))
    base = results["nutpie"]
    for s, r in results.items():
        print(
            f"  {s}: {r['seconds'] / base['seconds']:.1f}x the time, "
            f"{base['ess_per_s'] / r['ess_per_s']:.1f}x fewer min ESS/s than nutpie"
        )
    if quick:
        return

    print("3. Cell statistics vs unit level, outcome 'renewed', same factor structure and settings")
    import numpy as np

    from bayesdecide.model.diagnostics import ess_bulk
    from bayesdecide.model.unit_level import fit_unit_level

    sim, raw = _table(adjust=False)
    cell = _timed_fit(raw, outcomes=["renewed"])
    t0 = time.perf_counter()
    tau, idata = fit_unit_level(sim.data, sim.spec, "renewed", **HIERARCHY, **SETTINGS)
    unit_s = time.perf_counter() - t0
    series = np.moveaxis(np.asarray(tau.transpose("chain", "draw", "cell").values), 2, 0)
    unit_ess = float(np.nanmin(ess_bulk(series))) / unit_s
    print(f"  cell statistics: {cell['seconds']:.1f} s, min bulk ESS/s {cell['ess_per_s']:.1f}")
    print(
        f"  unit level ({len(sim.data):,} rows): {unit_s:.1f} s, min bulk ESS(tau)/s "
        f"{unit_ess:.1f}, divergences {int(idata.sample_stats['diverging'].sum())}"
    )
    ratio = cell["ess_per_s"] / unit_ess
    print(
        f"  ratio {ratio:.1f}x (target {TARGET_ESS_RATIO:.0f}x: {ratio / TARGET_ESS_RATIO:.2f} of it)"
    )


if __name__ == "__main__":
    if "--child" in sys.argv:
        child(sys.argv[sys.argv.index("--child") + 1])
    else:
        main(quick="--quick" in sys.argv)
