"""Griffe extension for the API reference: the docstrings' Sphinx roles become cross-references.

The package's docstrings name other objects with reST roles (``:func:`fit```,
``:class:`~bayesdecide.decide.Decision```, ``:mod:`.value```), which Markdown would print as they
are. Each role becomes an optional autorefs cross-reference: a link where the target is documented
on some page, the name as code otherwise (a private helper, a module without a page, a class of
another package), so a role never fails the strict build. Names resolve the way Python reads them
in the docstring's scope: the object's own members, then its parents' members and imports; a
leading dot is relative to the enclosing package; anything else is taken as a full path. A name
the package re-exports resolves to where it is defined, which the reference registers for every
page that renders it. A ``~`` shows only the last component, as in Sphinx.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import AliasResolutionError, CyclicAliasError, Extension, Module, Object

ROLE = re.compile(
    r":(?:py:)?(?:func|class|mod|meth|attr|data|obj|exc|const):`(?P<short>~)?(?P<target>[\w.]+)`"
)


def _package(obj: Object) -> Object:
    """The package a leading-dot name in ``obj``'s docstring is relative to."""
    module = obj if isinstance(obj, Module) else obj.module
    return module if module.is_init_module or module.parent is None else module.parent


def _lookup(scope: Object, name: str) -> str | None:
    first, _, rest = name.partition(".")
    if first in scope.members:
        path = scope.members[first].path
    elif first in scope.imports:
        path = scope.imports[first]
    else:
        return None
    return f"{path}.{rest}" if rest else path


def _canonical(obj: Object, path: str) -> str:
    """Where the object at ``path`` is defined (a re-export resolves to its definition)."""
    try:
        return obj.modules_collection[path].canonical_path
    except (KeyError, ValueError, AliasResolutionError, CyclicAliasError):
        return path  # not in the loaded package: another package's object, or a typo


def _in_scope(obj: Object, target: str) -> str:
    if target.startswith("."):
        return _package(obj).path + "." + target.lstrip(".")
    scope: Object | None = obj
    while scope is not None:
        path = _lookup(scope, target)
        if path is not None:
            return path
        scope = scope.parent
    return target


def resolve(obj: Object, target: str) -> str:
    """The canonical dotted path ``target`` names in ``obj``'s docstring (``target`` if unknown)."""
    return _canonical(obj, _in_scope(obj, target))


def _cross_reference(obj: Object, match: re.Match[str]) -> str:
    target = match["target"]
    text = target.rsplit(".", 1)[-1] if match["short"] else target.lstrip(".")
    path = resolve(obj, target)
    return f'<autoref identifier="{path}" optional><code>{text}</code></autoref>'


def _objects(obj: Object) -> list[Object]:
    """``obj`` and every object defined under it (aliases skipped: they are walked where defined)."""
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias:
            found.extend(_objects(member))
    return found


class SphinxRoles(Extension):
    """Rewrite ``:role:`target``` in every docstring of a loaded package."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = ROLE.sub(
                    lambda m, obj=obj: _cross_reference(obj, m), obj.docstring.value
                )
