"""Policies: which cells a launch treats, and (with several treatment arms) with which arm.

A :class:`Policy` is data, so a TOML model card can hold it:

* ``treat_none()`` / ``treat_all()``;
* a rule over group labels, combined with AND across factors::

      Policy("medium_high", rule={"risk_band": {"in": ["Medium risk", "High risk"]}})
      Policy("not_apac", rule={"region": {"not_in": ["APAC"]}})
      Policy("some_products", rule={"product": ["A", "B"]})   # a list means "in"

* an explicit set of cells: ``Policy("pilot", cells=["SMB | EMEA | High risk", ...])``.

Multi-arm experiments (k treatment arms against one control): a policy assigns **one arm, or
none, per cell**. A rule or a cell set names the arm its cells get, and a policy can give
different arms to different cells with one rule per arm (the rules must not overlap)::

      treat_all(arm="email")                                   # each arm to everyone
      Policy("email_low", rule={"risk_band": ["Low risk"]}, arm="email")
      Policy("by_risk", arms={"email": {"risk_band": ["Low risk", "Medium risk"]},
                              "outreach": {"risk_band": ["High risk"]}})

Internally a policy is a 0/1 mask over *options*: the cells (two arms), or the (cell, arm) pairs
in cell-major order (option ``c * A + a`` gives arm ``a`` to cell ``c``), at most one per cell.

The Bayes-optimal targeting policy (named ``"optimal"``) is found by
:func:`bayesdecide.decide.optimal_policy`; when group rules change it, the optimum without them is
evaluated beside it as ``"optimal_without_group_rules"`` (:class:`bayesdecide.decide.Decision`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.decide._draws import ARM_DIM, factor_labels, factor_names, tau_arms
from bayesdecide.errors import SpecError

TREAT_NONE = "treat_none"
TREAT_ALL = "treat_all"
OPTIMAL = "optimal"
OPTIMAL_WITHOUT_GROUP_RULES = "optimal_without_group_rules"

_OPS = ("in", "not_in")


def _normalise_rule(rule: Mapping[str, Any], name: str) -> dict[str, dict[str, tuple]]:
    if not isinstance(rule, Mapping):
        raise SpecError(
            f"policy {name!r}: rule must be a mapping {{factor: {{'in': [...]}}}}, "
            f"got {type(rule).__name__}"
        )
    out: dict[str, dict[str, tuple]] = {}
    for factor, cond in rule.items():
        if isinstance(cond, Mapping):
            unknown = [op for op in cond if op not in _OPS]
            if unknown or not cond:
                raise SpecError(
                    f"policy {name!r}: condition on {factor!r} uses {list(cond)}; use 'in' "
                    "and/or 'not_in' with a list of levels"
                )
            norm = {}
            for op, levels in cond.items():
                if isinstance(levels, str) or not isinstance(levels, Sequence):
                    levels = [levels]
                norm[op] = tuple(levels)
        elif isinstance(cond, str) or not isinstance(cond, Sequence):
            norm = {"in": (cond,)}
        else:
            norm = {"in": tuple(cond)}
        out[str(factor)] = norm
    return out


@dataclass(frozen=True)
class Policy:
    """A launch policy: a rule over factor labels (AND across factors) or an explicit cell set.

    Parameters
    ----------
    name:
        Policy name used in every table.
    rule:
        ``{factor: {"in": [levels]} | {"not_in": [levels]} | [levels]}``; ``{}`` treats everyone.
    cells:
        Explicit cell labels to treat (``()`` treats nobody). Give ``rule`` or ``cells``, not both.
    label:
        Display name in memos and plots (default: :data:`DEFAULT_LABELS` for the built-in policies,
        else the name).
    description:
        What the policy does, in words.
    arm:
        Multi-arm experiments: the treatment arm the cells of ``rule`` or ``cells`` get (required
        there unless the policy treats nobody; not allowed with two arms).
    arms:
        Multi-arm experiments, instead of ``rule``/``cells`` and ``arm``: ``{arm: rule}``, the
        cells each arm goes to (rules as for ``rule``; a cell matched by two arms is an error).
    """

    name: str
    rule: Mapping[str, Any] | None = None
    cells: tuple[str, ...] | None = None
    label: str = field(default="", compare=False)
    description: str = field(default="", compare=False)
    arm: str | None = None
    arms: Mapping[str, Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpecError("a policy needs a non-empty string name")
        given = [self.rule is not None, self.cells is not None, self.arms is not None]
        if sum(given) != 1:
            raise SpecError(
                f"policy {self.name!r}: give exactly one of rule={{factor: {{'in': [...]}}}}, "
                "cells=[...] or (with several treatment arms) arms={arm: rule}"
            )
        if self.rule is not None:
            object.__setattr__(self, "rule", _normalise_rule(self.rule, self.name))
        if self.cells is not None:
            cells = (self.cells,) if isinstance(self.cells, str) else self.cells
            object.__setattr__(self, "cells", tuple(str(c) for c in cells))
        if self.arm is not None:
            if self.arms is not None:
                raise SpecError(
                    f"policy {self.name!r}: give arm (with rule or cells) or arms, not both"
                )
            object.__setattr__(self, "arm", str(self.arm))
        if self.arms is not None:
            if not isinstance(self.arms, Mapping) or not self.arms:
                raise SpecError(
                    f"policy {self.name!r}: arms must be a non-empty mapping {{arm: rule}}, e.g. "
                    "{'email': {'risk_band': ['Low risk']}}"
                )
            object.__setattr__(
                self,
                "arms",
                {str(a): _normalise_rule(r, self.name) for a, r in self.arms.items()},
            )
        if not self.label:
            object.__setattr__(self, "label", DEFAULT_LABELS.get(self.name, self.name))

    @property
    def treats_nobody(self) -> bool:
        """True for an empty cell list (the status quo)."""
        return self.cells is not None and not self.cells

    def assignment(self, tau: xr.DataArray) -> np.ndarray:
        """Integer vector over ``tau``'s cells: the index of the treatment arm each cell gets
        (position on ``tau``'s ``treatment_arm`` dim; 0 with two arms), -1 for untreated cells."""
        arms = tau_arms(tau)
        if arms is None:
            if self.arm is not None or self.arms is not None:
                raise SpecError(
                    f"policy {self.name!r} names treatment arms, but the draws have no "
                    "treatment_arm dim (a two-arm experiment); remove arm/arms from the policy"
                )
            return np.where(self._matches(tau, self.rule, self.cells), 0, -1)
        if self.arms is not None:
            out = np.full(tau.sizes["cell"], -1)
            for arm, rule in self.arms.items():
                hit = self._matches(tau, rule, None)
                clash = hit & (out >= 0)
                if clash.any():
                    cell = str(tau["cell"].values[int(np.argmax(clash))])
                    raise SpecError(
                        f"policy {self.name!r} gives cell {cell!r} both {arms[out[clash][0]]!r} "
                        f"and {arm!r}; make the arms' rules disjoint (one arm per cell)"
                    )
                out[hit] = self._arm_index(arm, arms)
            return out
        hit = self._matches(tau, self.rule, self.cells)
        if self.arm is not None:
            return np.where(hit, self._arm_index(self.arm, arms), -1)
        if hit.any():
            raise SpecError(
                f"policy {self.name!r} treats cells but names no arm; with several treatment "
                f"arms give arm = one of {arms} (or arms = {{arm: rule}})"
            )
        return np.full(len(hit), -1)

    def _arm_index(self, arm: str, arms: list[str]) -> int:
        if arm not in arms:
            raise SpecError(
                f"policy {self.name!r} names arm {arm!r}, which is not a treatment arm; the arms "
                f"are {arms}"
            )
        return arms.index(arm)

    def mask(self, tau: xr.DataArray) -> np.ndarray:
        """0/1 float vector over ``tau``'s options: its cells (two arms; 1 where the policy treats
        the cell) or its (cell, arm) pairs, cell-major (multi-arm; 1 for the arm a cell gets)."""
        z = self.assignment(tau)
        n_arms = tau.sizes.get(ARM_DIM, 1)
        out = np.zeros((len(z), n_arms))
        treated = z >= 0
        out[np.flatnonzero(treated), z[treated]] = 1.0
        return out.ravel()

    def _matches(
        self,
        tau: xr.DataArray,
        rule: Mapping[str, Any] | None,
        cell_list: tuple[str, ...] | None,
    ) -> np.ndarray:
        """Boolean vector over ``tau``'s cells: the cells a rule (or a cell list) selects."""
        cells = pd.Index([str(c) for c in tau["cell"].values])
        if cell_list is not None:
            unknown = [c for c in cell_list if c not in cells]
            if unknown:
                raise SpecError(
                    f"policy {self.name!r} names unknown cells {unknown[:5]}; cells look like "
                    f"{list(cells[:3])}"
                )
            return np.asarray(cells.isin(cell_list))
        keep = np.ones(len(cells), dtype=bool)
        assert rule is not None
        for factor, cond in rule.items():
            if factor not in factor_names(tau):
                raise SpecError(
                    f"policy {self.name!r}: unknown factor {factor!r}; factors are "
                    f"{factor_names(tau)}"
                )
            labels = np.asarray([str(v) for v in factor_labels(tau, factor)])
            levels = list(pd.unique(pd.Series(labels)))
            for op, wanted in cond.items():
                wanted_s = [str(v) for v in wanted]
                unknown = [v for v in wanted_s if v not in levels]
                if unknown:
                    raise SpecError(
                        f"policy {self.name!r}: {factor!r} has no levels {unknown}; levels are "
                        f"{levels}"
                    )
                hit = np.isin(labels, wanted_s)
                keep &= hit if op == "in" else ~hit
        return keep

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name}
        if self.arms is not None:
            d["arms"] = {a: _rule_dict(r) for a, r in self.arms.items()}
        elif self.rule is not None:
            d["rule"] = _rule_dict(self.rule)
        else:
            d["cells"] = list(self.cells or ())
        if self.arm is not None:
            d["arm"] = self.arm
        if self.label != self.name:
            d["label"] = self.label
        if self.description:
            d["description"] = self.description
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Policy:
        valid = {"name", "rule", "cells", "label", "description", "arm", "arms"}
        unknown = set(d) - valid
        if unknown:
            raise SpecError(f"unknown policy keys {sorted(unknown)}; use {sorted(valid)}")
        if "name" not in d:
            raise SpecError("a policy needs a 'name'")
        text = {k: d[k] for k in ("label", "description") if k in d}
        plain = not ({"rule", "cells", "arms"} & set(d))
        if d["name"] == TREAT_NONE and plain:
            return treat_none(**text)
        if d["name"] == TREAT_ALL and plain and "arm" not in d:
            return treat_all(**text)
        return cls(
            name=d["name"],
            rule=d.get("rule"),
            cells=d.get("cells"),
            arm=d.get("arm"),
            arms=d.get("arms"),
            **text,
        )


