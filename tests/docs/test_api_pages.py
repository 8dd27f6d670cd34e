"""The API reference pages (``docs/api/*.md``) against the package, without building the site.

``make docs`` (a strict mkdocs build) fails on an identifier that does not resolve too, but only
after loading everything; these checks name the page and the identifier in the fast suite:

- every ``::: dotted.path`` directive imports, and every name in its ``members:`` list exists;
- every ``[text][dotted.path]`` cross-reference on the API pages and the home page names an
  object that some directive documents;
- every public top-level name (``bayesdecide.__all__``) is documented on some page;
- every name a documented module exports is documented: an exported object with the name of a
  submodule beside it is read as the submodule by the reference generator, so it needs a
  directive of its own.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import bayesdecide

DOCS = Path(__file__).resolve().parents[2] / "docs"
API_PAGES = sorted((DOCS / "api").glob("*.md"))
DIRECTIVE = re.compile(r"^::: *(?P<path>[\w.]+) *\n(?P<options>(?:(?: {4}.*)?\n)*)", re.MULTILINE)
CROSS_REFERENCE = re.compile(r"\]\[(?P<path>[\w.]+)\]")


@dataclass
class Directive:
    page: str
    path: str
    options: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.page}: ::: {self.path}"


def directives() -> list[Directive]:
    found = []
    for page in API_PAGES:
        for m in DIRECTIVE.finditer(page.read_text()):
            block = yaml.safe_load(m["options"]) if m["options"].strip() else None
            options = (block or {}).get("options") or {}
            found.append(Directive(f"docs/api/{page.name}", m["path"], options))
    return found


def resolve(path: str) -> Any:
    """The object at a dotted path: the longest importable module, then attributes."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is not None and not name.startswith(err.name):
                raise  # the module exists but an import inside it failed
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(path)


def shadowed(module: types.ModuleType, name: str) -> bool:
    """Whether ``module`` (a package) has a submodule ``name`` beside the object it exports."""
    if not hasattr(module, "__path__"):
        return False
    spec = importlib.util.find_spec(f"{module.__name__}.{name}")
    return spec is not None and not isinstance(getattr(module, name), types.ModuleType)


def exported(module: types.ModuleType) -> list[str]:
    """The names a module directive renders: its ``__all__``, else its own public definitions."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return [n for n in names if not n.startswith("_")]
    return [
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
    ]


def documented() -> list[Any]:
    """Every object some directive renders (compared by identity: ``bd.fit`` is the function)."""
    objects = []
    for d in directives():
        try:
            obj = resolve(d.path)
        except (ImportError, AttributeError):
            continue  # reported by test_every_directive_imports
        objects.append(obj)
        if isinstance(obj, types.ModuleType):
            members = d.options.get("members")
            names = members if isinstance(members, list) else exported(obj)
            objects.extend(getattr(obj, n) for n in names if not shadowed(obj, n))
    return objects


def is_documented(obj: Any, objects: list[Any]) -> bool:
    return any(obj is o for o in objects)


def test_the_api_pages_exist():
    assert API_PAGES, "no docs/api/*.md"
    assert directives(), "no ::: directives in docs/api/*.md"


@pytest.mark.parametrize("directive", directives(), ids=str)
def test_every_directive_imports(directive):
    try:
        obj = resolve(directive.path)
    except (ImportError, AttributeError) as err:
        pytest.fail(f"{directive} does not import ({err}); update the page to where it moved")
    members = directive.options.get("members")
    if isinstance(members, list):
        missing = [n for n in members if not hasattr(obj, n)]
        assert not missing, f"{directive}: members {missing} not found"


def test_every_cross_reference_names_a_documented_object():
    objects = documented()
    unresolved, undocumented = [], []
    for page in [DOCS / "index.md", *API_PAGES]:
        where = page.relative_to(DOCS.parent)
        for m in CROSS_REFERENCE.finditer(page.read_text()):
            try:
                obj = resolve(m["path"])
            except (ImportError, AttributeError):
                unresolved.append(f"{where}: {m['path']}")
                continue
            if not is_documented(obj, objects):
                undocumented.append(f"{where}: {m['path']}")
    assert not unresolved, f"cross-references that do not resolve: {unresolved}"
    assert not undocumented, f"cross-references to objects on no docs/api page: {undocumented}"


def test_every_top_level_name_is_documented():
    objects = documented()
    missing = [
        name
        for name in bayesdecide.__all__
        if not name.startswith("_") and not is_documented(getattr(bayesdecide, name), objects)
    ]
    assert not missing, f"top-level names on no docs/api page: {['bd.' + n for n in missing]}"


def test_every_name_of_a_documented_module_is_documented():
    objects = documented()
    missing = []
    for d in directives():
        try:
            obj = resolve(d.path)
        except (ImportError, AttributeError):
            continue  # reported by test_every_directive_imports
        if isinstance(obj, types.ModuleType) and "members" not in d.options:
            missing += [
                f"{d.path}.{n}"
                for n in exported(obj)
                if not is_documented(getattr(obj, n), objects)
            ]
    assert not missing, (
        f"{missing}: exported, but a submodule of the same name hides them from the reference; "
        "add a ::: directive for each (see docs/api/decide.md)"
    )
