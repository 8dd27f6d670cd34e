"""Compile the model's kernels before the first fit (``bayesdecide compile``).

A fit calls three numba kernels: the marginal log density the sampler evaluates
(:func:`~bayesdecide.model.marginal.signed_log_density`), the exact draws of the effects given the
spreads (:func:`~bayesdecide.model.marginal.draw_effects`) and the convergence diagnostics
(:func:`~bayesdecide.model.diagnostic_kernels.series_diagnostics`). Their argument types do not
depend on the model: every fit, whatever its factors, interactions, outcomes, priors, tails or
chains, calls the same three compiled functions, which numba keeps in its on-disk cache (next to
the package, or under ``NUMBA_CACHE_DIR``; per machine and package version). Compiling them takes
25-45 s on 2 cores; loading them, under a second.

So they can be compiled once at installation instead of inside the first fit:
:func:`compile_kernels` fits a small model (the seed's retention table, one short chain), which
compiles each kernel with the argument types every fit uses, or loads it when the cache already
has it. The project's set-up (``make``) runs it after installing the package.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class KernelsReady:
    """What :func:`compile_kernels` did.

    Attributes
    ----------
    seconds:
        Wall time of the whole call (simulating the small table, compiling or loading, fitting).
    compiled:
        Kernels compiled by this call (their cache was empty or stale).
    loaded:
        Kernels loaded from numba's cache (or already in this process).
    """

    seconds: float
    compiled: tuple[str, ...]
    loaded: tuple[str, ...]

    def __str__(self) -> str:
        parts = []
        if self.compiled:
            parts.append("compiled " + ", ".join(self.compiled))
        if self.loaded:
            parts.append("loaded " + ", ".join(self.loaded) + " from the cache")
        return f"model kernels ready in {self.seconds:.1f} s ({'; '.join(parts)})"


def kernels() -> dict:
    """The kernels a fit calls, by name: numba dispatchers."""
    from bayesdecide.model.diagnostic_kernels import series_diagnostics
    from bayesdecide.model.marginal import draw_effects, signed_log_density

    return {
        "log density": signed_log_density,
        "effect draws": draw_effects,
        "diagnostics": series_diagnostics,
    }


def _misses(dispatcher: object) -> int:
    """Cache misses so far (compilations from source) of a dispatcher; 0 if numba does not say."""
    stats = getattr(dispatcher, "stats", None)
    return int(sum(getattr(stats, "cache_misses", {}).values())) if stats is not None else 0


def compile_kernels() -> KernelsReady:
    """Compile every kernel a fit uses, or load it from numba's cache, by fitting a small model.

    Returns a :class:`KernelsReady` saying how long it took and which kernels were compiled.
    Warnings of the small fit (its one short chain does not pass the diagnostics) are not shown.
    """
    import bayesdecide as bd

    started = time.perf_counter()
    found = kernels()
    before = {name: _misses(d) for name, d in found.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = bd.simulate_retention(seed=1)
        effects = bd.cell_effects(bd.cell_stats(sim.data, sim.spec, single_arm_cells="keep"))
        bd.fit(effects, draws=20, tune=20, chains=1, random_seed=1, progressbar=False)
    compiled = tuple(n for n, d in found.items() if _misses(d) > before[n])
    loaded = tuple(n for n in found if n not in compiled)
    return KernelsReady(time.perf_counter() - started, compiled, loaded)


__all__ = ["KernelsReady", "compile_kernels", "kernels"]
