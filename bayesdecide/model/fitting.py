"""Fitting the hierarchical effect model: ``fit`` / ``fit_summary``, and the ``Fit`` they return.

A :class:`Fit` holds the posterior as ``arviz.InferenceData`` (``tau`` has dims
(chain, draw, cell, outcome) with the factor labels as coords along ``cell``; see
:mod:`bayesdecide.model.posterior` for every group), the EffectTable it was fitted on, the
experiment's mix over cells, the options that rebuild the model, sampler diagnostics and lineage.

The model is sampled through its marginal posterior: NUTS sees only the spreads, and every effect
is then drawn exactly from its conditional Gaussian (:mod:`bayesdecide.model.engine`). A saved fit
therefore stores the spreads' draws and rebuilds the rest on load, reproducing every posterior
number bit for bit (checked against a checksum written with the fit).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
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

from bayesdecide._json import json_default
from bayesdecide.data.effects import is_multi_arm
from bayesdecide.data.spec import ExperimentSpec
from bayesdecide.errors import BayesDecideError, SpecError
from bayesdecide.model.arms import (
    ARM_DIM,
    arm_interactions,
    flatten_arms,
    join_arms,
    split_arms,
)
from bayesdecide.model.baseline import baseline_draws
from bayesdecide.model.defaults import FIT_DEFAULTS
from bayesdecide.model.diagnostics import diagnose
from bayesdecide.model.engine import MarginalModel, mixture_weights
from bayesdecide.model.inputs import (
    POOLING_SCALES,
    ModelInputs,
    assemble_outcomes,
    build_inputs,
    by_finding,
)
from bayesdecide.model.posterior import (
    data_groups,
    fixed_spreads,
    log_likelihood_group,
    posterior_group,
    predictive_draws,
    predictive_group,
    prior_group,
    to_inference_data,
)
from bayesdecide.model.priors import (
    FEW_LEVELS,
    Prior,
    PriorArg,
    decode_priors,
    encode_priors,
    prior_table,
)
from bayesdecide.model.sampling import Draws, check_options, default_cores, sample
from bayesdecide.model.summary import table_from_summary
from bayesdecide.model.terms import LEVEL_SEPARATOR

_DEPENDENCIES = (
    "pymc",
    "pytensor",
    "arviz",
    "nutpie",
    "numpy",
    "xarray",
    "pandas",
    "numba",
    "scipy",
)
PRIOR_DRAWS = 500  # draws in the ``prior`` group


class FitError(BayesDecideError):
    """Fitting failed, or a saved fit could not be reproduced."""


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
        h.update(str(name).encode())
        h.update(arr.tobytes())
    for name in sorted(table.coords):
        h.update(str(name).encode())
        h.update("\x1f".join(map(str, np.asarray(table[name].values).ravel())).encode())
    return h.hexdigest()


def _checksum(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=float).tobytes())
    return h.hexdigest()


def _labels(spec: ExperimentSpec | None) -> dict[str, tuple[str, str]]:
    """Outcome -> (label, unit) from the spec, when known."""
    if spec is None:
        return {}
    return {o.name: (o.label or o.name, o.unit or "") for o in spec.outcomes}


@dataclass
class Fit:
    """A fitted hierarchical effect model.

    Attributes
    ----------
    idata:
        ``arviz.InferenceData``: ``posterior`` (``tau`` (chain, draw, cell, outcome) in the
        outcome's units per assigned unit, i.e. the intention-to-treat effect; ``mu``, ``u_<term>``,
        ``sigma_<term>``, ``sigma_cell`` in natural units; ``alpha`` control means),
        ``log_likelihood``, ``observed_data``, ``constant_data``, ``prior``,
        ``posterior_predictive`` (when small enough) and ``sample_stats``.
    effects:
        The EffectTable the model was fitted on.
    spec:
        The experiment spec when known.
    options:
        Model options (factors, interactions, outcomes, priors, prior and pooling scales).
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
    _model: MarginalModel | None = field(default=None, repr=False)
    _spreads: np.ndarray | None = field(default=None, repr=False)

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
        """Whether every sampler diagnostic is within its threshold."""
        return bool(self.diagnostics.get("ok", False))

    @property
    def model(self) -> MarginalModel:
        """The model (hierarchy, priors, marginal density), rebuilt from the options if needed."""
        if self._model is None:
            inputs = inputs_from_options(self.effects, self.options)
            self._model = model_of(inputs, self.options)
        return self._model

    @property
    def inputs(self) -> ModelInputs:
        """The EffectTable in the model's units (:mod:`bayesdecide.model.inputs`)."""
        return self.model.inputs

    @property
    def priors(self) -> pd.DataFrame:
        """The priors the fit used, one row per prior and modelled outcome, natural units."""
        return prior_table(self.model.priors, self.inputs.independent)

    def average(self, weights: xr.DataArray | None = None) -> xr.DataArray:
        """Weighted average of ``tau`` over cells (default weights: :attr:`cell_share`):
        (chain, draw, outcome), the outcome's units per assigned unit."""
        w = self.cell_share if weights is None else weights / weights.sum()
        return (self.tau * w).sum("cell")

    def summary(self, ci_prob: float = 0.95) -> pd.DataFrame:
        """Cell effects: ``mean``, ``sd`` and the central ``ci_prob`` interval ``lower``/``upper``
        of ``tau`` per cell and outcome (the outcome's units per assigned unit)."""
        if not 0 < ci_prob < 1:
            raise SpecError(f"ci_prob={ci_prob} must be between 0 and 1")
        tau = self.tau
        q = tau.quantile([(1 - ci_prob) / 2, (1 + ci_prob) / 2], dim=("chain", "draw"))
        frame = pd.DataFrame(
            {
                "mean": tau.mean(("chain", "draw")).to_series(),
                "sd": tau.std(("chain", "draw")).to_series(),
                "lower": q.isel(quantile=0, drop=True).to_series(),
                "upper": q.isel(quantile=1, drop=True).to_series(),
            }
        )
        frame.attrs["ci_prob"] = ci_prob
        return frame

    def posterior_predictive(self, seed: int | None = None) -> xr.Dataset:
        """Replicated cell estimates (chain, draw, obs_cell, outcome), whatever their size."""
        seed = self.lineage.get("seed", FIT_DEFAULTS["seed"]) if seed is None else seed
        tau = join_arms(self.idata.posterior)["tau"].transpose("chain", "draw", "cell", "outcome")
        return self._arm_layout(predictive_draws(self.inputs, np.asarray(tau.values), seed))

    def _arm_layout(self, ds: xr.Dataset) -> xr.Dataset:
        """``ds`` with (arm, outcome) pairs split into ``treatment_arm`` and ``outcome`` dims
        (:mod:`bayesdecide.model.arms`) for a multi-arm fit; unchanged otherwise."""
        attrs = self.inputs.table.attrs
        if "arms" not in attrs:
            return ds
        return split_arms(ds, attrs["arms"], attrs["arm_outcomes"])

    # ------------------------------------------------------------ prediction
    def predict_new(
        self,
        level: Mapping[str, str],
        *,
        seed: int | None = None,
    ) -> xr.DataArray:
        """Effects of cells whose levels may be new (a region or product with no data yet).

        ``level`` maps factors to levels, e.g. ``{"region": "LATAM"}``; factors not named range
        over their observed levels, so the result has one cell per combination. A level not in
        the data gets a fresh effect ``u ~ Normal(0, sigma_factor)`` per posterior draw (shared by
        its cells; Student-t with ``level_nu`` degrees of freedom when that prior is set);
        interactions likewise; a cell not in the data a fresh deviation ``Normal(0, sigma_cell)``
        (Student-t with ``cell_nu``). Because the hypermean ``mu`` is the population mean (not the
        mean of the observed levels), the prediction carries its uncertainty too. Known cells
        return their own posterior.

        Returns
        -------
        xarray.DataArray
            ``tau`` (chain, draw, cell, outcome), the outcome's units per assigned unit, with the
            factor labels and ``cell_share`` (the experiment's mix over the other factors) as
            coords along ``cell``.
        """
        inp = self.inputs
        h = inp.hierarchy
        unknown = [f for f in level if f not in h.factors]
        if unknown:
            raise SpecError(
                f"unknown factor(s) {unknown}; factors of this fit are {list(h.factors)}"
            )
        rng = np.random.default_rng(
            [self.lineage.get("seed", FIT_DEFAULTS["seed"]) if seed is None else seed, 0x9E7]
        )
        post = join_arms(self.idata.posterior)  # the model's layout for a multi-arm fit
        n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
        k = len(inp.independent)
        kdim = "outcome" if not inp.derived else "modelled_outcome"
        choices = [[str(level[f])] if f in level else list(h.term(f).levels) for f in h.factors]
        combos = list(pd.MultiIndex.from_product(choices)) if choices else [()]
        fresh: dict[tuple[str, str], np.ndarray] = {}
        mu = np.asarray(post["mu"].transpose("chain", "draw", kdim).values)
        fixed = fixed_spreads(self.model)

        def spread_of(name: str) -> np.ndarray:
            """(chain, draw, K) draws of a spread, natural units; a fixed one (constant_data)
            broadcast."""
            if name in fixed:
                return np.broadcast_to(fixed[name], (n_chain, n_draw, k))
            return np.asarray(post[name].transpose("chain", "draw", kdim).values)

        def effect(term_name: str, label: str, spread: str) -> np.ndarray:
            term = h.term(term_name)
            if label in term.levels:
                u = post[f"u_{term_name}"].transpose("chain", "draw", ..., kdim).values
                return np.asarray(u)[:, :, term.levels.index(label), :]
            key = (term_name, label)
            if key not in fresh:
                _warn_if_fixed_spread(self.model.priors.get(spread, []), term_name, label)
                sigma = spread_of(spread)
                weight = mixture_weights(rng, self.model.kp.level_nu, (n_chain, n_draw, 1))
                fresh[key] = sigma * np.sqrt(weight) * rng.standard_normal((n_chain, n_draw, k))
            return fresh[key]

        tau_known = post["tau"]
        out = np.empty((len(combos), n_chain, n_draw, len(inp.outcomes)))
        labels: list[dict[str, str]] = []
        share = _mix_over(self, h.factors, level)
        for i, combo in enumerate(combos):
            lv = dict(zip(h.factors, map(str, combo), strict=True))
            name = LEVEL_SEPARATOR.join(lv[f] for f in h.factors)
            labels.append(lv)
            if name in inp.cells:
                out[i] = np.asarray(tau_known.sel(cell=name).transpose("chain", "draw", "outcome"))
                continue
            theta = mu.copy()
            for term in h.level_terms:
                theta = theta + effect(term.name, term.label_of(lv), term.prior_name)
            if h.cell_deviation:
                sigma = spread_of("sigma_cell")
                weight = mixture_weights(rng, self.model.kp.nu, (n_chain, n_draw, 1))
                theta = theta + sigma * np.sqrt(weight) * rng.standard_normal((n_chain, n_draw, k))
            out[i] = assemble_outcomes(theta * inp.relative_scale_for(lv), inp)
        cells = [LEVEL_SEPARATOR.join(lv[f] for f in h.factors) for lv in labels]
        tau = xr.DataArray(
            np.moveaxis(out, 0, 2),
            dims=("chain", "draw", "cell", "outcome"),
            coords={
                "chain": post["chain"].values,
                "draw": post["draw"].values,
                "cell": cells,
                "outcome": inp.outcomes,
                **{f: ("cell", [lv[f] for lv in labels]) for f in h.factors},
                "cell_share": ("cell", [share(lv) for lv in labels]),
            },
            name="tau",
        )
        return self._arm_layout(tau.to_dataset())["tau"]

    def predict_level(
        self, level: Mapping[str, str], mix: xr.DataArray | None = None, *, seed: int | None = None
    ) -> xr.DataArray:
        """The mix-weighted effect of a (possibly new) level combination: (chain, draw, outcome).

        ``mix`` (over the cells :meth:`predict_new` returns) defaults to the experiment's mix over
        the other factors. For a region with no data, this is its predicted effect per assigned
        unit; a :class:`~bayesdecide.decide.Decision` can price it as a launch population.
        """
        tau = self.predict_new(level, seed=seed)
        w = tau["cell_share"] if mix is None else mix.reindex(cell=tau["cell"].values)
        if w.isnull().any() or float(w.sum()) <= 0:
            raise SpecError("mix must give a non-negative weight to every predicted cell")
        return (tau * (w / w.sum())).sum("cell")

    # ------------------------------------------------------------- display
    def __repr__(self) -> str:
        inp_cells = self.effects.sizes.get("cell", 0)
        post = self.idata.posterior
        d = self.diagnostics
        status = "ok" if self.diagnostics_ok else "NOT ok"
        factors = list(self.options.get("factors") or self.effects.attrs.get("factors", []))
        inter = [" x ".join(m) for m in self.options.get("interactions", ())]
        arms = self.effects.sizes.get(ARM_DIM)
        n_out = self.effects.sizes.get("outcome", 0)
        return (
            f"<bayesdecide.Fit: {inp_cells} cells, {n_out} outcome{'' if n_out == 1 else 's'}, "
            f"{f'{arms} treatment arms, ' if arms else ''}"
            f"factors {factors}{', interactions ' + str(inter) if inter else ''}; "
            f"{post.sizes.get('chain', 0)} chains x {post.sizes.get('draw', 0)} draws; diagnostics "
            f"{status} (max R-hat {d.get('max_rhat', float('nan')):.3f}, min bulk ESS "
            f"{d.get('min_ess_bulk', float('nan')):.0f}, {d.get('divergences', 0)} divergences)>"
        )

    def _repr_html_(self) -> str:
        avg = self.average()
        if ARM_DIM in avg.dims:  # one row per (arm, outcome)
            avg = avg.stack(row=(ARM_DIM, "outcome"))
            names = [f"{a}: {o}" for a, o in avg["row"].values]
        else:
            names = [str(o) for o in avg["outcome"].values]
        lo, hi = avg.quantile([0.025, 0.975], dim=("chain", "draw")).values
        rows = "".join(
            f"<tr><td>{html.escape(o)}</td><td>{m:,.4g}</td><td>[{a:,.4g}, {b:,.4g}]</td></tr>"
            for o, m, a, b in zip(names, avg.mean(("chain", "draw")).values, lo, hi, strict=True)
        )
        return (
            f"<p><b>{html.escape(repr(self))}</b></p><table><tr><th>outcome</th>"
            "<th>all-customer effect (mean)</th><th>95% interval</th></tr>" + rows + "</table>"
        )

    # ------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Write one compressed netCDF file: the spreads' draws, the sampler statistics, the
        EffectTable and the metadata; everything else is rebuilt exactly on :meth:`load`."""
        path = Path(path)
        if self._spreads is None:
            raise FitError(
                "this Fit has no spread draws to save (it was not made by bayesdecide.fit)"
            )
        meta = {
            "options": _encode_options(self.options),
            "diagnostics": self.diagnostics,
            "lineage": self.lineage,
            "spec": self.spec.to_dict() if self.spec is not None else None,
            "checksum": _checksum(self.tau.values),
            "groups": list(self.idata.groups()),
        }
        spreads = xr.Dataset(
            {"log_spread": (("chain", "draw", "spread"), self._spreads)},
            coords={"spread": self.model.param_names},
            attrs={"bayesdecide": json.dumps(meta, sort_keys=True, default=json_default)},
        )
        enc = {"zlib": True, "complevel": 4}
        spreads.to_netcdf(
            path, group="bayesdecide_spreads", engine="h5netcdf", mode="w",
            encoding={v: enc for v in spreads.data_vars},
        )  # fmt: skip
        stats = self.idata.sample_stats
        stats.to_netcdf(
            path, group="sample_stats", engine="h5netcdf", mode="a",
            encoding={v: enc for v in stats.data_vars if stats[v].dtype.kind in "fiub"},
        )  # fmt: skip
        effects = _encode_table(self.effects)
        effects.to_netcdf(
            path, group="bayesdecide_effects", engine="h5netcdf", mode="a",
            encoding={v: enc for v in effects.data_vars},
        )  # fmt: skip
        return path

    @classmethod
    def load(cls, path: str | Path) -> Fit:
        """Read a fit written by :meth:`save`; every posterior number is reproduced exactly."""
        path = Path(path)
        try:
            with xr.open_dataset(path, group="bayesdecide_spreads", engine="h5netcdf") as ds:
                ds = ds.load()
            with xr.open_dataset(path, group="sample_stats", engine="h5netcdf") as st:
                stats = st.load()
            with xr.open_dataset(path, group="bayesdecide_effects", engine="h5netcdf") as ef:
                effects = _decode_table(ef.load())
            meta = json.loads(ds.attrs["bayesdecide"])
        except (OSError, KeyError, ValueError) as err:
            raise FitError(
                f"{path} is not a readable bayesdecide fit ({type(err).__name__}: {err}); "
                "the file is missing, truncated or not written by Fit.save"
            ) from err
        spec = ExperimentSpec.from_dict(meta["spec"]) if meta.get("spec") else None
        options = _decode_options(meta["options"])
        lineage = meta["lineage"]
        x = np.asarray(ds["log_spread"].values, dtype=float)
        rebuilt = _assemble_fit(
            effects, spec, options, x, stats, lineage, meta["diagnostics"], lineage["seed"]
        )
        if _checksum(rebuilt.tau.values) != meta["checksum"]:
            warnings.warn(
                f"{path}: the rebuilt posterior differs from the one saved (checksum); the "
                f"versions now ({_versions()}) differ from those it was saved with "
                f"({lineage.get('versions')})",
                RuntimeWarning,
                stacklevel=2,
            )
        return rebuilt


# --------------------------------------------------------------------- helpers
def _versions() -> dict[str, str]:
    return {p: _version(p) for p in _DEPENDENCIES}


def _warn_if_fixed_spread(priors: list[Prior], term: str, label: str) -> None:
    """Warn that a new level of ``term`` is drawn from a spread the data did not estimate."""
    fixed = [p for p in priors if p.family == "Fixed"]
    if not fixed:
        return
    values = ", ".join(f"{p.kwargs['value']:.4g}" for p in fixed)
    warnings.warn(
        f"{term}={label!r} is a new level, and the spread of {term!r} is fixed, not estimated "
        f"(sd {values}, natural units: a factor with fewer than {FEW_LEVELS} levels is not pooled "
        f"by default, or priors= fixed it), so the new level's effect is drawn from that wide "
        f"prior: the prediction says how little the other levels tell about it",
        stacklevel=4,
    )


def _mix_over(fit: Fit, factors: Sequence[str], fixed: Mapping[str, str]):
    """A function giving each predicted cell its share: the experiment's joint mix over the
    factors not fixed (units per combination / all units)."""
    free = [f for f in factors if f not in fixed]
    share = fit.cell_share.to_series()
    if not free:
        return lambda lv: 1.0
    table = pd.DataFrame({f: np.asarray(fit.effects[f].values).astype(str) for f in free})
    table["share"] = share.to_numpy()
    joint = table.groupby(free, sort=False)["share"].sum()

    def get(lv: Mapping[str, str]) -> float:
        key = tuple(lv[f] for f in free)
        return float(joint.get(key if len(free) > 1 else key[0], 0.0))

    return get


def cell_share(effects: xr.Dataset) -> xr.DataArray:
    """Units per cell / all units, over ``cell`` (equal shares when counts are unknown)."""
    if "n_control" in effects and "n_treatment" in effects:
        treated = effects["n_treatment"]
        if ARM_DIM in treated.dims:
            treated = treated.sum(ARM_DIM)
        n = (effects["n_control"] + treated).astype(float)
        if bool(np.isfinite(n).all()) and float(n.sum()) > 0:
            return (n / n.sum()).rename("cell_share")
    n = xr.ones_like(effects["cell"], dtype=float)
    return (n / n.sum()).rename("cell_share")


def _encode_table(table: xr.Dataset) -> xr.Dataset:
    out = table.copy()
    for name in list(out.coords):
        if out[name].dtype == object or out[name].dtype.kind == "U":
            out[name] = out[name].astype(str).astype(object)
    for name in list(out.data_vars):
        if out[name].dtype == bool:
            out[name] = out[name].astype("int8")
            out[name].attrs["bayesdecide_bool"] = 1
    out.attrs = {"bayesdecide_attrs": json.dumps(table.attrs, default=json_default)}
    return out


def _decode_table(ds: xr.Dataset) -> xr.Dataset:
    attrs = json.loads(ds.attrs.get("bayesdecide_attrs", "{}"))
    ds = ds.copy()
    for name in list(ds.data_vars):
        if ds[name].attrs.pop("bayesdecide_bool", 0):
            ds[name] = ds[name].astype(bool)
    for name in list(ds.variables):
        ds[name].encoding = {}
    ds.attrs = attrs
    return ds


def _encode_options(options: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(options)
    out["priors"] = encode_priors(out.get("priors"))
    out["interactions"] = [list(m) for m in out.get("interactions", ())]
    return out


def _decode_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists: restore the canonical (tuple) form and typed priors."""
    out = dict(options)
    out["interactions"] = tuple(tuple(m) for m in out.get("interactions", ()))
    out["priors"] = decode_priors(out.get("priors"))
    if out.get("outcomes") is not None:
        out["outcomes"] = tuple(out["outcomes"])
    if out.get("factors") is not None:
        out["factors"] = tuple(out["factors"])
    return out


