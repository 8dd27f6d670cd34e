"""The launch population: how many customers, which mix over cells, fixed cost, transport.

Launch value of a policy that treats cells ``treat[c]`` (0 or 1), in dollars::

    V = N * sum_c mix[c] * treat[c] * value[c] - fixed_cost(treat)

with ``value[c]`` the net value per assigned customer in cell ``c`` and ``fixed_cost(treat)`` equal
to ``fixed_cost`` when anything is treated (``"constant"``), or ``fixed_cost * max(treated_share,
min_cost_share)`` (``"treated_share"``, the seed's targeting rule with its 5% floor); treating
nobody costs 0.

The launch mix defaults to the experiment's. A different mix *transports* the effect by
post-stratification: give shares over the levels of one or more factors (``{"risk_band": {"Low
risk": 0.3, ...}}``; within each level the experiment's relative cell shares are kept; several
factors are raked to all margins), or shares over cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from bayesdecide.decide._draws import cell_vector, check_share, factor_labels, factor_names
from bayesdecide.errors import SpecError

FixedCostScaling = Literal["constant", "treated_share"]

MixSpec = xr.DataArray | Mapping[str, Any] | pd.Series | None


@dataclass(frozen=True)
class Population:
    """Who gets the launch and what it costs.

    Parameters
    ----------
    n_eligible:
        Eligible customers at launch (N, a count >= 0).
    mix:
        Launch mix. ``None``: the experiment's ``cell_share``. A mapping ``{factor: {level:
        share}}`` post-stratifies over factor levels; a mapping ``{cell: share}``, a Series or a
        DataArray over ``cell`` gives cell shares directly. Shares must sum to 1.
    fixed_cost:
        Fixed implementation cost in dollars, paid when anything is treated.
    transport_multiplier:
        Share of the experiment's benefit outcomes retained at launch (1 = no decay).
    fixed_cost_scaling:
        ``"constant"`` or ``"treated_share"`` (cost x max(treated share, ``min_cost_share``)).
    min_cost_share:
        Floor of the treated share in the ``"treated_share"`` rule (the seed's 5%).
    """

    n_eligible: float
    mix: MixSpec = None
    fixed_cost: float = 0.0
    transport_multiplier: float = 1.0
    fixed_cost_scaling: FixedCostScaling = "constant"
    min_cost_share: float = 0.05

    def __post_init__(self) -> None:
        for name in ("n_eligible", "fixed_cost", "transport_multiplier", "min_cost_share"):
            v = getattr(self, name)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise SpecError(f"population {name} is {v!r}; give a number") from None
            if not np.isfinite(v):
                raise SpecError(f"population {name} is {v}; give a finite number")
            object.__setattr__(self, name, v)
        if self.n_eligible < 0:
            raise SpecError(f"n_eligible is {self.n_eligible:g}; give a count >= 0")
        if self.fixed_cost < 0:
            raise SpecError(f"fixed_cost is {self.fixed_cost:g}; give a cost >= 0 dollars")
        if self.fixed_cost_scaling not in ("constant", "treated_share"):
            raise SpecError(
                f"fixed_cost_scaling {self.fixed_cost_scaling!r} is not 'constant' or "
                "'treated_share'"
            )
        if self.transport_multiplier <= 0:
            raise SpecError(
                f"transport_multiplier is {self.transport_multiplier:g}; give the share of the "
                "experiment's benefit kept at launch, > 0 (1 = no decay)"
            )
        if not 0 <= self.min_cost_share <= 1:
            raise SpecError(f"min_cost_share is {self.min_cost_share:g}; give a share in [0, 1]")

    def launch_mix(self, tau: xr.DataArray, cell_share: xr.DataArray | Any) -> np.ndarray:
        """The launch mix as a vector over ``tau``'s cells (sums to 1)."""
        cells = pd.Index(tau["cell"].values)
        base = check_share(cell_vector(cell_share, cells, "cell_share"), "cell_share")
        return resolve_mix(self.mix, tau, base)

    def share_scale(self, treated_share: np.ndarray | float) -> np.ndarray:
        """Fixed cost per dollar of ``fixed_cost`` for a launch treating ``treated_share`` of its
        customers (someone treated): 1 (``"constant"``) or ``max(share, min_cost_share)``
        (``"treated_share"``). The one implementation of the fixed-cost rule."""
        share = np.asarray(treated_share, dtype=float)
        if self.fixed_cost_scaling == "treated_share":
            return np.maximum(share, self.min_cost_share)
        return np.ones_like(share)

    def cost_scale(self, masks: np.ndarray, mix: np.ndarray) -> np.ndarray:
        """Fixed cost per dollar of ``fixed_cost`` for policies ``masks`` (P, C): shape (P,);
        0 for a policy that treats nobody."""
        any_treated = (masks * (mix > 0)).sum(axis=1) > 0
        return np.where(any_treated, self.share_scale(masks @ mix), 0.0)

    def to_dict(self) -> dict[str, Any]:
        mix = self.mix
        if isinstance(mix, xr.DataArray):
            mix = {str(c): float(v) for c, v in zip(mix["cell"].values, mix.values, strict=True)}
        elif isinstance(mix, pd.Series):
            mix = {str(k): float(v) for k, v in mix.items()}
        d = {
            "n_eligible": self.n_eligible,
            "fixed_cost": self.fixed_cost,
            "transport_multiplier": self.transport_multiplier,
            "fixed_cost_scaling": self.fixed_cost_scaling,
            "min_cost_share": self.min_cost_share,
        }
        if mix is not None:  # omitted (not None) so the dict can be written to TOML
            d["mix"] = mix
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Population:
        valid = set(cls.__dataclass_fields__)
        unknown = set(d) - valid
        if unknown:
            raise SpecError(f"unknown population keys {sorted(unknown)}; valid are {sorted(valid)}")
        return cls(**dict(d))


def resolve_mix(mix: MixSpec, tau: xr.DataArray, base: np.ndarray) -> np.ndarray:
    """Launch mix over cells from a mix spec and the experiment's cell shares ``base``."""
    cells = pd.Index(tau["cell"].values)
    if mix is None or (isinstance(mix, Mapping) and not mix):
        return base
    if isinstance(mix, xr.DataArray | pd.Series):
        return check_share(cell_vector(mix, cells, "launch mix"), "launch mix")
    if not isinstance(mix, Mapping):
        raise SpecError(
            f"launch mix is a {type(mix).__name__}; give {{factor: {{level: share}}}}, "
            "{cell: share}, a Series or a DataArray over cell"
        )
    keys = [str(k) for k in mix]
    factors = factor_names(tau)
    if all(isinstance(v, Mapping) for v in mix.values()):
        unknown = [k for k in keys if k not in factors]
        if unknown:
            raise SpecError(f"launch mix names unknown factors {unknown}; factors are {factors}")
        return _post_stratify(mix, tau, base)
    return check_share(cell_vector(dict(mix), cells, "launch mix"), "launch mix")


def _post_stratify(
    mix: Mapping[str, Mapping[Any, float]], tau: xr.DataArray, base: np.ndarray
) -> np.ndarray:
    """Rake the experiment's cell shares to the given factor margins (exact for one factor)."""
    margins = []
    for factor, shares in mix.items():
        labels = factor_labels(tau, factor)
        levels = list(pd.unique(pd.Series(labels)))
        given = {str(k): float(v) for k, v in shares.items()}
        unknown = [k for k in given if k not in [str(lv) for lv in levels]]
        if unknown:
            raise SpecError(
                f"launch mix for {factor!r} names unknown levels {unknown}; levels are {levels}"
            )
        missing = [lv for lv in levels if str(lv) not in given]
        if missing:
            raise SpecError(
                f"launch mix for {factor!r} is missing levels {missing}; give every level "
                "(0 for none)"
            )
        target = np.array([given[str(lv)] for lv in levels])
        target = check_share(target, f"launch mix for {factor!r}")
        codes = pd.Index(levels).get_indexer(labels)
        have = np.bincount(codes, weights=base, minlength=len(levels))
        empty = [lv for lv, h, t in zip(levels, have, target, strict=True) if h <= 0 < t]
        if empty:
            raise SpecError(
                f"launch mix gives {factor!r} levels {empty} a share but the experiment has no "
                "customers there to transport from"
            )
        margins.append((codes, target))
    share = base.copy()
    for _ in range(1 if len(margins) == 1 else 200):
        for codes, target in margins:
            have = np.bincount(codes, weights=share, minlength=len(target))
            ratio = np.divide(target, have, out=np.zeros_like(target), where=have > 0)
            share = share * ratio[codes]
        if len(margins) > 1 and all(
            np.allclose(np.bincount(c, weights=share, minlength=len(t)), t, rtol=0, atol=1e-12)
            for c, t in margins
        ):
            break
    return share / share.sum()
