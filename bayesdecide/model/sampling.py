"""Samplers for the hierarchical model, behind one call.

- ``"nutpie"`` (default): nutpie's NUTS on the marginal posterior of the spreads (log spreads;
  spreads the data may not tell from zero signed: :attr:`~bayesdecide.model.engine.MarginalModel.signed`;
  :mod:`bayesdecide.model.marginal`), through nutpie's public ``from_pyfunc`` interface; the
  effects are then drawn exactly (:mod:`bayesdecide.model.engine`). The density is numba code
  compiled once per machine and package version and cached (:func:`prepare_density`).
- ``"pymc"``: PyMC's NUTS on the reference model with every effect sampled
  (:mod:`bayesdecide.model.reference`): the same posterior, by a different route (slower; a check
  and the fallback).

If nutpie's interface cannot be used on this machine (an incompatible release), ``"nutpie"`` falls
back to ``"pymc"`` with a warning that says why.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from bayesdecide.errors import SpecError
from bayesdecide.model import thread_state
from bayesdecide.model.defaults import SAMPLERS, default_tune
from bayesdecide.model.engine import MarginalModel
from bayesdecide.model.linalg import one_blas_thread

# options each sampler accepts beyond draws/tune/chains/seed/target_accept/cores/progressbar,
# by PyMC's name -> the sampler's own name
SAMPLER_OPTIONS: dict[str, dict[str, str]] = {
    "nutpie": {
        "max_treedepth": "maxdepth",
        "low_rank_modified_mass_matrix": "low_rank_modified_mass_matrix",
        "use_grad_based_mass_matrix": "use_grad_based_mass_matrix",
    },
    "pymc": {"max_treedepth": "max_treedepth", "init": "init"},
}


class FastPathUnavailable(RuntimeError):
    """nutpie's ``from_pyfunc`` interface is missing or incompatible on this machine."""


@dataclass
class Draws:
    """Draws of the log spreads ``x`` (chain, draw, P) and the sampler's statistics."""

    x: np.ndarray
    sample_stats: xr.Dataset
    sampler: str
    tune: int  # warm-up iterations per chain the sampler ran


def default_cores(chains: int) -> int:
    """Chains run in parallel on up to as many cores as the machine has."""
    return max(1, min(chains, os.cpu_count() or 1))


