"""Fit speed of the retention model (27 cells x 7 outcomes): samplers, cold/warm, ESS per second.

Run: ``python benchmarks/fit_speed.py`` (prints figures; not a test). Cold = fresh PyTensor
compile dir (set PYTENSOR_FLAGS=compiledir=... before Python starts; the script re-executes
itself for the cold run); warm = same process, second fit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")


def _ess_per_s(idata, var: str, seconds: float) -> float:
    import arviz as az
    import numpy as np

    ess = az.ess(idata.posterior[[var]], method="bulk")[var].values
    return float(np.min(ess)) / seconds


def run(mode: str) -> None:
    import numpy as np

    import bayesdecide as bd
    from bayesdecide.fit import fit
    from bayesdecide.model.unit_level import fit_unit_level

    sim = bd.simulate_retention()
    t0 = time.perf_counter()
    table = bd.cell_effects(bd.cell_stats(sim.data, sim.spec, single_arm_cells="keep"))
    t_cells = time.perf_counter() - t0
    kw = dict(draws=1000, tune=1000, chains=4, cores=2, progressbar=False)
    args = [a for a in sys.argv[2:] if not a.startswith("--")]
    samplers = args[0].split(",") if args else ["nutpie", "pymc"]
    for sampler in [] if "--unit-only" in sys.argv else samplers:
        for label in ["first", "second"]:
            t0 = time.perf_counter()
            f = fit(table, sampler=sampler, retry_target_accept=None, **kw)
            dt = time.perf_counter() - t0
            ess = _ess_per_s(f.idata, "tau", dt)
            print(
                f"[{mode}] cell-stats {sampler:7s} {label}: {dt:6.1f} s total "
                f"(cell_stats {t_cells:.2f} s), min bulk ESS(tau)/s {ess:7.1f}, "
                f"divergences {f.diagnostics['divergences']}, max R-hat "
                f"{f.diagnostics['max_rhat']:.3f}",
                flush=True,
            )
    if mode == "warm" and ("--unit" in sys.argv or "--unit-only" in sys.argv):
        # same factor structure, unit-level, one outcome (renewed) vs the cell model of it
        t0 = time.perf_counter()
        f = fit(table, outcomes=["renewed"], retry_target_accept=None, **kw)
        dt_cell = time.perf_counter() - t0
        ess_cell = _ess_per_s(f.idata, "tau", dt_cell)
        t0 = time.perf_counter()
        tau, idata = fit_unit_level(
            sim.data, sim.spec, "renewed", draws=1000, tune=1000, chains=4, cores=2
        )
        dt_unit = time.perf_counter() - t0
        ess_unit = _ess_per_s(idata, "tau", dt_unit)
        print(
            f"[unit] renewed cell-stats {dt_cell:.1f} s ESS/s {ess_cell:.1f}; unit-level "
            f"{dt_unit:.1f} s ESS/s {ess_unit:.1f}; ratio {ess_cell / ess_unit:.1f}x"
        )
        _ = np


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("cold", "warm"):
        run(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, PYTENSOR_FLAGS=f"compiledir={d}", NUMBA_CACHE_DIR=d)
            subprocess.run([sys.executable, __file__, "cold", *sys.argv[1:]], env=env, check=True)
        subprocess.run([sys.executable, __file__, "warm", *sys.argv[1:], "--unit"], check=True)
