"""Multi-arm EffectTables in the model: every (treatment arm, outcome) pair is one modelled outcome.

A k-arm experiment's EffectTable (:mod:`bayesdecide.data.effects`) has ``effect`` (cell,
treatment_arm, outcome) and the joint sampling covariance over arms and outcomes, including the
covariance the shared control induces between arms. The model fits it as a two-arm table whose
outcomes are the pairs ``"<arm>:<outcome>"`` (arm-major order): each arm's effect on each outcome
gets its own hierarchy (hypermean, level effects, spreads), and the cells' joint covariance over
pairs couples them exactly as the data do. Every arm x factor interaction is therefore in the
model already (an arm's risk-band effects are its own); an interaction naming ``treatment_arm``
(a multi-arm card may declare one) is read without it (:func:`arm_interactions`). Nothing is pooled
across arms: with two or three arms there is too little to learn a between-arm spread from. The Fit's InferenceData then splits every ``outcome``
dim back into (``treatment_arm``, ``outcome``) (and ``outcome_b`` into ``treatment_arm_b``,
``outcome_b``), so ``fit.tau`` has dims (chain, draw, cell, treatment_arm, outcome) in the
outcomes' own units per assigned unit, the layout the decision layer reads. The control-arm
means (``alpha``) are the control's, one set for all arms.

Priors (:func:`expand_priors`) may name an outcome (the prior applies to that outcome in every arm)
or a pair ``"<arm>:<outcome>"`` (that arm only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from bayesdecide.data.effects import is_multi_arm
from bayesdecide.errors import SpecError

ARM_DIM = "treatment_arm"
SEPARATOR = ":"
#: per modelled outcome (cell, outcome): the units of the arm that outcome belongs to
ARM_UNITS = "n_treatment_by_outcome"


def pair(arm: str, outcome: str) -> str:
    """The modelled outcome of one arm's effect on one outcome."""
    return f"{arm}{SEPARATOR}{outcome}"


def arms_of(table: xr.Dataset) -> list[str]:
    return [str(a) for a in table[ARM_DIM].values]


def outcomes_of(table: xr.Dataset) -> list[str]:
    return [str(o) for o in table["outcome"].values]


def flatten_arms(table: xr.Dataset, outcomes: Sequence[str] | None = None) -> xr.Dataset:
    """A multi-arm EffectTable as a two-arm one over ``"<arm>:<outcome>"`` outcomes (module
    docstring), for ``outcomes`` only when given; ``n_treatment`` (cell) becomes the units of all
    treatment arms, and ``n_treatment_by_outcome`` (cell, outcome) keeps each pair's arm's units
    (for the pooling scale). A two-arm table is returned unchanged."""
    if not is_multi_arm(table):
        return table
    if outcomes is not None:
        unknown = [o for o in outcomes if o not in outcomes_of(table)]
        if unknown:
            raise SpecError(f"outcomes {unknown} are not in the EffectTable ({outcomes_of(table)})")
        table = table.sel(outcome=list(outcomes), outcome_b=list(outcomes))
    arms, outcomes = arms_of(table), outcomes_of(table)
    names = [pair(a, o) for a in arms for o in outcomes]
    c, a, k = table.sizes["cell"], len(arms), len(outcomes)
    effect = table["effect"].transpose("cell", ARM_DIM, "outcome").values.reshape(c, a * k)
    cov = (
        table["effect_cov"]
        .transpose("cell", ARM_DIM, "outcome", "treatment_arm_b", "outcome_b")
        .values.reshape(c, a * k, a * k)
    )
    n_arm = table["n_treatment"].transpose("cell", ARM_DIM).values.astype(float)
    observed = table["observed"].transpose("cell", ARM_DIM).values.astype(bool)
    data: dict[str, Any] = {
        "effect": (("cell", "outcome"), effect),
        "effect_cov": (("cell", "outcome", "outcome_b"), cov),
        "n_treatment": (("cell",), n_arm.sum(axis=1)),
        ARM_UNITS: (("cell", "outcome"), np.repeat(n_arm, k, axis=1)),
        "observed": (("cell", "outcome"), np.repeat(observed, k, axis=1)),
    }
    for name in ("n_control",):
        if name in table:
            data[name] = (("cell",), table[name].values)
    for name in ("control_mean", "control_se"):
        if name in table:
            data[name] = (("cell", "outcome"), np.tile(table[name].values, (1, a)))
    coords: dict[str, Any] = {"cell": table["cell"].values, "outcome": names, "outcome_b": names}
    for name, coord in table.coords.items():
        if coord.dims == ("cell",) and name != "cell":
            coords[name] = coord
    out = xr.Dataset(data, coords=coords)
    out.attrs = {**table.attrs, "arms": arms, "arm_outcomes": outcomes}
    return out


