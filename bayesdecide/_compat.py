"""ArviZ compatibility shim: every interval, summary and diagnostic call goes through here.

ArviZ 1.x renamed interval arguments (``hdi_prob`` -> ``prob``, ``ci_prob``) and moved
InferenceData to DataTree; keeping the calls in one module means one place to adapt.
"""

from __future__ import annotations

from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

ARVIZ_MAJOR = int(az.__version__.split(".")[0])


def rhat(ds: xr.Dataset) -> xr.Dataset:
    """Rank-normalised split R-hat per variable element."""
    return az.rhat(ds)


def ess(ds: xr.Dataset, method: str = "bulk") -> xr.Dataset:
    """Effective sample size (``method`` ``"bulk"`` or ``"tail"``)."""
    return az.ess(ds, method=method)


def interval(
    da: xr.DataArray, prob: float = 0.9, sample_dims: tuple[str, ...] = ("chain", "draw")
) -> xr.DataArray:
    """Central (equal-tailed) interval over ``sample_dims``; dim ``bound`` = lower, upper."""
    q = da.quantile([(1 - prob) / 2, (1 + prob) / 2], dim=list(sample_dims))
    return q.rename(quantile="bound").assign_coords(bound=["lower", "upper"])


def summary(
    data: Any, var_names: list[str] | None = None, prob: float = 0.9, **kwargs: Any
) -> pd.DataFrame:
    """``arviz.summary`` with an equal-tailed ``prob`` interval across ArviZ versions."""
    if ARVIZ_MAJOR >= 1:  # pragma: no cover - ArviZ 1.x
        return az.summary(data, var_names=var_names, ci_prob=prob, **kwargs)
    return az.summary(data, var_names=var_names, hdi_prob=prob, **kwargs)


def mcse_mean(da: xr.DataArray, sample_dims: tuple[str, ...] = ("chain", "draw")) -> np.ndarray:
    """Monte Carlo standard error of the posterior mean, per element."""
    other = [d for d in da.dims if d not in sample_dims]
    out = az.mcse(da.transpose(*sample_dims, *other).to_dataset(name="x"), method="mean")
    return np.asarray(out["x"])


__all__ = ["ARVIZ_MAJOR", "ess", "interval", "mcse_mean", "rhat", "summary"]
