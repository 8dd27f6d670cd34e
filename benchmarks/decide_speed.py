"""Speed of the decision layer's sensitivity grid.

4,000 draws x 1,000 cells x 7 outcomes, a 50-point grid of the transport multiplier, two
policies (treat all and a rule over regions). Target: under 1 s end to end
(validation, value model, launch mix, reduction over cells, grid broadcast and the summary table).

Prints the measured seconds (best of ``REPEATS``), the ratio to the 1 s target and the ratio to a
baseline run in the same process: one plain ``numpy.einsum`` contracting the same draws array over
cells and outcomes (``'sck,c,k->s'``), i.e. the least work any implementation must do to read the
draws once. Also prints the naive approach (recompute the value for every grid point) for scale.

Run: ``python benchmarks/decide_speed.py``
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from bayesdecide.decide import Policy, Population, retention_value_model, sensitivity, treat_all

N_CHAINS, N_DRAWS, N_CELLS, N_GRID = 4, 1_000, 1_000, 50
OUTCOMES = [
    "net_margin",
    "renewed",
    "gross_margin",
    "contact_cost",
    "discount_cost",
    "support_tickets",
    "annoyance",
]
TARGET_S = 1.0
REPEATS = 5


def make_tau(seed: int = 0) -> tuple[xr.DataArray, xr.DataArray]:
    rng = np.random.default_rng(seed)
    mu = np.array([2.5, 0.05, 13.0, 8.0, 1.4, 0.034, 0.015])
    sd = np.array([5.0, 0.05, 10.0, 1.0, 0.3, 0.02, 0.01])
    cell_mu = mu + sd * rng.standard_normal((N_CELLS, len(OUTCOMES)))
    draws = cell_mu + 0.3 * sd * rng.standard_normal((N_CHAINS, N_DRAWS, N_CELLS, len(OUTCOMES)))
    cells = [f"cell{i:04d}" for i in range(N_CELLS)]
    regions = np.array(["Americas", "EMEA", "APAC", "LatAm"])[np.arange(N_CELLS) % 4]
    tau = xr.DataArray(
        draws,
        dims=("chain", "draw", "cell", "outcome"),
        coords={"cell": cells, "outcome": OUTCOMES, "region": ("cell", regions)},
    )
    share = rng.dirichlet(np.ones(N_CELLS))
    return tau, xr.DataArray(share, dims="cell", coords={"cell": cells})


def best_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    tau, share = make_tau()
    vm = retention_value_model()
    pop = Population(n_eligible=120_000, fixed_cost=280_000)
    grid = np.linspace(0.45, 1.10, N_GRID)
    policies = [treat_all(), Policy("not_apac", rule={"region": {"not_in": ["APAC"]}})]

    def run() -> None:
        table = sensitivity(
            tau, share, "transport_multiplier", grid, vm, pop, policies, ("chain", "draw")
        )
        assert len(table) == len(policies) * N_GRID

    x = tau.values
    w = np.zeros(len(OUTCOMES))
    w[[2, 3, 4, 5, 6]] = [1, -1, -1, -18, -35]
    mix = share.values

    def baseline() -> None:
        np.einsum("cdsk,s,k->cd", x, mix, w)

    def naive() -> None:  # value recomputed per grid point (what the grid dim avoids)
        wb = np.where(np.arange(len(OUTCOMES)) == 2, 1.0, 0.0)
        for g in grid[:5]:
            np.einsum("cdsk,s,k->cd", x, mix, g * wb + (w - wb))

    run()  # warm up
    t = best_of(run)
    t_base = best_of(baseline)
    t_naive = best_of(naive, 2) * (N_GRID / 5)
    size = f"{N_CHAINS * N_DRAWS:,} draws x {N_CELLS:,} cells x {len(OUTCOMES)} outcomes"
    print(f"decide sensitivity: {size}, {N_GRID} grid points, {len(policies)} policies")
    print(f"  measured:                {t:.3f} s (best of {REPEATS})")
    print(
        f"  target:                  {TARGET_S:.3f} s   ratio measured/target   = {t / TARGET_S:.2f}"
    )
    print(f"  baseline (one einsum):   {t_base:.3f} s   ratio measured/baseline = {t / t_base:.2f}")
    print(
        f"  naive (einsum per grid): {t_naive:.3f} s   ratio naive/measured    = {t_naive / t:.1f}"
    )
    print("PASS" if t < TARGET_S else "FAIL: slower than the 1 s target")


if __name__ == "__main__":
    main()