def _canonical_options(**opts: Any) -> dict[str, Any]:
    return _decode_options(_encode_options(opts))


def inputs_from_options(table: xr.Dataset, options: Mapping[str, Any]) -> ModelInputs:
    """The model inputs a set of fit options describes."""
    outcomes = list(options["outcomes"]) if options.get("outcomes") else None
    interactions = options.get("interactions", ())
    if is_multi_arm(table):
        table, outcomes = flatten_arms(table, outcomes), None
        interactions = arm_interactions(interactions)
    return build_inputs(
        table,
        outcomes=outcomes,
        factors=list(options["factors"]) if options.get("factors") is not None else None,
        interactions=interactions,
        pooling_scale=options.get("pooling_scale", "unit_sd"),
    )


def warn_omitted(inputs: ModelInputs) -> None:
    """Warn, before sampling, about each grouping column left out of the factors and each two-way
    interaction of the factors left out of the terms that explains the cell effects
    (:attr:`~bayesdecide.model.inputs.ModelInputs.left_out`)."""
    for column, found in by_finding(inputs.omitted).items():
        warnings.warn(
            f"{column!r} explains the cell effects ({found}) but is not among the "
            f"factors {list(inputs.factors)}: the model pools its levels together, pulling them "
            f"toward each other. Add {column!r} to factors (a card: hierarchy.factors)",
            UserWarning,
            stacklevel=3,
        )
    for (a, b), found in by_finding(inputs.omitted_interactions).items():
        warnings.warn(
            f"the interaction of {a!r} and {b!r} explains the cell effects beyond the model's "
            f"terms ({found}): without it the cells of a pair of levels share one "
            f"cell spread with every other cell, which pulls them toward the additive pattern and "
            f"biases the levels' effects. Add interactions=[({a!r}, {b!r})] (a card: "
            f"hierarchy.interactions)",
            UserWarning,
            stacklevel=3,
        )


