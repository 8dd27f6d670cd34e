"""The run stage: a card's run end to end, re-rendering with changed assumptions, run folders and
the typed run summary.

- :mod:`.pipeline` - :func:`run_card`: card -> data -> fit -> decision -> run folder;
- :mod:`.rerendering` - :func:`rerender`: a saved run with changed assumptions, no refit;
- :mod:`.folders` - atomic run folders and Ctrl-C handling;
- :mod:`.summary` - :class:`RunSummary`, the typed, versioned ``summary.json``;
- :mod:`.summarize` - building the summary and the CSV tables from a decision;
- :mod:`.figures` - the memo's figures;
- :mod:`.render` - progress lines, :class:`RunResult`, writing figures and memo;
- :mod:`.lineage` - fingerprints, versions and ``lineage.json``;
- :mod:`.records` - :class:`RunRecord`, what the registry records about a run folder;
- :mod:`.registry` - the run registry (DuckDB), :func:`open_registry`, ``bd.registry()``;
- :mod:`.transport` - the transport multiplier's estimand and draws;
- :mod:`.updating` - :func:`update_run`: a run refitted with its rollout's holdout;
- :mod:`.update_memo` - the update's memo (earlier run and update side by side).
"""

from bayesdecide.run.pipeline import run_card
from bayesdecide.run.records import RunRecord
from bayesdecide.run.registry import DuckDBRegistry, RunRegistry, diff_records, open_registry
from bayesdecide.run.render import RunResult
from bayesdecide.run.rerendering import rerender
from bayesdecide.run.summary import SCHEMA_VERSION, RunSummary, read_summary
from bayesdecide.run.updating import UpdateSummary, update_run

__all__ = [
    "SCHEMA_VERSION",
    "DuckDBRegistry",
    "RunRecord",
    "RunRegistry",
    "RunResult",
    "RunSummary",
    "UpdateSummary",
    "diff_records",
    "open_registry",
    "read_summary",
    "rerender",
    "run_card",
    "update_run",
]
