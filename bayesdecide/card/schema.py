"""The card schema engine: a card table is a frozen dataclass, and its fields are its keys.

Each field is declared with :func:`key` (its meaning and allowed values); the field's type hint is
its TOML type. :func:`build` checks a parsed TOML table against the dataclass and builds it, so the
schema and the typed card are one definition. Every error names the key and the fix: an unknown
key lists the valid keys and the closest one ("did you mean"), a missing required key says what to
add, a wrong type which type is expected, a value outside ``choices`` the allowed values.

Supported hints: ``str``, ``int``, ``float`` (an integer is accepted), ``bool``, ``Any`` (free),
``X | None`` (optional), ``tuple[X, ...]`` (an array; of tables when ``X`` is a table class),
``dict[str, X]`` (a table with free keys; of tables when ``X`` is a table class) and another table
class (a sub-table).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from bayesdecide.errors import CardError

REQUIRED: Any = dataclasses.MISSING

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    tuple: "an array",
    dict: "a table",
}


def key(doc: str, default: Any = REQUIRED, *, choices: tuple[Any, ...] = (), name: str = "") -> Any:
    """A card key: its meaning (with unit), its default (none: required) and allowed values.
    ``name`` is the TOML key when it differs from the attribute (``[fit]`` -> ``sampling``)."""
    meta = {"doc": doc, "choices": choices, "name": name}
    if isinstance(default, list | dict):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def required(f: dataclasses.Field) -> bool:
    return f.default is REQUIRED and f.default_factory is REQUIRED


def toml_name(f: dataclasses.Field) -> str:
    """The key of field ``f`` in the TOML file."""
    return f.metadata.get("name") or f.name


def table_fields(cls: type) -> dict[str, dataclasses.Field]:
    """TOML key -> field of a table class (fields with ``init=False`` are not keys)."""
    return {toml_name(f): f for f in dataclasses.fields(cls) if f.init}


@cache
def hints(cls: type) -> dict[str, Any]:
    """Resolved type hints of a table class."""
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else Any
    return tp


def type_name(tp: Any) -> str:
    tp = _unwrap_optional(tp)
    origin = typing.get_origin(tp) or tp
    if dataclasses.is_dataclass(origin):
        return "a table"
    return _TYPE_NAMES.get(origin, "a value")


def _where(path: str) -> str:
    return f"[{path}]" if path else "the top level"


def _dotted(path: str, name: Any) -> str:
    return f"{path}.{name}" if path else str(name)


def _type_ok(value: Any, tp: Any) -> bool:
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp in (str, bool):
        return isinstance(value, tp)
    return True


def _value(value: Any, tp: Any, dotted: str, doc: str, source: str) -> Any:
    """Check and convert one value of type hint ``tp``."""
    tp = _unwrap_optional(tp)
    if tp is Any:
        return value
    origin = typing.get_origin(tp) or tp
    if dataclasses.is_dataclass(origin):
        if not isinstance(value, dict):
            raise CardError(
                f"{source}: key {dotted!r} must be a table ({doc}); write it as [{dotted}], not "
                f"{type(value).__name__} {value!r}."
            )
        return build(origin, value, dotted, source)
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if not isinstance(value, list):
            raise CardError(
                f"{source}: key {dotted!r} must be an array ({doc}), not "
                f"{type(value).__name__} {value!r}; fix its value."
            )
        return tuple(_item(v, item, f"{dotted}[{i}]", source) for i, v in enumerate(value))
    if origin is dict:
        item = typing.get_args(tp)[1]
        if not isinstance(value, dict):
            raise CardError(
                f"{source}: key {dotted!r} must be a table ({doc}), not {type(value).__name__} "
                f"{value!r}; write it as [{dotted}]."
            )
        return {
            str(k): _item(v, item, _dotted(dotted, k), source, table_form=f"[{dotted}.{k}]")
            for k, v in value.items()
        }
    if not _type_ok(value, origin):
        raise CardError(
            f"{source}: key {dotted!r} must be {type_name(origin)} ({doc}), not "
            f"{type(value).__name__} {value!r}; fix its value."
        )
    return float(value) if origin is float else value


def _item(value: Any, tp: Any, where: str, source: str, table_form: str = "") -> Any:
    """One element of an array or of a free table."""
    tp = _unwrap_optional(tp)
    origin = typing.get_origin(tp) or tp
    if dataclasses.is_dataclass(origin):
        if not isinstance(value, dict):
            form = table_form or f"[[{where.rsplit('[', 1)[0]}]]"
            raise CardError(
                f"{source}: {where} must be a table (write it as {form}), not "
                f"{type(value).__name__} {value!r}."
            )
        return build(origin, value, where, source)
    if origin in (tuple, dict) or tp is Any:
        return _value(value, tp, where, "an element", source)
    if not _type_ok(value, origin):
        raise CardError(
            f"{source}: {where} must be {type_name(origin)}, not {type(value).__name__} {value!r}."
        )
    return float(value) if origin is float else value


def valid_keys(cls: type) -> str:
    """``"eligible (required), fixed_cost (required), transport_multiplier, ..."``."""
    return ", ".join(
        f"{name}{' (required)' if required(f) else ''}" for name, f in table_fields(cls).items()
    )


def suggest(name: Any, valid: Any) -> str:
    """``" Did you mean 'region'?"`` for the valid name closest to ``name``, else ``""``."""
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_key(source: str, name: str, valid: list[str], path: str, listing: str) -> CardError:
    """The error for an unknown key, with the closest valid one."""
    hint = suggest(name, valid)
    return CardError(
        f"{source}: unknown key {_dotted(path, name)!r} in {_where(path)}.{hint} "
        f"Valid keys: {listing}."
    )


def build(cls: type, data: Mapping[str, Any], path: str, source: str) -> Any:
    """Check ``data`` (a parsed TOML table at ``path``) against table class ``cls`` and build it."""
    fields = table_fields(cls)
    for name in data:
        if name not in fields:
            raise unknown_key(source, name, list(fields), path, valid_keys(cls))
    values = {}
    for name, f in fields.items():
        dotted = _dotted(path, name)
        doc = f.metadata.get("doc", "")
        if name not in data:
            if required(f):
                raise CardError(
                    f"{source}: missing required key {dotted!r} in {_where(path)}: add "
                    f"{name} = <{type_name(hints(cls)[f.name])}> ({doc})."
                )
            continue
        value = _value(data[name], hints(cls)[f.name], dotted, doc, source)
        choices = f.metadata.get("choices", ())
        if choices and value not in choices:
            raise CardError(f"{source}: key {dotted!r} is {value!r}; use one of {list(choices)}.")
        values[f.name] = value
    return cls(**values)


def default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls`` (so a card reads, not repeats, it)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default if f.default is not REQUIRED else f.default_factory()  # type: ignore[misc]


__all__ = [
    "REQUIRED",
    "build",
    "default",
    "key",
    "suggest",
    "table_fields",
    "toml_name",
    "type_name",
    "unknown_key",
    "valid_keys",
]