def _rule_dict(rule: Mapping[str, Mapping[str, tuple]]) -> dict[str, dict[str, list]]:
    return {f: {op: list(v) for op, v in c.items()} for f, c in rule.items()}


DEFAULT_LABELS = {
    TREAT_NONE: "Treat none",
    TREAT_ALL: "Treat all",
    OPTIMAL: "Optimal targeting",
    OPTIMAL_WITHOUT_GROUP_RULES: "Optimal targeting without group rules",
}


def policy_id(label: str) -> str:
    """A policy id from a display name: lower case, words joined by ``_``
    (``"Treat medium and high risk"`` -> ``"treat_medium_and_high_risk"``)."""
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_")


def treat_none(label: str = "", description: str = "") -> Policy:
    """Treat nobody (launch value exactly 0)."""
    return Policy(TREAT_NONE, cells=(), label=label, description=description)


def treat_all_id(arm: str | None = None) -> str:
    """Id of the policy that treats everyone: ``treat_all``, or ``treat_all_<arm>`` (the arm as an
    id, e.g. ``treat_all_email``) for one arm of a multi-arm experiment."""
    return TREAT_ALL if arm is None else f"{TREAT_ALL}_{policy_id(str(arm))}"


def treat_all(label: str = "", description: str = "", arm: str | None = None) -> Policy:
    """Treat every eligible customer; with ``arm`` (multi-arm experiments), give that arm to
    everyone (id :func:`treat_all_id`, label ``Treat all (<arm>)`` by default)."""
    if arm is None:
        return Policy(TREAT_ALL, rule={}, label=label, description=description)
    return Policy(
        treat_all_id(arm),
        rule={},
        arm=arm,
        label=label or f"Treat all ({arm})",
        description=description,
    )


