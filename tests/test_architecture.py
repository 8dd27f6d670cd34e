"""docs/ARCHITECTURE.md names every module of the package, and every module it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bayesdecide"


def _package_modules() -> set[str]:
    """Every module of the package, relative to bayesdecide/ (package __init__ files excluded,
    except the top-level one)."""
    out = set()
    for p in PACKAGE.rglob("*.py"):
        rel = p.relative_to(PACKAGE).as_posix()
        if p.name == "__init__.py" and p.parent != PACKAGE:
            continue
        out.add(rel)
    return out


def _named_modules(text: str) -> set[str]:
    return set(re.findall(r"`((?:[a-z_]+/)?[a-z_]+\.py)`", text))


def test_architecture_names_every_module_and_only_real_ones():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    named = _named_modules(text)
    modules = _package_modules()
    assert not (named - modules), f"named but missing from the package: {sorted(named - modules)}"
    assert not (modules - named), (
        f"modules not named in docs/ARCHITECTURE.md: {sorted(modules - named)}"
    )


def test_architecture_names_the_stages():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    for stage in ("card/", "data/", "model/", "decide/", "run/", "report/", "summary.json"):
        assert stage in text
    assert "HierarchicalEffects" not in text