def model_of(inputs: ModelInputs, options: Mapping[str, Any]) -> MarginalModel:
    """The model a set of fit options describes on ``inputs``."""
    return MarginalModel.build(inputs, options.get("priors"), options.get("prior_scale", "data"))


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


def _check_settings(
    draws: Any, tune: Any, chains: Any, seed: Any, target_accept: Any, cores: Any
) -> None:
    """Sampler settings are checked before anything runs; each error names the setting."""

    def whole(name: str, value: Any, low: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise SpecError(f"{name}={value!r} must be a whole number >= {low}")

    whole("draws", draws, 1)
    if tune is not None:  # None: the sampler's own (bayesdecide.model.defaults.default_tune)
        whole("tune", tune, 0)
    whole("chains", chains, 1)
    whole("seed", seed, 0)
    if cores is not None:
        whole("cores", cores, 1)
    if not isinstance(target_accept, int | float) or not 0 < float(target_accept) < 1:
        raise SpecError(f"target_accept={target_accept!r} must be between 0 and 1 (e.g. 0.9)")


def _assemble_fit(
    table: xr.Dataset,
    spec: ExperimentSpec | None,
    options: Mapping[str, Any],
    x: np.ndarray,
    sample_stats: xr.Dataset,
    lineage: dict[str, Any],
    diagnostics: dict[str, Any] | None,
    seed: int,
    model: MarginalModel | None = None,
    threads: int = 1,
) -> Fit:
    """Every group of the InferenceData from the spreads' draws (the same on fit and load)."""
    if model is None:
        inputs = inputs_from_options(table, options)
        model = model_of(inputs, options)
    inputs = model.inputs
    effects = model.effect_draws(x, seed, threads=threads)
    alpha = None
    if options.get("baseline", True) and inputs.ctrl_obs.any():
        alpha = baseline_draws(inputs, x.shape[0], x.shape[1], seed)
    labels = _labels(spec)
    posterior = posterior_group(model, x, effects, alpha, labels)
    groups = {
        "posterior": posterior,
        "log_likelihood": log_likelihood_group(inputs, effects["loglik"]),
        "sample_stats": sample_stats,
        "prior": prior_group(model, min(PRIOR_DRAWS, x.shape[0] * x.shape[1]), seed, labels),
        "posterior_predictive": predictive_group(inputs, np.asarray(posterior["tau"].values), seed),
        **data_groups(model),
    }
    if is_multi_arm(table):
        arms = inputs.table.attrs["arms"]
        outcomes = inputs.table.attrs["arm_outcomes"]
        groups = {name: split_arms(group, arms, outcomes) for name, group in groups.items()}
        posterior = groups["posterior"]
    idata = to_inference_data(groups)
    if diagnostics is None:
        diagnostics = diagnose(_diagnosed(posterior, x, model), sample_stats)
    return Fit(
        idata=idata,
        effects=table,
        spec=spec,
        options=dict(options),
        diagnostics=diagnostics,
        lineage=lineage,
        _model=model,
        _spreads=x,
    )


def _diagnosed(posterior: xr.Dataset, x: np.ndarray, model: MarginalModel) -> xr.Dataset:
    """What the diagnostics look at: the sampled log spreads and every cell effect."""
    return xr.Dataset(
        {
            "log_spread": (("chain", "draw", "spread"), x),
            "tau": posterior["tau"],
            "mu": posterior["mu"],
        },
        coords={"spread": model.param_names},
    )


def fit(
    data_or_cells: Any,
    spec: ExperimentSpec | None = None,
    *,
    factors: Sequence[str] | None = None,
    interactions: Sequence[Sequence[str]] = (),
    priors: PriorArg | None = None,
    prior_scale: str = "data",
    pooling_scale: str = "auto",
    outcomes: Sequence[str] | str | None = None,
    draws: int = FIT_DEFAULTS["draws"],
    tune: int | None = FIT_DEFAULTS["tune"],
    chains: int = FIT_DEFAULTS["chains"],
    seed: int | None = None,
    random_seed: int | None = None,
    sampler: str = "nutpie",
    target_accept: float = FIT_DEFAULTS["target_accept"],
    progressbar: bool = True,
    adjust: bool = True,
    baseline: bool = True,
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
        Priors by name, natural units: ``mu``, ``sigma_<factor>``, ``sigma_<f1>_x_<f2>``,
        ``sigma_cell``; a :class:`~bayesdecide.model.priors.Prior` for every modelled outcome or a
        mapping ``{outcome: Prior}``. See :mod:`bayesdecide.model.priors` and ``fit.priors``.
    prior_scale:
        ``"data"`` (default): priors not given default to ones scaled by the typical size of the
        observed effects; ``"fixed"``: no data-dependent default, every prior must be given.
    pooling_scale:
        ``"auto"`` (default): each outcome pools as a relative lift (effect / the cell's smoothed
        control-arm mean) when its control mean is positive in every cell and the effects are
        closer to additive in the factors on that scale, otherwise relative to each cell's
        smoothed unit-level standard deviation (``fit.inputs.relative`` lists the relative
        ones); ``"unit_sd"``: always the latter; ``"control_mean"``: relative wherever the control
        mean allows; ``"none"``: in the outcome's own units (docs/model.md).
    outcomes:
        Subset of outcomes to model jointly (default: all).
    draws, tune, chains, target_accept:
        NUTS settings (defaults: :data:`bayesdecide.model.defaults.FIT_DEFAULTS`; ``tune=None``:
        the warm-up of the sampler that runs, :data:`bayesdecide.model.defaults.TUNE_DEFAULTS`:
        300 for ``"nutpie"``, 1000 for ``"pymc"`` and for the fallback to it; the fit's
        ``lineage["settings"]["tune"]`` records the number run).
    seed, random_seed:
        Seed of every random number (PyMC's name ``random_seed`` is accepted); the same seed and
        data give identical draws.
    sampler:
        ``"nutpie"`` (default: nutpie's NUTS on the marginal posterior of the spreads, effects
        drawn exactly) or ``"pymc"`` (PyMC's NUTS on the full model; slower, the same posterior).
    progressbar:
        Show the sampler's progress.
    adjust:
        Regression-adjust the cell effects with the spec's covariates (raw data or CellStats).
    baseline:
        Also draw the control-arm means (``alpha``).
    retry_target_accept:
        On divergences, refit once with this target acceptance (warning; recorded in lineage).
    cores:
        Chains run in parallel on this many cores (default: as many as the machine has).
    **sampler_options:
        Further sampler options, PyMC's names (``max_treedepth``; for nutpie also
        ``low_rank_modified_mass_matrix``, ``use_grad_based_mass_matrix``). Anything else is an
        error naming it, raised before sampling.

    Returns
    -------
    Fit
        ``fit.tau`` (chain, draw, cell, outcome) in outcome units per assigned unit (ITT).
    """
    if seed is not None and random_seed is not None and seed != random_seed:
        raise SpecError(f"seed={seed} and random_seed={random_seed} differ; give one of them")
    seed = (
        FIT_DEFAULTS["seed"]
        if seed is None and random_seed is None
        else (seed if seed is not None else random_seed)
    )
    _check_settings(draws, tune, chains, seed, target_accept, cores)
    if pooling_scale not in POOLING_SCALES:
        raise SpecError(f"pooling_scale={pooling_scale!r}: use one of {list(POOLING_SCALES)}")
    check_options(sampler, sampler_options)
    table, spec = _to_table(data_or_cells, spec, adjust)
    options = _canonical_options(
        factors=tuple(factors) if factors is not None else None,
        interactions=tuple((m,) if isinstance(m, str) else tuple(m) for m in interactions),
        priors=dict(priors or {}),
        prior_scale=prior_scale,
        pooling_scale=pooling_scale,
        outcomes=(outcomes,)
        if isinstance(outcomes, str)
        else (tuple(outcomes) if outcomes else None),
        baseline=baseline,
    )
    inputs = inputs_from_options(table, options)
    warn_omitted(inputs)
    model = model_of(inputs, options)
    settings: dict[str, Any] = dict(
        draws=int(draws),
        tune=None if tune is None else int(tune),  # None: the sampler's that runs
        chains=int(chains),
        seed=int(seed),
        target_accept=float(target_accept),
        progressbar=progressbar,
        cores=cores,
    )
    started = _dt.datetime.now(_dt.UTC)
    threads = cores or default_cores(chains)
    draws_: Draws = sample(model, sampler, sampler_options, **settings)
    settings["tune"] = draws_.tune
    result = _assemble_fit(
        table, spec, options, draws_.x, draws_.sample_stats, {}, None, int(seed), model, threads
    )
    retries: list[dict[str, Any]] = []
    diag = result.diagnostics
    if diag["divergences"] > 0 and retry_target_accept and retry_target_accept > target_accept:
        warnings.warn(
            f"{diag['divergences']} divergent transitions at target_accept={target_accept}; "
            f"refitting once with target_accept={retry_target_accept}",
            stacklevel=2,
        )
        retries.append({"target_accept": target_accept, "divergences": diag["divergences"]})
        settings["target_accept"] = retry_target_accept
        draws_ = sample(model, sampler, sampler_options, **settings)
        result = _assemble_fit(
            table, spec, options, draws_.x, draws_.sample_stats, {}, None, int(seed), model, threads
        )
    if not result.diagnostics["ok"]:
        warnings.warn(
            f"sampler diagnostics not all within thresholds: {result.diagnostics}", stacklevel=2
        )
    result.lineage = {
        "data_fingerprint": table_fingerprint(table),
        "spec_fingerprint": spec.fingerprint() if spec is not None else None,
        "package_version": _version("bayesdecide"),
        "versions": _versions(),
        "python": platform.python_version(),
        "seed": int(seed),
        "time": started.isoformat(),
        "sampler": draws_.sampler,
        "settings": {
            "sampler": draws_.sampler,
            **{k: v for k, v in settings.items() if k != "progressbar"},
            **{k: v for k, v in sampler_options.items()},
        },
        "retries": retries,
    }
    return result


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
    Other keyword arguments are those of :func:`fit`. The textbook eight-schools model
    (``docs/model.md``)::

        bd.fit_summary(schools, estimate="y", std_error="sigma", groups=["school"],
                       prior_scale="fixed",
                       priors={"mu": bd.Prior("Normal", mu=0, sigma=5),
                               "sigma_school": bd.Prior("HalfCauchy", beta=5)})
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
    priors: PriorArg | None = None,
    prior_scale: str = "data",
    pooling_scale: str = "auto",
    outcomes: Sequence[str] | None = None,
    draws: int = PRIOR_DRAWS,
    seed: int = FIT_DEFAULTS["seed"],
) -> xr.DataArray:
    """Prior draws of ``tau`` (chain, draw, cell, outcome) in original units.

    Use it to check that the priors (natural units; ``fit.priors`` shows them) allow the effects
    you find plausible.
    """
    options = _canonical_options(
        factors=tuple(factors) if factors is not None else None,
        interactions=tuple(tuple(m) for m in interactions),
        priors=dict(priors or {}),
        prior_scale=prior_scale,
        pooling_scale=pooling_scale,
        outcomes=tuple(outcomes) if outcomes else None,
        baseline=False,
    )
    inputs = inputs_from_options(table, options)
    model = model_of(inputs, options)
    return prior_group(model, draws, seed, {})["tau"]


__all__ = [
    "Fit",
    "FitError",
    "cell_share",
    "fit",
    "fit_summary",
    "inputs_from_options",
    "prior_predictive",
    "table_fingerprint",
]
