"""Fitting the hierarchical effect model: entry points ``fit`` / ``fit_summary`` and the ``Fit``.

A :class:`Fit` holds the posterior (``arviz.InferenceData``; ``tau`` has dims
(chain, draw, cell, outcome) with the factor labels as coords along ``cell``), the EffectTable it
was fitted on, the experiment's mix over cells, the options needed to rebuild the model, sampler
diagnostics and lineage. ``Fit.save`` / ``Fit.load`` round-trip every posterior number exactly
(netCDF via h5netcdf).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.data.spec import ExperimentSpec
from bayesdecide.errors import BayesDecideError, SpecError
from bayesdecide.model.baseline import baseline_draws
from bayesdecide.model.defaults import DEFAULT_SEED
from bayesdecide.model.diagnostics import diagnose
from bayesdecide.model.hierarchical import build_model, model_priors
from bayesdecide.model.inputs import (
    ModelInputs,
    assemble_outcomes,
    build_inputs,
    interaction_name,
)
from bayesdecide.model.posterior import posterior_dataset, sampled_variables
from bayesdecide.model.priors import Prior
from bayesdecide.model.sampling import Draws, make_sampler
from bayesdecide.model.structure import Structure, build_structure
from bayesdecide.model.summary import table_from_summary

_DEPENDENCIES = ("pymc", "pytensor", "arviz", "nutpie", "numpy", "xarray", "pandas", "numba")


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def table_fingerprint(table: xr.Dataset) -> str:
    """SHA-256 of the EffectTable's values and labels (data lineage)."""
    h = hashlib.sha256()
    for name in sorted(table.data_vars):
        arr = np.ascontiguousarray(np.asarray(table[name].values, dtype=float))
        h.update(name.encode())
        h.update(arr.tobytes())
    for name in sorted(table.coords):
        h.update(name.encode())
        h.update("\x1f".join(map(str, np.asarray(table[name].values).ravel())).encode())
    return h.hexdigest()


