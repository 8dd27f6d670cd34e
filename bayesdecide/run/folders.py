"""Run folders, written atomically: a folder that exists is a complete run.

:func:`staged_folder` assembles a run in a hidden folder next to its destination
(``<parent>/.<name>.partial``) and renames it into place only when everything is written; any
exception or Ctrl-C removes the hidden folder, so an interrupted run leaves nothing that looks
complete. The name is reserved by creating the hidden folder (an atomic ``mkdir``), so concurrent
runs never pick the same name. :func:`interrupt_guard` notices a Ctrl-C that a library swallowed
(the sampler or the netCDF writer) and re-raises it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bayesdecide.errors import RunFolderError

PARTIAL = ".partial"


def check_parent(parent: str | Path, flag: str = "--out") -> Path:
    """``parent`` as a folder for run folders: created if missing; an existing file, or a path
    under one, is refused before any work is done."""
    p = Path(parent)
    for q in (p, *p.parents):
        if q.exists() and not q.is_dir():
            raise RunFolderError(
                f"{flag} {str(p)!r}: {str(q)!r} is a file, not a folder; give a folder for the "
                "run folders (it is created if missing)"
            )
    return p


@dataclass(frozen=True)
class Stage:
    """A run being assembled: write into ``path``; ``final`` is where it will appear."""

    path: Path
    final: Path


def _stamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _reserve(parent: Path, stem: str) -> Stage:
    base = f"{stem}-{_stamp()}" if stem else _stamp()
    for k in range(1, 10_000):
        name = base if k == 1 else f"{base}-{k}"
        final = parent / name
        if final.exists():
            continue
        tmp = parent / f".{name}{PARTIAL}"
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        if final.exists():  # appeared between the check and the mkdir
            tmp.rmdir()
            continue
        return Stage(tmp, final)
    raise RunFolderError(f"could not reserve a new folder name under {parent}")  # pragma: no cover


@contextlib.contextmanager
def staged_folder(parent: str | Path, stem: str) -> Iterator[Stage]:
    """Assemble a new folder ``parent/<stem>-<YYYYmmdd-HHMMSS>[-N]`` atomically (see module)."""
    parent = check_parent(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stage = _reserve(parent, stem)
    try:
        yield stage
        os.rename(stage.path, stage.final)
    except BaseException:
        shutil.rmtree(stage.path, ignore_errors=True)
        raise


class InterruptGuard:
    """Records every SIGINT while active (the handler still raises ``KeyboardInterrupt``)."""

    def __init__(self) -> None:
        self.interrupted = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True
        raise KeyboardInterrupt

    def check(self, what: str) -> None:
        """Raise ``KeyboardInterrupt`` if a Ctrl-C was seen (even one a library swallowed)."""
        if self.interrupted:
            raise KeyboardInterrupt(f"interrupted {what}; nothing was written")


@contextlib.contextmanager
def interrupt_guard() -> Iterator[InterruptGuard]:
    """An :class:`InterruptGuard` for the block (a no-op outside the main thread)."""
    guard = InterruptGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    previous = signal.signal(signal.SIGINT, guard._handler)
    try:
        yield guard
    finally:
        signal.signal(signal.SIGINT, previous)


__all__ = ["InterruptGuard", "Stage", "check_parent", "interrupt_guard", "staged_folder"]
