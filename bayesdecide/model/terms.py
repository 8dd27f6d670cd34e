"""The hierarchy, defined once: a list of terms, each a set of levels that cells share.

For modelled outcome ``k`` and cell ``c`` (units: see :mod:`bayesdecide.model.inputs`)::

    theta[c, k] = sum_t u_t[level_t(c), k] + e[c, k]
    u_t[l, k]   ~ Normal(0, sigma_t[k])     independently over levels l (the textbook
                                            random-effects model; "mu" is the one-level term)
    e[c, k]     ~ Normal(0, sigma_cell[k])  the cell's own deviation

Terms: ``mu`` (one level shared by every cell; its prior is the hypermean's prior), one term per
grouping factor (levels: the factor's levels) and one per chosen interaction (levels: the
combinations of the members' levels that occur in the cells, labelled ``"a | b"``). When some term
already gives every cell a level of its own (one factor whose levels are the cells, as in eight
schools), a separate cell deviation would describe the same spread twice, so the model has none.

Everything that reads the hierarchy reads this: the PyMC reference model
(:mod:`bayesdecide.model.reference`), the marginal sampler (:mod:`bayesdecide.model.marginal`),
the posterior draws and new-level prediction (:mod:`bayesdecide.model.posterior`). A new kind of
term is one more :class:`Term` built in :func:`build_hierarchy`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from bayesdecide.errors import SpecError

INTERCEPT = "mu"
LEVEL_SEPARATOR = " | "


def interaction_name(members: Sequence[str]) -> str:
    """Name of the interaction of ``members``: ``"product_x_region"``."""
    return "_x_".join(members)


def spread_name(term: str) -> str:
    """Prior name of a term's spread: ``"sigma_region"`` (``"mu"`` for the intercept)."""
    return INTERCEPT if term == INTERCEPT else f"sigma_{term}"


@dataclass(frozen=True)
class Term:
    """One term of the hierarchy.

    Attributes
    ----------
    name:
        ``"mu"``, a factor name, or an interaction name (``"segment_x_risk_band"``).
    members:
        The factors it is made of (empty for ``mu``).
    levels:
        Level labels (``("all",)`` for ``mu``; ``"a | b"`` for interactions).
    codes:
        (cells,) index of each cell's level.
    """

    name: str
    members: tuple[str, ...]
    levels: tuple[str, ...]
    codes: np.ndarray

    @property
    def is_intercept(self) -> bool:
        return self.name == INTERCEPT

    @property
    def prior_name(self) -> str:
        return spread_name(self.name)

    def label_of(self, level_of_factor: Mapping[str, str]) -> str:
        """This term's level label for one combination of factor levels."""
        if self.is_intercept:
            return self.levels[0]
        return LEVEL_SEPARATOR.join(str(level_of_factor[m]) for m in self.members)


@dataclass(frozen=True)
class Hierarchy:
    """Cells, the grouping factors and the terms (``mu`` first), plus the cell deviation flag."""

    cells: tuple[str, ...]
    factors: tuple[str, ...]
    terms: tuple[Term, ...]
    cell_deviation: bool

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.terms]

    @property
    def level_terms(self) -> tuple[Term, ...]:
        """Every term but ``mu``."""
        return tuple(t for t in self.terms if not t.is_intercept)

    @property
    def codes(self) -> np.ndarray:
        """(cells, terms) level index of every cell in every term."""
        return np.stack([t.codes for t in self.terms], axis=1).astype(np.int64)

    @property
    def prior_names(self) -> list[str]:
        """Names of the priors this hierarchy needs, in model order."""
        names = [t.prior_name for t in self.terms]
        return [*names, "sigma_cell"] if self.cell_deviation else names

    def term(self, name: str) -> Term:
        for t in self.terms:
            if t.name == name:
                return t
        raise SpecError(f"no term {name!r}; terms are {self.names}")


def factor_labels(table: xr.Dataset, factor: str) -> list[str]:
    """Each cell's level of ``factor`` (a coord along ``cell`` of the EffectTable), as text."""
    if factor not in table.coords or table[factor].dims != ("cell",):
        available = [c for c in table.coords if table[c].dims == ("cell",) and c != "cell"]
        raise SpecError(
            f"factor {factor!r} is not a grouping column of the data; grouping columns: {available}"
        )
    return [str(v) for v in np.asarray(table[factor].values)]


def _term(name: str, members: tuple[str, ...], labels: list[str]) -> Term:
    levels = list(dict.fromkeys(labels))
    index = {lv: i for i, lv in enumerate(levels)}
    return Term(name, members, tuple(levels), np.array([index[v] for v in labels], np.int64))


def build_hierarchy(
    table: xr.Dataset,
    factors: Sequence[str],
    interactions: Sequence[Sequence[str]] = (),
) -> Hierarchy:
    """The terms of the model for an EffectTable: ``mu``, one per factor, one per interaction."""
    factors = tuple(factors)
    dupes = sorted({f for f in factors if factors.count(f) > 1})
    if dupes:
        raise SpecError(f"factors {dupes} are listed more than once")
    cells = tuple(str(c) for c in table["cell"].values)
    labels = {f: factor_labels(table, f) for f in factors}
    terms = [Term(INTERCEPT, (), ("all",), np.zeros(len(cells), np.int64))]
    terms += [_term(f, (f,), labels[f]) for f in factors]
    seen = set(factors)
    for members in interactions:
        members = (members,) if isinstance(members, str) else tuple(members)
        unknown = [m for m in members if m not in factors]
        if len(members) < 2 or unknown:
            raise SpecError(
                f"interaction {list(members)}: name two or more of the factors {list(factors)}"
                + (f" ({unknown} not among them)" if unknown else "")
            )
        name = interaction_name(members)
        if name in seen:
            raise SpecError(f"interaction {list(members)} is listed more than once")
        seen.add(name)
        combo = [LEVEL_SEPARATOR.join(labels[m][c] for m in members) for c in range(len(cells))]
        terms.append(_term(name, members, combo))
    saturated = any(len(t.levels) == len(cells) and not t.is_intercept for t in terms)
    return Hierarchy(cells, factors, tuple(terms), cell_deviation=not saturated and len(cells) > 1)


__all__ = [
    "INTERCEPT",
    "LEVEL_SEPARATOR",
    "Hierarchy",
    "Term",
    "build_hierarchy",
    "factor_labels",
    "interaction_name",
    "spread_name",
]
