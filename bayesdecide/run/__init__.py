"""The run stage: a card's run end to end, re-rendering with changed assumptions, run folders."""

from bayesdecide.run.pipeline import RunResult, rerender, run_card

__all__ = ["RunResult", "rerender", "run_card"]
