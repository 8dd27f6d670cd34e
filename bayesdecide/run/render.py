"""What a run and a re-render share: progress lines, the result, and writing a staged folder."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bayesdecide.card import ModelCard
from bayesdecide.decide import Decision
from bayesdecide.run.folders import Stage
from bayesdecide.run.summary import RunSummary

Progress = Callable[[str], None]


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Steps:
    """Numbered progress lines ``[i/total] ...`` and a closing line with the elapsed time."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.i, self.progress = total, 0, progress
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        self.i += 1
        if self.progress is not None:
            self.progress(f"[{self.i}/{self.total}] {msg}")

    def done(self, msg: str) -> None:
        if self.progress is not None:
            self.progress(f"{msg} in {time.perf_counter() - self.t0:.1f}s")


@dataclass(frozen=True)
class RunResult:
    """What a run wrote: its folder, the typed summary, the paths of memo and figures, and its
    registry record (``None`` when not registered)."""

    folder: Path
    summary: RunSummary
    memo_md: Path
    memo_html: Path
    figures: dict[str, Path]
    record: Any = None


def write_tables(folder: Path, tables: Mapping[str, pd.DataFrame]) -> None:
    tdir = folder / "tables"
    tdir.mkdir(exist_ok=True)
    for name, t in tables.items():
        t.to_csv(tdir / f"{name}.csv", index=not isinstance(t.index, pd.RangeIndex))


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def render(
    steps: Steps,
    stage: Stage,
    card: ModelCard,
    summary: RunSummary,
    fit: Any,
    decision: Decision,
) -> tuple[Path, Path, dict[str, Path]]:
    """Figures and memo into the staged folder; returns the final paths of memo and figures."""
    from bayesdecide.report.memo import write_memo
    from bayesdecide.run.figures import make_figures

    steps("Drawing figures")
    figures = make_figures(summary, fit, decision, stage.path / "figures")
    steps("Writing the memo")
    write_memo(summary, stage.path, card, figures)
    final = {name: stage.final / "figures" / p.name for name, p in figures.items()}
    return stage.final / "memo.md", stage.final / "memo.html", final


def finish(steps: Steps, result: RunResult) -> RunResult:
    rec = result.summary.recommendation
    label = result.summary.labels.get(rec.policy or "", "")
    steps.done(f"Done: {rec.decision}" + (f" ({label})" if label else ""))
    return result


__all__ = [
    "Progress",
    "RunResult",
    "Steps",
    "finish",
    "render",
    "stderr",
    "write_json",
    "write_tables",
]