@dataclass
class Fit:
    """A fitted hierarchical effect model.

    Attributes
    ----------
    idata:
        Posterior: ``tau`` (chain, draw, cell, outcome) in the outcome's units per assigned unit
        (ITT: dollars, probability points as fractions, tickets), ``alpha`` control baselines,
        ``mu``, ``sigma_*``, ``u_<factor>`` (standardised units) and ``theta``; factor labels are
        coords along ``cell``.
    effects:
        The EffectTable the model was fitted on.
    spec:
        The experiment spec when known.
    options:
        Model options (factors, interactions, outcomes, priors, baseline, centring).
    diagnostics:
        ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``min_bfmi``, ``ok``.
    lineage:
        Data fingerprint, spec hash, versions, seed, time, sampler and settings, retries.
    """

    idata: az.InferenceData
    effects: xr.Dataset
    spec: ExperimentSpec | None = None
    options: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    _inputs: ModelInputs | None = field(default=None, repr=False)

    # ----------------------------------------------------------------- views
    @property
    def tau(self) -> xr.DataArray:
        """Posterior draws of the cell effects (chain, draw, cell, outcome), original units."""
        return self.idata.posterior["tau"]

    @property
    def cell_share(self) -> xr.DataArray:
        """The experiment's mix over cells: units per cell / all units (sums to 1)."""
        return cell_share(self.effects)

    @property
    def diagnostics_ok(self) -> bool:
        return bool(self.diagnostics.get("ok", False))

    @property
    def inputs(self) -> ModelInputs:
        if self._inputs is None:
            self._inputs = _inputs_from_options(self.effects, self.options)
        return self._inputs

    def average(self, weights: xr.DataArray | None = None) -> xr.DataArray:
        """Weighted average of ``tau`` over cells (default weights: :attr:`cell_share`)."""
        w = self.cell_share if weights is None else weights / weights.sum()
        return (self.tau * w).sum("cell")

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Tidy table of cell effects: ``estimate`` (posterior mean), ``sd``, ``lower``, ``upper``."""
        tau = self.tau
        q = tau.quantile([(1 - prob) / 2, (1 + prob) / 2], dim=("chain", "draw"))
        frame = pd.DataFrame(
            {
                "estimate": tau.mean(("chain", "draw")).to_series(),
                "sd": tau.std(("chain", "draw")).to_series(),
                "lower": q.isel(quantile=0, drop=True).to_series(),
                "upper": q.isel(quantile=1, drop=True).to_series(),
            }
        )
        return frame

    # ------------------------------------------------------------ prediction
    def predict_new(
        self,
        level: Mapping[str, str],
        *,
        seed: int | None = None,
        cell_deviation: bool = True,
    ) -> xr.DataArray:
        """Effects for factor levels with no data yet (a new region or product), from the hierarchy.

        ``level`` maps factors to levels, e.g. ``{"region": "LATAM"}``; levels not in the data are
        new. For a new level a fresh ``u ~ Normal(0, sigma_factor)`` is drawn per posterior draw
        (shared by all cells with that level), interactions involving it likewise, and a fresh cell
        deviation ``sigma_cell * StudentT(cell_nu)`` per cell. Factors not named in ``level`` range
        over their observed levels, so the result is one combined cell per combination.

        Returns
        -------
        xarray.DataArray
            Draws with dims (chain, draw, cell, outcome) in the outcome's units per assigned unit;
            factor labels are coords along ``cell``.
        """
        inp = self.inputs
        unknown = [f for f in level if f not in inp.factors]
        if unknown:
            raise SpecError(f"unknown factor(s) {unknown}; factors are {inp.factors}")
        rng = np.random.default_rng(
            self.lineage.get("seed", DEFAULT_SEED) if seed is None else seed
        )
        post = self.idata.posterior
        nc, nd = post.sizes["chain"], post.sizes["draw"]
        ki = len(inp.independent)

        def arr(name: str) -> np.ndarray:
            return np.asarray(post[name].values)

        choices = [[str(level[f])] if f in level else list(inp.levels[f]) for f in inp.factors]
        combos = list(pd.MultiIndex.from_product(choices)) if choices else [()]
        new_draws: dict[tuple[str, str], np.ndarray] = {}

        def effect(group: str, label: str, members: tuple[str, ...]) -> np.ndarray:
            if label in inp.levels[group]:
                u = arr(f"u_{group}")  # (chain, draw, L, K)
                return u[:, :, inp.levels[group].index(label), :]
            key = (group, label)
            if key not in new_draws:
                sigma = arr(f"sigma_{group}")
                new_draws[key] = sigma * rng.standard_normal((nc, nd, ki))
            return new_draws[key]

        mu = arr("mu")
        sigma_cell = arr("sigma_cell")
        nu = float(np.asarray(post["cell_nu"]).mean()) if "cell_nu" in post else self._fixed_nu()
        theta = np.zeros((len(combos), nc, nd, ki))
        scale = np.zeros((len(combos), ki))
        labels = []
        for i, combo in enumerate(combos):
            lv = dict(zip(inp.factors, map(str, combo), strict=True))
            t = mu.copy()
            for f in inp.factors:
                t = t + effect(f, lv[f], (f,))
            for members in inp.interactions:
                name = interaction_name(members)
                t = t + effect(name, " | ".join(lv[m] for m in members), members)
            label = " | ".join(lv[f] for f in inp.factors)
            if cell_deviation:
                if label in inp.cells:
                    t = arr("theta")[:, :, inp.cells.index(label), :]
                else:
                    t = t + sigma_cell * rng.standard_t(nu, size=(nc, nd, ki))
            theta[i] = t
            scale[i] = inp.unit_scale_for(lv) * inp.outcome_scale
            labels.append(lv)
        tau_ind = theta * scale[:, None, None, :]
        tau = assemble_outcomes(tau_ind, inp)  # (cells, chain, draw, K)
        da = xr.DataArray(
            np.moveaxis(tau, 0, 2),
            dims=("chain", "draw", "cell", "outcome"),
            coords={
                "chain": post["chain"].values,
                "draw": post["draw"].values,
                "cell": [" | ".join(lv[f] for f in inp.factors) for lv in labels],
                "outcome": inp.outcomes,
                **{f: ("cell", [lv[f] for lv in labels]) for f in inp.factors},
            },
            name="tau",
        )
        return da

    def _fixed_nu(self) -> float:
        pri = model_priors(self.inputs, self.options.get("priors"))
        return float(pri["cell_nu"].kwargs.get("value", 4.0))

    # ------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Write posterior, EffectTable, options, diagnostics and lineage to one netCDF file."""
        path = Path(path)
        idata = self.idata.copy()
        idata.posterior = idata.posterior.copy()
        idata.posterior.attrs = dict(idata.posterior.attrs)
        meta = {
            "options": _encode_options(self.options),
            "diagnostics": self.diagnostics,
            "lineage": self.lineage,
            "spec": self.spec.to_dict() if self.spec is not None else None,
        }
        idata.posterior.attrs["bayesdecide"] = json.dumps(
            meta, sort_keys=True, default=_json_default
        )
        idata.to_netcdf(str(path), engine="h5netcdf")
        effects = _encode_table(self.effects)
        effects.to_netcdf(str(path), mode="a", group="bayesdecide_effects", engine="h5netcdf")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Fit:
        """Read a fit written by :meth:`save`; every posterior number is reproduced exactly."""
        path = Path(path)
        idata = az.from_netcdf(str(path), engine="h5netcdf")
        idata = _load_into_memory(idata)
        with xr.open_dataset(str(path), group="bayesdecide_effects", engine="h5netcdf") as ds:
            effects = _decode_table(ds.load())
        meta = json.loads(idata.posterior.attrs.pop("bayesdecide"))
        spec = ExperimentSpec.from_dict(meta["spec"]) if meta.get("spec") else None
        return cls(
            idata=idata,
            effects=effects,
            spec=spec,
            options=_decode_options(meta["options"]),
            diagnostics=meta["diagnostics"],
            lineage=meta["lineage"],
        )


