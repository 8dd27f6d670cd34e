"""Samplers for the hierarchical model, chosen by measurement (``benchmarks/fit_speed.py``).

- ``"nutpie"`` (default): nutpie's NUTS on the model's log density compiled once per machine
  (:mod:`bayesdecide.model.kernel`); no per-model compilation.
- ``"nutpie-pytensor"``: nutpie on the PyMC model compiled by PyTensor to numba (7-10 s of
  compilation per model on 2 cores, then the same sampler).
- ``"pymc"``: PyMC's own NUTS (PyTensor's C backend; PyTensor finds no BLAS on the CI machine).

All three sample the same density and return the same constrained parameters.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import arviz as az
import numpy as np
import xarray as xr

from bayesdecide.errors import SpecError
from bayesdecide.model.inputs import ModelInputs
from bayesdecide.model.priors import Prior
from bayesdecide.model.structure import Structure

SAMPLERS = ("nutpie", "nutpie-pytensor", "pymc")


@dataclass
class Draws:
    """Constrained parameter draws (leading dims chain, draw) and the sampler's statistics."""

    params: dict[str, np.ndarray]
    sample_stats: xr.Dataset


def default_cores(chains: int) -> int:
    """Chains run in parallel on up to as many cores as the machine has."""
    return max(1, min(chains, os.cpu_count() or 1))


def sample_pymc_model(
    model: Any,
    *,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    target_accept: float,
    progressbar: bool,
    cores: int | None,
    var_names: list[str] | None = None,
    compiled: Any = None,
    **options: Any,
) -> az.InferenceData:
    """Sample a PyMC model with nutpie (PyTensor-compiled) or PyMC's NUTS.

    ``compiled`` reuses an earlier ``nutpie.compile_pymc_model`` of the same model.
    """
    cores = cores or default_cores(chains)
    if sampler in ("nutpie", "nutpie-pytensor"):
        import nutpie

        if compiled is None:
            compiled = nutpie.compile_pymc_model(model, var_names=var_names)
        return nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            target_accept=target_accept,
            progress_bar=progressbar,
            cores=cores,
            save_warmup=False,
            **options,
        )
    if sampler == "pymc":
        import pymc as pm

        with model:
            return pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                random_seed=seed,
                target_accept=target_accept,
                progressbar=progressbar,
                var_names=var_names,
                compute_convergence_checks=False,
                **options,
            )
    raise SpecError(f"sampler={sampler!r}: use one of {SAMPLERS}")


def make_sampler(
    inputs: ModelInputs, priors: Mapping[str, Prior], structure: Structure, sampler: str
) -> Callable[..., Draws]:
    """A function ``run(draws=, tune=, chains=, seed=, target_accept=, progressbar=, cores=,
    **options) -> Draws`` for the hierarchical model; what it compiles is kept for a retry."""
    if sampler not in SAMPLERS:
        raise SpecError(f"sampler={sampler!r}: use one of {SAMPLERS}")
    if sampler == "nutpie":
        import nutpie

        from bayesdecide.model.kernel import compile_density

        density = compile_density(inputs, priors, structure)
        model = density.nutpie_model()

        def run_kernel(*, cores: int | None, progressbar: bool, **settings: Any) -> Draws:
            chains = settings["chains"]
            idata = nutpie.sample(
                model,
                progress_bar=progressbar,
                cores=cores or default_cores(chains),
                save_warmup=False,
                **settings,
            )
            return Draws(density.constrained(idata.posterior), idata.sample_stats)

        return run_kernel

    from bayesdecide.model.hierarchical import build_model

    pymc_model = build_model(inputs, priors, structure)
    free = [rv.name for rv in pymc_model.free_RVs]
    cache: dict[str, Any] = {}

    def run_pymc(**settings: Any) -> Draws:
        if sampler == "nutpie-pytensor" and "compiled" not in cache:
            import nutpie

            cache["compiled"] = nutpie.compile_pymc_model(pymc_model, var_names=free)
        idata = sample_pymc_model(
            pymc_model, sampler=sampler, var_names=free, compiled=cache.get("compiled"), **settings
        )
        params = {name: np.asarray(idata.posterior[name].values) for name in free}
        return Draws(params, idata.sample_stats)

    return run_pymc


__all__ = ["SAMPLERS", "Draws", "default_cores", "make_sampler", "sample_pymc_model"]