def arm_interactions(interactions: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    """The interactions of a multi-arm fit's per-arm hierarchy: ``treatment_arm`` dropped from
    each (every arm has its own terms, so an arm x factor interaction is the factor's own term
    in each arm's hierarchy), keeping those that still name two or more factors, once each."""
    out: list[tuple[str, ...]] = []
    for members in interactions:
        rest = tuple(m for m in members if m != ARM_DIM)
        if len(rest) >= 2 and rest not in out:
            out.append(rest)
    return out


def expand_priors(priors: Mapping[str, Any] | None, arms: Sequence[str] | None) -> dict[str, Any]:
    """Per-outcome prior mappings of a multi-arm fit over its ``"<arm>:<outcome>"`` outcomes: a
    key naming an outcome applies to it in every arm, a pair to that arm (the pair wins). Without
    ``arms`` (a two-arm fit) the priors are returned as they are."""
    priors = dict(priors or {})
    if not arms:
        return priors
    out: dict[str, Any] = {}
    for name, given in priors.items():
        if isinstance(given, Mapping) and "family" not in given:
            expanded: dict[str, Any] = {}
            for key, value in given.items():
                if SEPARATOR not in str(key):
                    for arm in arms:
                        expanded.setdefault(pair(arm, str(key)), value)
            for key, value in given.items():
                if SEPARATOR in str(key):
                    expanded[str(key)] = value
            out[name] = expanded
        else:
            out[name] = given
    return out


def split_arms(ds: xr.Dataset | None, arms: Sequence[str], outcomes: Sequence[str]) -> Any:
    """Every ``outcome`` / ``outcome_b`` dim over the ``"<arm>:<outcome>"`` pairs of ``ds`` split
    into (``treatment_arm``, ``outcome``) / (``treatment_arm_b``, ``outcome_b``); the control's
    ``alpha``, ``control_mean`` and ``control_se`` keep the first arm's copy (they are the
    control's, the same data for every arm). Other dims (``modelled_outcome``) stay as pairs."""
    if ds is None:
        return None
    names = [pair(a, o) for a in arms for o in outcomes]
    plan = [
        (dim, f"{ARM_DIM}{suffix}")
        for dim, suffix in (("outcome", ""), ("outcome_b", "_b"))
        if dim in ds.dims and [str(v) for v in ds[dim].values] == names
    ]
    if not plan:
        return ds
    new_coords: dict[str, Any] = {}
    for dim, arm_dim in plan:
        new_coords[arm_dim] = list(arms)
        new_coords[dim] = list(outcomes)
        for name, coord in ds.coords.items():
            if coord.dims == (dim,) and name != dim:  # label, unit: the first arm's
                new_coords[name] = (dim, np.asarray(coord.values)[: len(outcomes)])
    variables = {}
    for name, da in ds.data_vars.items():
        values, dims = np.asarray(da.values), list(da.dims)
        for dim, arm_dim in plan:
            if dim in dims:
                axis = dims.index(dim)
                shape = (*values.shape[:axis], len(arms), len(outcomes), *values.shape[axis + 1 :])
                values = values.reshape(shape)
                dims[axis : axis + 1] = [arm_dim, dim]
        out = xr.DataArray(values, dims=dims, attrs=da.attrs)
        if name in ("alpha", "control_mean", "control_se") and ARM_DIM in dims:
            out = out.isel({ARM_DIM: 0})
        variables[name] = out
    split_dims = {d for d, _ in plan}
    coords = {
        name: coord
        for name, coord in ds.coords.items()
        if not (set(coord.dims) & split_dims) and name not in new_coords
    }
    return xr.Dataset(variables, coords={**coords, **new_coords}, attrs=ds.attrs)


def join_arms(ds: xr.Dataset) -> xr.Dataset:
    """The inverse of :func:`split_arms` for the variables with both ``treatment_arm`` and
    ``outcome`` dims: back to one ``outcome`` dim over the ``"<arm>:<outcome>"`` pairs (the
    model's own layout). Variables without an arm dim are kept as they are."""
    if ARM_DIM not in ds.dims:
        return ds
    arms = [str(a) for a in ds[ARM_DIM].values]
    outcomes = [str(o) for o in ds["outcome"].values]
    names = [pair(a, o) for a in arms for o in outcomes]
    variables = {}
    for name, da in ds.data_vars.items():
        if ARM_DIM in da.dims and "outcome" in da.dims:
            rest = [d for d in da.dims if d not in (ARM_DIM, "outcome")]
            da = da.transpose(*rest, ARM_DIM, "outcome")
            values = np.asarray(da.values).reshape(*da.shape[:-2], len(names))
            variables[name] = xr.DataArray(values, dims=(*rest, "outcome"), attrs=da.attrs)
        elif "outcome" not in da.dims:
            variables[name] = da.variable
    coords = {
        name: coord
        for name, coord in ds.coords.items()
        if not ({ARM_DIM, "outcome"} & set(coord.dims))
    }
    return xr.Dataset(variables, coords={**coords, "outcome": names}, attrs=ds.attrs)


__all__ = [
    "ARM_DIM",
    "arm_interactions",
    "ARM_UNITS",
    "SEPARATOR",
    "expand_priors",
    "flatten_arms",
    "join_arms",
    "pair",
    "split_arms",
]
