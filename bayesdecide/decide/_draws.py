"""Shared helpers for posterior draws: validation, flattening sample dims, summaries.

Every decision function accepts draws with any tuple of sample dims (``("chain", "draw")`` from a
fit, ``("sample",)`` from a stacked or hand-built array). Internally the heavy arithmetic runs on
numpy arrays with the sample dims flattened to one leading axis; :class:`Samples` remembers the
original dims and coords so results come back as labelled DataArrays.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.errors import SpecError

SampleDims = tuple[str, ...]
DEFAULT_SAMPLE_DIMS: SampleDims = ("chain", "draw")


def as_sample_dims(sample_dims: str | Sequence[str]) -> SampleDims:
    """Normalise ``sample_dims`` to a tuple of dim names."""
    if isinstance(sample_dims, str):
        return (sample_dims,)
    dims = tuple(sample_dims)
    if not dims:
        raise SpecError("sample_dims is empty; give the draw dims, e.g. ('chain', 'draw')")
    return dims


@dataclass(frozen=True)
class Samples:
    """Layout of the sample dims of a draws array (their names, sizes and coords)."""

    dims: SampleDims
    shape: tuple[int, ...]
    coords: Mapping[Hashable, Any]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def wrap(
        self,
        values: np.ndarray,
        dims: Sequence[str] = (),
        coords: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> xr.DataArray:
        """Labelled DataArray from ``values`` of shape ``(S, *rest)`` (S = flattened samples)."""
        values = np.asarray(values)
        out = values.reshape(self.shape + values.shape[1:])
        all_coords: dict[Hashable, Any] = dict(self.coords)
        if coords:
            all_coords.update(coords)
        return xr.DataArray(out, dims=(*self.dims, *dims), coords=all_coords, name=name)


def sample_layout(da: xr.DataArray, sample_dims: SampleDims) -> Samples:
    coords = {
        name: c for name, c in da.coords.items() if set(c.dims) and set(c.dims) <= set(sample_dims)
    }
    return Samples(sample_dims, tuple(da.sizes[d] for d in sample_dims), coords)


def flatten(da: xr.DataArray, sample_dims: SampleDims, rest: Sequence[str]) -> np.ndarray:
    """Values of ``da`` ordered ``(*sample_dims, *rest)`` with the sample dims flattened: (S, ...).

    A view (no copy) when ``da`` is already in that order.
    """
    missing = [d for d in (*sample_dims, *rest) if d not in da.dims]
    if missing:
        raise SpecError(
            f"draws have dims {list(da.dims)}; missing {missing}. Pass sample_dims matching the "
            "draw dims (e.g. ('chain', 'draw') or ('sample',))"
        )
    extra = [d for d in da.dims if d not in (*sample_dims, *rest)]
    if extra:
        raise SpecError(
            f"draws have unexpected dims {extra}; expected {[*sample_dims, *rest]}. Select or "
            "stack them before deciding (or list them in sample_dims)"
        )
    arr = da.transpose(*sample_dims, *rest).values
    s = int(np.prod([da.sizes[d] for d in sample_dims], dtype=np.int64))
    return arr.reshape((s, *arr.shape[len(sample_dims) :]))


ARM_DIM = "treatment_arm"


def effect_dims(tau: xr.DataArray) -> tuple[str, ...]:
    """The non-sample dims of ``tau``: ``(cell, outcome)`` for a two-arm experiment, ``(cell,
    treatment_arm, outcome)`` for a multi-arm one (each treatment arm against the control)."""
    return ("cell", ARM_DIM, "outcome") if ARM_DIM in tau.dims else ("cell", "outcome")


def tau_arms(tau: xr.DataArray) -> list[str] | None:
    """The treatment arm labels of multi-arm draws; ``None`` for a two-arm experiment."""
    if ARM_DIM not in tau.dims:
        return None
    return [str(a) for a in tau[ARM_DIM].values]


def check_tau(tau: xr.DataArray, sample_dims: SampleDims) -> None:
    """Validate the ``tau`` contract: dims (*sample_dims, cell, outcome) for a two-arm experiment
    or (*sample_dims, cell, treatment_arm, outcome) for a multi-arm one, label coords on each,
    finite values."""
    if not isinstance(tau, xr.DataArray):
        raise SpecError(f"tau must be an xarray.DataArray of draws, got {type(tau).__name__}")
    dims = effect_dims(tau)
    flatten(tau, sample_dims, dims)  # dims check
    missing = [d for d in dims if d not in tau.coords]
    if missing:
        raise SpecError(f"tau needs label coords on {[*dims]}; missing {missing}")
    if pd.Index(tau["cell"].values).has_duplicates:
        raise SpecError("tau has duplicate cell labels; cell labels must be unique")
    if ARM_DIM in dims and pd.Index([str(a) for a in tau[ARM_DIM].values]).has_duplicates:
        raise SpecError("tau has duplicate treatment_arm labels; arm labels must be unique")
    if not np.isfinite(tau.values).all():
        raise SpecError("tau has non-finite draws (NaN or inf); decisions need finite draws")


def option_draws(tau: xr.DataArray, sample_dims: SampleDims) -> np.ndarray:
    """Draws (S, O, K) over *options*: the cells of a two-arm experiment (O = C), or the (cell,
    treatment arm) pairs of a multi-arm one, cell-major (option ``c * A + a`` is arm ``a`` in cell
    ``c``; O = C x A). A policy treats at most one option per cell."""
    dims = effect_dims(tau)
    x = flatten(tau, sample_dims, dims)
    return x.reshape(x.shape[0], -1, x.shape[-1])


def factor_names(tau: xr.DataArray) -> list[str]:
    """Factor label coords along ``cell`` (e.g. ``region``, ``risk_band``)."""
    return [
        str(name)
        for name, c in tau.coords.items()
        if c.dims == ("cell",) and name != "cell" and c.dtype.kind in "OUSb"
    ]


def factor_labels(tau: xr.DataArray, factor: str) -> np.ndarray:
    """Labels of ``factor`` per cell; clear error when the factor is unknown."""
    names = factor_names(tau)
    if factor not in tau.coords or tau.coords[factor].dims != ("cell",):
        raise SpecError(f"unknown factor {factor!r}; factors on 'cell' are {names}")
    return np.asarray(tau.coords[factor].values)


def factor_levels(tau: xr.DataArray, factor: str) -> list[Any]:
    """Levels of ``factor`` in order of first appearance along ``cell``."""
    return list(pd.unique(pd.Series(factor_labels(tau, factor))))


def cell_vector(
    values: xr.DataArray | Mapping[str, float] | pd.Series | np.ndarray | Sequence[float],
    cells: pd.Index,
    what: str,
) -> np.ndarray:
    """A float vector over ``cells`` from a DataArray over ``cell``, a mapping or an array."""
    if isinstance(values, xr.DataArray):
        if values.dims != ("cell",):
            raise SpecError(f"{what} must have the single dim 'cell', got {values.dims}")
        if "cell" in values.coords:
            idx = pd.Index(values["cell"].values)
            return _by_label(pd.Series(values.values, index=idx), cells, what)
        values = values.values
    if isinstance(values, Mapping | pd.Series):
        return _by_label(pd.Series(dict(values)), cells, what)
    arr = np.asarray(values, dtype=float)
    if arr.shape != (len(cells),):
        raise SpecError(f"{what} has shape {arr.shape}; expected ({len(cells)},) over cells")
    return arr


def _by_label(series: pd.Series, cells: pd.Index, what: str) -> np.ndarray:
    unknown = [c for c in series.index if c not in cells]
    if unknown:
        raise SpecError(f"{what} names unknown cells {unknown[:5]}; cells are {list(cells[:5])}...")
    missing = [c for c in cells if c not in series.index]
    if missing:
        raise SpecError(
            f"{what} is missing cells {missing[:5]} (of {len(missing)}); give every cell "
            "(use 0 for cells with no share)"
        )
    return series.reindex(cells).to_numpy(dtype=float)


def check_share(share: np.ndarray, what: str, tol: float = 1e-6) -> np.ndarray:
    """Check a mix: finite, non-negative, sums to 1 (within ``tol``); renormalise exactly."""
    share = np.asarray(share, dtype=float)
    if not np.isfinite(share).all() or (share < 0).any():
        raise SpecError(f"{what} must be finite and non-negative")
    total = share.sum()
    if abs(total - 1.0) > tol:
        raise SpecError(f"{what} sums to {total:.6g}, not 1; give shares that sum to 1")
    return share / total


def quantiles(x: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """Quantiles over the leading (flattened sample) axis: shape (len(q), *rest)."""
    return np.quantile(x, q, axis=0)


def interval_probs(ci_prob: float) -> tuple[float, float]:
    """Quantile levels of the equal-tailed ``ci_prob`` posterior interval, e.g. 0.95 -> (0.025,
    0.975). Every ``lower``/``upper`` column of decide/ and report/ uses this convention."""
    if not 0 < ci_prob < 1:
        raise SpecError(f"ci_prob is {ci_prob}; give a probability strictly between 0 and 1")
    return (1 - ci_prob) / 2, (1 + ci_prob) / 2


def summarize(x: np.ndarray, ci_prob: float) -> dict[str, np.ndarray]:
    """``mean``, ``sd``, ``median`` and the equal-tailed ``ci_prob`` interval (``lower``,
    ``upper``) over the leading sample axis."""
    lo, hi = interval_probs(ci_prob)
    qs = quantiles(x, [lo, 0.5, hi])
    return {
        "mean": x.mean(axis=0),
        "sd": x.std(axis=0, ddof=1) if x.shape[0] > 1 else np.zeros(x.shape[1:]),
        "median": qs[1],
        "lower": qs[0],
        "upper": qs[2],
    }


def usd_text(x: float) -> str:
    """Dollars for a sentence: ``$22,945``, ``-$1,250`` (whole dollars)."""
    return f"-${abs(x):,.0f}" if x < 0 else f"${x:,.0f}"


def prob(cond: np.ndarray) -> np.ndarray:
    """Posterior probability of a boolean condition over the leading sample axis."""
    return np.asarray(cond, dtype=float).mean(axis=0)
