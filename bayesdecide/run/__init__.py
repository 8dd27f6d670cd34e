"""The run stage: a card's run end to end, re-rendering with changed assumptions, run folders and
the typed run summary.

- :mod:`.pipeline` - :func:`run_card`: card -> data -> fit -> decision -> run folder;
- :mod:`.rerendering` - :func:`rerender`: a saved run with changed assumptions, no refit;
- :mod:`.folders` - atomic run folders and Ctrl-C handling;
- :mod:`.summary` - :class:`RunSummary`, the typed, versioned ``summary.json``;
- :mod:`.summarize` - building the summary and the CSV tables from a decision;
- :mod:`.figures` - the memo's figures;
- :mod:`.render` - progress lines, :class:`RunResult`, writing figures and memo;
- :mod:`.lineage` - fingerprints, versions and ``lineage.json``.
"""

from bayesdecide.run.pipeline import run_card
from bayesdecide.run.render import RunResult
from bayesdecide.run.rerendering import rerender
from bayesdecide.run.summary import SCHEMA_VERSION, RunSummary, read_summary

__all__ = ["SCHEMA_VERSION", "RunResult", "RunSummary", "read_summary", "rerender", "run_card"]