def as_policy(p: Policy | Mapping[str, Any]) -> Policy:
    """A :class:`Policy` from a Policy or its dict form."""
    return p if isinstance(p, Policy) else Policy.from_dict(p)


def policy_at_level(
    policy: Policy,
    level: Mapping[str, str],
    cells: Sequence[str],
    known: Mapping[str, Sequence[str]],
) -> Policy:
    """``policy`` restated for the cells of ``level`` (factor -> one label, often a new one).

    ``cells`` are the labels of the level's cells (:meth:`bayesdecide.Fit.predict_new`) and
    ``known`` the fitted levels of each factor. A rule's condition on a factor of ``level`` is
    decided by that factor's label: when it holds, the condition is dropped (the policy treats the
    level's cells as its other conditions say); when it fails, the policy treats nobody there
    (``{"region": ["North America", "Europe"]}`` in a new region). The levels a condition names
    must be fitted levels or the level's own label, so a misspelt level is an error, as in
    :meth:`Policy.mask`. A cell-set policy keeps the cells it names that are among ``cells`` (none
    when a label of ``level`` is new). Name, label and description are kept.
    """
    if policy.cells is not None:
        present = set(map(str, cells))
        return replace(policy, cells=tuple(c for c in policy.cells if c in present))
    assert policy.rule is not None
    rule: dict[str, dict[str, tuple]] = {}
    for factor, cond in policy.rule.items():
        if factor not in level:
            rule[factor] = dict(cond)
            continue
        label = str(level[factor])
        valid = list(dict.fromkeys([*map(str, known.get(factor, ())), label]))
        for op, wanted in cond.items():
            unknown = [str(v) for v in wanted if str(v) not in valid]
            if unknown:
                raise SpecError(
                    f"policy {policy.name!r}: {factor!r} has no levels {unknown}; levels are "
                    f"{valid}"
                )
            if (label in map(str, wanted)) != (op == "in"):
                return replace(policy, rule=None, cells=())
    return replace(policy, rule=rule)


def policy_masks(policies: Sequence[Policy], tau: xr.DataArray) -> np.ndarray:
    """(P, O) 0/1 masks over options (:meth:`Policy.mask`) for ``policies``; checks names are
    unique."""
    names = [p.name for p in policies]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"policy names must be unique; repeated: {dup}")
    if not policies:
        return np.zeros((0, tau.sizes["cell"] * tau.sizes.get(ARM_DIM, 1)))
    return np.stack([p.mask(tau) for p in policies])