def check_options(sampler: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The sampler's own names for ``options``; an unknown one is an error naming it."""
    if sampler not in SAMPLERS:
        raise SpecError(f"sampler={sampler!r}: use one of {list(SAMPLERS)}")
    known = SAMPLER_OPTIONS[sampler]
    unknown = [name for name in options if name not in known]
    if unknown:
        raise SpecError(
            f"unknown sampler option(s) {unknown} for sampler={sampler!r}; valid: "
            f"draws, tune, chains, seed (or random_seed), target_accept, cores, progressbar, "
            f"{', '.join(sorted(known))}"
        )
    return {known[name]: value for name, value in options.items()}


def _interrupted(n_draws: np.ndarray | int, expected: int) -> bool:
    return int(np.min(n_draws)) < expected


# seconds the density may take to be ready before a progress line says what is happening
ANNOUNCE_AFTER_S = 3.0


def prepare_density(model: MarginalModel, announce: bool) -> None:
    """Compile the density, or load it from numba's cache, before the sampler starts.

    Loading takes under a second; compiling, which happens once after installing or upgrading
    (numba's cache is per machine and per package version), takes about 20 s on 2 cores, and the
    first fit's other kernels (the effects' draws, the diagnostics) 10-15 s more, unless
    ``bayesdecide compile`` (:mod:`bayesdecide.model.precompile`) has compiled them. With
    ``announce``, a line on stderr says so when it is not ready after :data:`ANNOUNCE_AFTER_S`
    seconds, and another when it is, so that the first fit does not look stalled. Evaluating the
    density at a chain's start also checks it before any sampling (nothing random is drawn)."""
    done, announced = threading.Event(), threading.Event()

    def watch() -> None:
        if not done.wait(ANNOUNCE_AFTER_S):
            announced.set()
            print(
                "bayesdecide: preparing the compiled model density (the first fit after "
                "installing or upgrading compiles it and the other kernels: 30-45 s in all on 2 "
                "cores; later fits and sessions load them from numba's cache; `bayesdecide "
                "compile` does this ahead of any fit)",
                file=sys.stderr,
                flush=True,
            )

    started = time.perf_counter()
    watcher = threading.Thread(target=watch, daemon=True) if announce else None
    if watcher is not None:
        watcher.start()
    try:
        model.sampler_logp(model.initial_point(0))
    finally:
        done.set()
        if watcher is not None:
            watcher.join()
    if announced.is_set():
        print(
            f"bayesdecide: model density ready after {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )


def sample_nutpie(
    model: MarginalModel,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    target_accept: float,
    cores: int | None,
    progressbar: bool,
    **options: Any,
) -> Draws:
    """nutpie's NUTS on the marginal density of the log spreads."""
    prepare_density(model, announce=progressbar)
    try:
        import nutpie
        from nutpie.compiled_pyfunc import from_pyfunc

        names = model.param_names
        errors: list[BaseException] = []

        def make_logp():
            def logp(x: np.ndarray, **_: Any) -> tuple[float, np.ndarray]:
                thread_state.hold()  # until this draw's expand (see thread_state)
                # an exception raised into nutpie's worker threads poisons the sampler; keep the
                # first, reject the point, and raise it once sampling has stopped
                try:
                    value, grad = model.sampler_logp(x)
                except Exception as err:  # noqa: BLE001 - re-raised after sampling
                    errors.append(err)
                    return -np.inf, np.zeros(len(x))
                return float(value), grad

            return logp

        def make_expand(seed1: int, seed2: int, chain: int):
            def expand(x: np.ndarray, **_: Any) -> dict[str, np.ndarray]:
                thread_state.release()
                return {"log_spread": model.log_spreads(x)}

            return expand

        compiled = from_pyfunc(
            model.n_free,
            make_logp,
            make_expand,
            [np.dtype("float64")],
            [(model.n_free,)],
            ["log_spread"],
            coords={"spread": names},
            dims={"log_spread": ("spread",)},
            make_initial_point_fn=lambda s: model.initial_point(int(s)),
        )
    except (ImportError, AttributeError, TypeError) as err:
        raise FastPathUnavailable(f"nutpie's from_pyfunc interface failed: {err!r}") from err
    idata = nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        cores=cores or default_cores(chains),
        progress_bar=progressbar,
        save_warmup=False,
        target_accept=target_accept,
        **options,
    )
    if errors:
        raise errors[0]
    x = np.asarray(idata.posterior["log_spread"].values, dtype=float)
    if x.shape[0] < chains or _interrupted(x.shape[1], draws) or not np.all(np.isfinite(x)):
        raise KeyboardInterrupt("sampling was interrupted: the trace is incomplete")
    return Draws(x=x, sample_stats=idata.sample_stats, sampler="nutpie", tune=tune)


def sample_pymc(
    model: MarginalModel,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    target_accept: float,
    cores: int | None,
    progressbar: bool,
    **options: Any,
) -> Draws:
    """PyMC's NUTS on the reference model (every effect sampled); returns the log spreads."""
    import pymc as pm

    from bayesdecide.model.reference import build_reference_model, log_spreads_from

    ref = build_reference_model(model)
    with ref:
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores or default_cores(chains),
            random_seed=seed,
            target_accept=target_accept,
            progressbar=progressbar,
            compute_convergence_checks=False,
            **options,
        )
    n = idata.posterior.sizes["draw"]
    if _interrupted(n, draws):
        raise KeyboardInterrupt("sampling was interrupted: the trace is incomplete")
    return Draws(
        x=log_spreads_from(model, idata.posterior),
        sample_stats=idata.sample_stats,
        sampler="pymc",
        tune=tune,
    )


def sample(
    model: MarginalModel, sampler: str, options: Mapping[str, Any], **settings: Any
) -> Draws:
    """Sample with ``sampler``; ``"nutpie"`` falls back to ``"pymc"`` (warning) if unusable.
    ``tune=None`` in ``settings``: the warm-up of the sampler that runs
    (:func:`bayesdecide.model.defaults.default_tune`; a fallback to PyMC gets PyMC's).

    The chains run in parallel threads, each calling the density's small LAPACK routines; BLAS is
    held to one thread meanwhile (:func:`bayesdecide.model.linalg.one_blas_thread`), since a
    threaded OpenBLAS inside every chain's call made the retention fit 3x slower on 2 cores."""
    with one_blas_thread():
        return _sample(model, sampler, options, **settings)


def _sample(
    model: MarginalModel, sampler: str, options: Mapping[str, Any], **settings: Any
) -> Draws:
    given = settings.pop("tune", None)

    def tune(name: str) -> int:
        return default_tune(name) if given is None else int(given)

    if sampler == "nutpie":
        try:
            return sample_nutpie(
                model, tune=tune("nutpie"), **settings, **check_options("nutpie", options)
            )
        except FastPathUnavailable as err:
            warnings.warn(
                f"the fast sampler is unavailable: {err}. Falling back to PyMC's NUTS on the "
                "full model (same posterior, slower). Install nutpie>=0.16 to restore it.",
                RuntimeWarning,
                stacklevel=3,
            )
            sampler = "pymc"
            options = {k: v for k, v in options.items() if k in SAMPLER_OPTIONS["pymc"]}
    return sample_pymc(model, tune=tune("pymc"), **settings, **check_options("pymc", options))


__all__ = [
    "SAMPLERS",
    "SAMPLER_OPTIONS",
    "Draws",
    "FastPathUnavailable",
    "check_options",
    "default_cores",
    "prepare_density",
    "sample",
]
