"""Lineage of a run: what identifies its inputs and environment (``lineage.json``)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bayesdecide._json import to_jsonable
from bayesdecide.card import ModelCard


def git_commit() -> str | None:
    """The package checkout's git commit, when it is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict[str, str]:
    """Versions of Python and the packages the numbers depend on."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("bayesdecide", "pymc", "arviz", "numpy", "pandas", "xarray", "duckdb"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def lineage(
    run_id: str,
    card: ModelCard,
    data: Any,
    settings: dict[str, Any],
    fit_lineage: dict[str, Any],
    created: str,
    finished: str,
) -> dict[str, Any]:
    """The content of ``lineage.json``."""
    return to_jsonable(
        {
            "run_id": run_id,
            "created": created,
            "finished": finished,
            "command": " ".join(sys.argv),
            "card": {
                "name": card.name,
                "version": card.version,
                "path": str(card.path) if card.path else None,
                "sha256": card.sha256,
            },
            "spec_fingerprint": card.spec.fingerprint(),
            "data": data,
            "fit_settings": settings,
            "fit_lineage": fit_lineage,
            "versions": versions(),
            "git_commit": git_commit(),
            "platform": platform.platform(),
        }
    )


__all__ = ["git_commit", "lineage", "versions"]