# --------------------------------------------------------------------- helpers
def cell_share(effects: xr.Dataset) -> xr.DataArray:
    """Units per cell / all units, over ``cell`` (equal shares when counts are unknown)."""
    if "n_control" in effects and "n_treatment" in effects:
        n = (effects["n_control"] + effects["n_treatment"]).astype(float)
        if bool(np.isfinite(n).all()) and float(n.sum()) > 0:
            return (n / n.sum()).rename("cell_share")
    n = xr.ones_like(effects["cell"], dtype=float)
    return (n / n.sum()).rename("cell_share")


def _load_into_memory(idata: az.InferenceData) -> az.InferenceData:
    for g in idata.groups():
        setattr(idata, g, getattr(idata, g).load())
    return idata


def _encode_table(table: xr.Dataset) -> xr.Dataset:
    out = table.copy()
    for name in list(out.coords):
        if out[name].dtype == object or out[name].dtype.kind == "U":
            out[name] = out[name].astype(str).astype(object)
    for name in list(out.data_vars):
        if out[name].dtype == bool:
            out[name] = out[name].astype("int8")
            out[name].attrs["bayesdecide_bool"] = 1
    out.attrs = {"bayesdecide_attrs": json.dumps(table.attrs, default=_json_default)}
    return out


def _decode_table(ds: xr.Dataset) -> xr.Dataset:
    attrs = json.loads(ds.attrs.get("bayesdecide_attrs", "{}"))
    ds = ds.copy()
    for name in list(ds.data_vars):
        if ds[name].attrs.pop("bayesdecide_bool", 0):
            ds[name] = ds[name].astype(bool)
    ds.attrs = attrs
    return ds


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _encode_options(options: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(options)
    pri = out.get("priors") or {}
    out["priors"] = {k: (v.to_dict() if isinstance(v, Prior) else dict(v)) for k, v in pri.items()}
    out["interactions"] = [list(m) for m in out.get("interactions", ())]
    return out


def _decode_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists: restore the canonical (tuple) form."""
    out = dict(options)
    out["interactions"] = tuple(tuple(m) for m in out.get("interactions", ()))
    out["priors"] = {k: Prior.from_dict(v) for k, v in (out.get("priors") or {}).items()}
    if out.get("outcomes") is not None:
        out["outcomes"] = tuple(out["outcomes"])
    if out.get("factors") is not None:
        out["factors"] = tuple(out["factors"])
    return out


def _canonical_options(**opts: Any) -> dict[str, Any]:
    return _decode_options(_encode_options(opts))


def _inputs_from_options(table: xr.Dataset, options: Mapping[str, Any]) -> ModelInputs:
    return build_inputs(
        table,
        outcomes=list(options["outcomes"]) if options.get("outcomes") else None,
        factors=list(options["factors"]) if options.get("factors") is not None else None,
        interactions=options.get("interactions", ()),
        centring=options.get("centring", "auto"),
    )


def _to_table(data: Any, spec: ExperimentSpec | None, adjust: bool) -> tuple[xr.Dataset, Any]:
    """EffectTable from a Dataset, a CellStats or raw data (+ spec)."""
    if isinstance(data, xr.Dataset):
        return data, spec
    from bayesdecide.data.cells import CellStats
    from bayesdecide.data.effects import cell_effects

    if isinstance(data, CellStats):
        return cell_effects(data, adjust=adjust), spec or data.spec
    if spec is None:
        raise SpecError(
            "fit(data) needs spec= (an ExperimentSpec) to read raw data; or pass a CellStats "
            "or an EffectTable"
        )
    from bayesdecide.data.cells import cell_stats

    cells = cell_stats(data, spec, single_arm_cells="keep")
    return cell_effects(cells, adjust=adjust), spec


def fit(
    data_or_cells: Any,
    spec: ExperimentSpec | None = None,
    *,
    factors: Sequence[str] | None = None,
    interactions: Sequence[Sequence[str]] = (),
    priors: Mapping[str, Prior | Mapping[str, Any]] | None = None,
    outcomes: Sequence[str] | str | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = DEFAULT_SEED,
    sampler: str = "nutpie",
    target_accept: float = 0.9,
    progressbar: bool = True,
    adjust: bool = True,
    baseline: bool = True,
    centring: str = "auto",
    retry_target_accept: float | None = 0.99,
    cores: int | None = None,
    **sampler_options: Any,
) -> Fit:
    """Fit the hierarchical treatment-effect model and return a :class:`Fit`.

    Parameters
    ----------
    data_or_cells:
        Raw unit-level data (any source :func:`bayesdecide.cell_stats` reads; needs ``spec``),
        a :class:`~bayesdecide.data.cells.CellStats`, or an EffectTable ``xarray.Dataset``.
    spec:
        The experiment spec (required for raw data; recorded in the lineage).
    factors:
        Grouping factors to pool over (default: all factors of the table, in order).
    interactions:
        Tuples of factors whose combinations get their own pooled effects, e.g.
        ``[("product", "region")]``.
    priors:
        Overrides by name (``mu``, ``sigma_<factor>``, ``sigma_<f1>_x_<f2>``, ``sigma_cell``,
        ``cell_nu``); see :mod:`bayesdecide.model.priors` and docs/model.md.
    outcomes:
        Subset of outcomes to model jointly (default: all).
    draws, tune, chains, seed, target_accept:
        NUTS settings; the same seed gives identical draws.
    sampler:
        ``"nutpie"`` (default: nutpie on the log density compiled once per machine),
        ``"nutpie-pytensor"`` (nutpie on the PyMC model, compiled per model) or ``"pymc"``
        (PyMC's NUTS); all sample the same model. Chosen by measurement: benchmarks/fit_speed.py.
    progressbar:
        Show the sampler's progress.
    retry_target_accept:
        On divergences, refit once with this target acceptance (warning; recorded in lineage).
    **sampler_options:
        Passed to the sampler.

    Returns
    -------
    Fit
        ``fit.tau`` (chain, draw, cell, outcome) in outcome units per assigned unit (ITT).
    """
    table, spec = _to_table(data_or_cells, spec, adjust)
    options = _canonical_options(
        factors=tuple(factors) if factors is not None else None,
        interactions=tuple(tuple(m) for m in interactions),
        priors=dict(priors or {}),
        outcomes=(outcomes,)
        if isinstance(outcomes, str)
        else (tuple(outcomes) if outcomes else None),
        baseline=baseline,
        centring=centring,
    )
    inputs = _inputs_from_options(table, options)
    resolved = model_priors(inputs, options["priors"])
    structure = build_structure(inputs)
    run = make_sampler(inputs, resolved, structure, sampler)
    settings = dict(
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        target_accept=target_accept,
        progressbar=progressbar,
        cores=cores,
    )
    started = _dt.datetime.now(_dt.UTC)
    draws_ = run(**settings, **sampler_options)
    idata = _posterior(draws_, inputs, structure, resolved, options, seed)
    diag = diagnose(idata, sampled_variables(idata.posterior, resolved))
    retries: list[dict[str, Any]] = []
    if diag["divergences"] > 0 and retry_target_accept and retry_target_accept > target_accept:
        warnings.warn(
            f"{diag['divergences']} divergent transitions at target_accept={target_accept}; "
            f"refitting once with target_accept={retry_target_accept}",
            stacklevel=2,
        )
        retries.append({"target_accept": target_accept, "divergences": diag["divergences"]})
        settings["target_accept"] = retry_target_accept
        draws_ = run(**settings, **sampler_options)
        idata = _posterior(draws_, inputs, structure, resolved, options, seed)
        diag = diagnose(idata, sampled_variables(idata.posterior, resolved))
    if not diag["ok"]:
        warnings.warn(f"sampler diagnostics not all within thresholds: {diag}", stacklevel=2)
    lineage = {
        "data_fingerprint": table_fingerprint(table),
        "spec_fingerprint": spec.fingerprint() if spec is not None else None,
        "package_version": _version("bayesdecide"),
        "versions": {p: _version(p) for p in _DEPENDENCIES},
        "python": platform.python_version(),
        "seed": seed,
        "time": started.isoformat(),
        "sampler": sampler,
        "settings": {
            "sampler": sampler,
            **{k: v for k, v in settings.items() if k != "progressbar"},
        },
        "retries": retries,
    }
    return Fit(
        idata=idata,
        effects=table,
        spec=spec,
        options=options,
        diagnostics=diag,
        lineage=lineage,
        _inputs=inputs,
    )


def _posterior(
    draws: Draws,
    inputs: ModelInputs,
    structure: Structure,
    priors: Mapping[str, Prior],
    options: Mapping[str, Any],
    seed: int,
) -> az.InferenceData:
    """The labelled posterior (with exact control-baseline draws) and the sampler statistics."""
    chains, n_draws = np.asarray(draws.params["mu"]).shape[:2]
    alpha = None
    if options.get("baseline", True) and inputs.ctrl_obs.any():
        alpha = baseline_draws(inputs, chains, n_draws, seed)
    posterior = posterior_dataset(inputs, structure, priors, draws.params, alpha)
    return az.InferenceData(posterior=posterior, sample_stats=draws.sample_stats)


def fit_summary(
    table: pd.DataFrame,
    estimate: str,
    std_error: str,
    groups: Sequence[str],
    outcome: str | None = None,
    *,
    n: str | None = None,
    **options: Any,
) -> Fit:
    """Fit the same model from per-group effect estimates and standard errors alone.

    ``table`` has one row per cell (x outcome); the combination of ``groups`` identifies a cell
    and each group column becomes a factor. The sampling covariance is diagonal. Stack past
    experiments' rows with new ones to pool them (add an ``experiment`` column to ``groups``).
    Other keyword arguments are those of :func:`fit`.
    """
    et = table_from_summary(
        table, estimate=estimate, std_error=std_error, groups=groups, outcome=outcome, n=n
    )
    return fit(et, **options)


def prior_predictive(
    table: xr.Dataset,
    *,
    factors: Sequence[str] | None = None,
    interactions: Sequence[Sequence[str]] = (),
    priors: Mapping[str, Prior | Mapping[str, Any]] | None = None,
    outcomes: Sequence[str] | None = None,
    draws: int = 500,
    seed: int = DEFAULT_SEED,
) -> xr.DataArray:
    """Prior draws of ``tau`` (chain, draw, cell, outcome) on the original scale.

    Use it to check that the data-scaled default priors allow the effects you find plausible.
    """
    import pymc as pm

    options = _canonical_options(
        factors=tuple(factors) if factors is not None else None,
        interactions=tuple(tuple(m) for m in interactions),
        priors=dict(priors or {}),
        outcomes=tuple(outcomes) if outcomes else None,
        baseline=False,
        centring="noncentred",
    )
    inputs = _inputs_from_options(table, options)
    resolved = model_priors(inputs, options["priors"])
    structure = build_structure(inputs)
    model = build_model(inputs, resolved, structure)
    free = [rv.name for rv in model.free_RVs]
    prior = pm.sample_prior_predictive(draws=draws, model=model, var_names=free, random_seed=seed)
    params = {name: np.asarray(prior.prior[name].values) for name in free}
    posterior = posterior_dataset(inputs, structure, resolved, params)
    return posterior["tau"]


class FitError(BayesDecideError):
    """Fitting failed."""


__all__ = [
    "Fit",
    "FitError",
    "cell_share",
    "fit",
    "fit_summary",
    "prior_predictive",
    "table_fingerprint",
]
