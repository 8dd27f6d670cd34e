"""Several experiments as the levels of one factor: combining their cell statistics and effect
tables into one, and selecting one experiment's cells back out.

Pooling experiments (or waves of one, or an experiment and its rollout's randomized holdout) in
one fit only needs an *experiment factor*: each experiment's cells get its label as their level
of that factor, and the hierarchical model pools the experiments like any other factor, so a small
new experiment borrows strength from earlier ones. Each experiment is aggregated where its data
lives (:func:`bayesdecide.cell_stats`), then:

- :func:`combine_cells` stacks cell statistics of experiments measured with the same columns (one
  ``CellStats``; the checks and the regression adjustment then see every experiment's rows);
- :func:`combine_effects` stacks effect tables, including ones built from published estimates
  and standard errors (:func:`bayesdecide.model.summary.table_from_summary`);
- :func:`experiment_view` selects one experiment's cells of a fit-like object, with its own mix,
  for a decision about that experiment's population.

A cell's label is its levels joined by ``" | "`` in the order of the factors, as everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import xarray as xr

from bayesdecide.data.cells import CELL_SEPARATOR, CellStats
from bayesdecide.data.spec import ExperimentSpec
from bayesdecide.errors import DataValidationError, SpecError


def _check_labels(labels: Sequence[str], factor: str) -> None:
    if not labels:
        raise SpecError(f"give at least one experiment to combine over {factor!r}")
    dups = sorted({x for x in labels if list(labels).count(x) > 1})
    if dups:
        raise SpecError(
            f"experiment label(s) {dups} used twice; every {factor!r} level must differ"
        )


def _relabel(ds: xr.Dataset, factor: str, label: str, factors: Sequence[str]) -> xr.Dataset:
    """``ds`` with ``factor = label`` on every cell and cell names rebuilt in ``factors`` order."""
    if factor in ds.coords:
        existing = {str(v) for v in np.asarray(ds[factor].values)}
        if existing != {label}:
            raise DataValidationError(
                f"experiment {label!r} already has a {factor!r} column with levels "
                f"{sorted(existing)}; rename the experiment factor ([data].experiment_factor)"
            )
    ds = ds.assign_coords({factor: ("cell", np.full(ds.sizes["cell"], label, dtype=object))})
    missing = [f for f in factors if f not in ds.coords]
    if missing:
        raise DataValidationError(
            f"experiment {label!r} has no grouping column(s) {missing}; every experiment needs "
            f"a level of each factor {list(factors)}"
        )
    names = [
        CELL_SEPARATOR.join(str(ds[f].values[i]) for f in factors) for i in range(ds.sizes["cell"])
    ]
    return ds.assign_coords(cell=names)


def combine_cells(
    parts: Mapping[str, CellStats], factor: str, factors: Sequence[str] | None = None
) -> CellStats:
    """One :class:`CellStats` of several experiments measured with the same spec.

    Parameters
    ----------
    parts:
        Experiment label -> its cell statistics (same outcomes, covariates and factors).
    factor:
        Name of the experiment factor; its levels are the labels.
    factors:
        Order of the grouping factors of the result (default: ``factor`` first, then the
        experiments' factors); it must contain ``factor``.

    Returns
    -------
    CellStats
        Cells of every experiment (sums in the data's units, as for one experiment); the spec is
        the experiments' spec with ``factor`` among its groups.
    """
    labels = [str(x) for x in parts]
    _check_labels(labels, factor)
    first = next(iter(parts.values()))
    base = first.spec
    for label, cs in parts.items():
        if (cs.spec.outcome_names, cs.spec.covariates, tuple(cs.spec.groups)) != (
            base.outcome_names,
            base.covariates,
            tuple(base.groups),
        ):
            raise DataValidationError(
                f"experiment {label!r} was aggregated with another spec (outcomes, covariates or "
                "factors differ); aggregate every experiment with the same card"
            )
    order = list(factors) if factors is not None else [factor, *base.groups]
    if factor not in order or set(order) != {factor, *base.groups}:
        raise SpecError(
            f"factors {order} must be the experiments' factors {list(base.groups)} plus {factor!r}"
        )
    dss = [_relabel(cs.ds, factor, str(label), order) for label, cs in parts.items()]
    ds = xr.concat(dss, dim="cell", coords="different", compat="equals", join="exact")
    ds.attrs = {
        **first.ds.attrs,
        "factors": order,
        "source": "; ".join(f"{lb}: {cs.ds.attrs.get('source', '')}" for lb, cs in parts.items()),
        "experiments": labels,
    }
    spec = replace(base, groups=tuple(order))
    dropped: dict[str, int] = {}
    for cs in parts.values():
        for arm, n in cs.dropped.items():
            dropped[arm] = dropped.get(arm, 0) + int(n)
    return CellStats(ds=ds, spec=spec, dropped=dropped)


def _cell_table(table: xr.Dataset, outcomes: list[str], label: str) -> xr.Dataset:
    """The per-cell variables of an EffectTable over ``outcomes`` (missing ones NaN)."""
    if "effect" not in table or "effect_cov" not in table:
        raise DataValidationError(
            f"experiment {label!r}: not an EffectTable (needs 'effect' and 'effect_cov'); build "
            "it with bayesdecide.cell_effects or table_from_summary"
        )
    if "treatment_arm" in table.dims:
        raise DataValidationError(
            f"experiment {label!r} has several treatment arms (a treatment_arm dim); pooling "
            "experiments is for two-arm EffectTables: analyse the multi-arm experiment on its own"
        )
    have = [str(o) for o in table["outcome"].values]
    unknown = [o for o in have if o not in outcomes]
    if unknown:
        raise DataValidationError(
            f"experiment {label!r} reports outcome(s) {unknown}, which the other experiments "
            f"do not measure ({outcomes}); rename them to the card's outcome names or drop them"
        )
    n_cells = table.sizes["cell"]
    out = xr.Dataset(coords={c: table[c] for c in table.coords if table[c].dims == ("cell",)})
    effect = table["effect"].reindex(outcome=outcomes)
    cov = table["effect_cov"].reindex(outcome=outcomes, outcome_b=outcomes)
    out["effect"] = effect.drop_vars([c for c in effect.coords if c not in ("cell", "outcome")])
    out["effect_cov"] = cov.drop_vars(
        [c for c in cov.coords if c not in ("cell", "outcome", "outcome_b")]
    )
    for name in ("control_mean", "control_se"):
        if name in table:
            v = table[name].reindex(outcome=outcomes)
            out[name] = v.drop_vars([c for c in v.coords if c not in ("cell", "outcome")])
        else:
            out[name] = (("cell", "outcome"), np.full((n_cells, len(outcomes)), np.nan))
    for name in ("n_control", "n_treatment"):
        if name not in table:
            raise DataValidationError(
                f"experiment {label!r} has no unit counts ({name}); give the units per cell (the "
                "n column of published estimates) so it is scaled like the other experiments"
            )
        out[name] = table[name].astype(float)
    finite = np.isfinite(np.asarray(table["effect"].values, dtype=float)).any(axis=1)
    observed = table["observed"].values.astype(bool) & finite if "observed" in table else finite
    out["observed"] = ("cell", observed)
    return out


def combine_effects(
    tables: Mapping[str, xr.Dataset], factor: str, factors: Sequence[str] | None = None
) -> xr.Dataset:
    """One EffectTable of several experiments (row-level, published estimates, or a rollout).

    Parameters
    ----------
    tables:
        Experiment label -> its EffectTable. A table that already has a ``factor`` coordinate (an
        earlier combination, e.g. a pooled fit's table) keeps its levels; its key is ignored.
    factor:
        The experiment factor.
    factors:
        Order of the result's factors (default: ``factor`` first, then the first table's).

    Returns
    -------
    xarray.Dataset
        ``effect``, ``effect_cov``, ``control_mean``, ``control_se`` (NaN where unknown, e.g.
        published estimates), ``n_control``, ``n_treatment`` and ``observed`` over the cells of
        every experiment, in the outcomes' units per assigned unit. Outcomes an experiment did not
        report are NaN there (the model uses what each cell observed). Variables not per cell
        (regression slopes) are dropped.
    """
    if not tables:
        raise SpecError(f"give at least one experiment to combine over {factor!r}")
    first = next(iter(tables.values()))
    base_factors = [f for f in first.attrs.get("factors", []) if f != factor]
    order = list(factors) if factors is not None else [factor, *base_factors]
    outcomes = [str(o) for o in first["outcome"].values]
    parts, seen = [], []
    for label, table in tables.items():
        cells = _cell_table(table, outcomes, str(label))
        if factor in table.coords:  # already labelled (an earlier combination): keep its levels
            names = [
                CELL_SEPARATOR.join(str(cells[f].values[i]) for f in order)
                for i in range(cells.sizes["cell"])
            ]
            cells = cells.assign_coords(cell=names)
            seen += list(dict.fromkeys(str(v) for v in cells[factor].values))
        else:
            cells = _relabel(cells, factor, str(label), order)
            seen.append(str(label))
        parts.append(cells)
    _check_labels(seen, factor)
    out = xr.concat(parts, dim="cell", coords="different", compat="equals", join="exact")
    out.attrs = {
        "factors": order,
        "adjusted": int(any(t.attrs.get("adjusted", 0) for t in tables.values())),
        "source": "combined",
        "experiments": seen,
    }
    return out


def experiment_levels(table: xr.Dataset, factor: str) -> list[str]:
    """The levels of ``factor`` in a table, in order of first appearance."""
    if factor not in table.coords:
        return []
    return list(dict.fromkeys(str(v) for v in np.asarray(table[factor].values)))


@dataclass
class ExperimentView:
    """One experiment's cells of a fit (duck-typed like a :class:`~bayesdecide.Fit` for
    :class:`~bayesdecide.decide.Decision`): ``tau``, ``cell_share`` (that experiment's own mix,
    summing to 1), ``effects`` and ``diagnostics`` (the whole fit's)."""

    fit: Any
    factor: str
    level: str
    tau: xr.DataArray = field(init=False)
    cell_share: xr.DataArray = field(init=False)
    effects: xr.Dataset = field(init=False)

    def __post_init__(self) -> None:
        tau = self.fit.tau
        if self.factor not in tau.coords:
            raise SpecError(f"the fit has no factor {self.factor!r}; its cells cannot be selected")
        labels = np.asarray(tau[self.factor].values).astype(str)
        keep = labels == str(self.level)
        if not keep.any():
            raise SpecError(
                f"the fit has no cells of {self.factor} = {self.level!r}; levels: "
                f"{sorted(set(labels))}"
            )
        cells = tau["cell"].values[keep]
        self.tau = tau.sel(cell=cells)
        share = self.fit.cell_share.sel(cell=cells)
        self.cell_share = share / share.sum()
        self.effects = self.fit.effects.sel(cell=cells)

    @property
    def diagnostics(self) -> dict[str, Any]:
        return dict(self.fit.diagnostics)

    @property
    def priors(self) -> Any:
        """The whole fit's priors (natural units; :attr:`bayesdecide.Fit.priors`), None without."""
        return getattr(self.fit, "priors", None)

    @property
    def diagnostics_ok(self) -> bool:
        return bool(self.diagnostics.get("ok", False))

    @property
    def lineage(self) -> dict[str, Any]:
        return dict(getattr(self.fit, "lineage", {}) or {})

    def save(self, path: Any) -> Any:
        """Save the whole fit (every experiment), so the run can be re-rendered."""
        return self.fit.save(path)


def experiment_view(fit: Any, factor: str, level: str) -> ExperimentView:
    """The cells of ``fit`` whose ``factor`` is ``level``, with that experiment's mix."""
    return ExperimentView(fit, factor, str(level))


def without_factor(spec: ExperimentSpec, factor: str) -> ExperimentSpec:
    """``spec`` without grouping factor ``factor`` and its declared levels (the spec each
    experiment's rows are read with, before the experiment factor is added)."""
    return replace(
        spec,
        groups=tuple(g for g in spec.groups if g != factor),
        levels={f: lv for f, lv in dict(spec.levels).items() if f != factor},
    )


__all__ = [
    "ExperimentView",
    "combine_cells",
    "combine_effects",
    "experiment_levels",
    "experiment_view",
    "without_factor",
]
