"""Overrides of a card's keys (``bayesdecide memo RUN --set key=value``), applied to its raw TOML.

Keys are dotted paths into the card (``launch.fixed_cost``, ``value.weights.annoyance``,
``rules.0.min_prob`` or ``rules.Primary value.min_prob``), or shortcuts: ``fixed_cost``,
``eligible``, ``transport_multiplier``, ``large_loss`` (in ``[launch]``) and any named cost
assumption of ``[value.assumptions]`` (``annoyance_penalty=50`` sets the weight on ``annoyance``
to -50). The result is validated like a card from a file, so an override can only produce a card
that loads.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from typing import Any

from bayesdecide.errors import CardError

LAUNCH_SHORTCUTS = ("eligible", "fixed_cost", "transport_multiplier", "large_loss")


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value as TOML (numbers, booleans, arrays, quoted strings) or a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["launch.fixed_cost=350000", ...]`` -> ``{"launch.fixed_cost": 350000}``."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise CardError(f"--set {item!r}: write key=value, e.g. --set launch.fixed_cost=350000")
        name, _, value = item.partition("=")
        out[name.strip()] = parse_value(value.strip())
    return out


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply dotted-key overrides to a parsed card; returns a new dict (validate it afterwards)."""
    out = copy.deepcopy(dict(raw))
    assumptions = out.get("value", {}).get("assumptions", {})
    for name, value in overrides.items():
        if "." in name:
            _set_path(out, name, value)
        elif name in assumptions:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CardError(f"--set {name}={value!r}: give a number of dollars")
            out["value"]["weights"][assumptions[name]] = -float(value)
        elif name in LAUNCH_SHORTCUTS:
            out["launch"][name] = value
        else:
            valid = [*LAUNCH_SHORTCUTS, *assumptions, "<table>.<key> (e.g. launch.fixed_cost)"]
            raise CardError(f"--set {name}: unknown setting; valid shortcuts: {valid}")
    return out


def _set_path(card: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node: Any = card
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            idx = _list_index(node, part, ".".join(parts[:i]))
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif not isinstance(node, dict):
            raise CardError(f"--set {dotted}: {'.'.join(parts[:i])!r} is not a table")
        elif last:
            node[part] = value
        else:
            node = node.setdefault(part, {})


def _list_index(items: list[Any], part: str, where: str) -> int:
    if part.isdigit():
        idx = int(part)
        if idx >= len(items):
            raise CardError(f"--set: {where} has {len(items)} entries; index {idx} is too large")
        return idx
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return i
    names = [it.get("name") for it in items if isinstance(it, dict)]
    raise CardError(f"--set: {where} has no entry named {part!r}; names: {names}")


__all__ = ["LAUNCH_SHORTCUTS", "apply_overrides", "parse_assignments", "parse_value"]
