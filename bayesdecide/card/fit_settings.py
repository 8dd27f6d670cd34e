"""The card's ``[fit]`` table and the one merge of sampler settings.

Precedence, lowest first: :data:`bayesdecide.model.defaults.FIT_DEFAULTS` (the one place for
sampler defaults) < the card's ``[fit]`` < the ``--quick`` preset < explicit arguments (CLI flags,
``card.fit(draws=...)``). Every merged value is range-checked here, so a bad card or flag fails
before any data is read or any sampling starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from bayesdecide.card.schema import key
from bayesdecide.errors import CardError
from bayesdecide.model.defaults import FIT_DEFAULTS, SAMPLERS

QUICK = MappingProxyType({"draws": 300, "tune": 300, "chains": 2})


@dataclass(frozen=True)
class FitSettings:
    """Sampler settings of a full run; unset keys come from ``FIT_DEFAULTS``."""

    draws: int | None = key("posterior draws per chain, after tuning (>= 1)", None)
    tune: int | None = key(
        "tuning (warm-up) steps per chain, discarded (>= 0); default: the sampler's (300 for "
        "nutpie, 1000 for pymc)",
        None,
    )
    chains: int | None = key("number of chains (>= 1)", None)
    seed: int | None = key(
        "random seed of the sampler (>= 0); the same seed gives the same draws", None
    )
    target_accept: float | None = key("NUTS target acceptance rate, strictly between 0 and 1", None)
    sampler: str | None = key("sampler: 'nutpie' (default) or 'pymc'", None, choices=SAMPLERS)

    def given(self) -> dict[str, Any]:
        """The keys the card sets."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def resolve(self, *, quick: bool = False, **overrides: Any) -> dict[str, Any]:
        """Merged, checked settings: defaults < card < ``quick`` preset < ``overrides``
        (``None`` values in ``overrides`` are ignored). ``tune`` stays ``None`` when nothing
        sets it: the fit then runs the warm-up of the sampler that actually samples
        (:func:`bayesdecide.model.defaults.default_tune`; a fallback from nutpie to PyMC gets
        PyMC's 1000, not nutpie's 300) and records it in ``fit.lineage["settings"]["tune"]``."""
        merged = {**FIT_DEFAULTS, **self.given(), **(QUICK if quick else {})}
        merged.update({k: v for k, v in overrides.items() if v is not None})
        check_fit_settings(merged, "fit settings")
        return merged


_RANGES: Mapping[str, tuple[type, float, float, str]] = {
    # name: (type, lowest, highest, what)
    "draws": (int, 1, float("inf"), "a positive number of draws per chain, e.g. 1000"),
    "tune": (int, 0, float("inf"), "a number of tuning steps >= 0, e.g. 1000"),
    "chains": (int, 1, float("inf"), "a positive number of chains, e.g. 4"),
    "seed": (int, 0, 2**32 - 1, "an integer seed in [0, 2**32 - 1]"),
}


def check_fit_settings(settings: Mapping[str, Any], where: str) -> None:
    """Range checks of sampler settings, with the setting and the fix in the message."""
    for name, (tp, lo, hi, what) in _RANGES.items():
        v = settings.get(name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, tp) or not lo <= v <= hi:
            raise CardError(f"{where}: {name} = {v!r} is out of range; give {what}.")
    ta = settings.get("target_accept")
    if ta is not None and (
        isinstance(ta, bool) or not isinstance(ta, int | float) or not 0 < ta < 1
    ):
        raise CardError(
            f"{where}: target_accept = {ta!r} is out of range; give a NUTS acceptance rate "
            "strictly between 0 and 1, e.g. 0.9."
        )
    sampler = settings.get("sampler")
    if sampler is not None and sampler not in SAMPLERS:
        raise CardError(f"{where}: sampler = {sampler!r}; use one of {list(SAMPLERS)}.")


__all__ = ["QUICK", "FitSettings", "check_fit_settings"]
