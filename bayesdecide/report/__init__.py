"""Reporting: decision plots, checks, the recommendation rule and the decision memo.

- :mod:`.plots` — matplotlib figures (shrinkage, value posterior, policies, guardrails,
  sensitivity and break-even, region comparison);
- :mod:`.checks` — sample ratio mismatch, covariate balance and sampler checks;
- :mod:`.recommend` — the explicit recommendation rule;
- :mod:`.memo` — the memo (Markdown and self-contained HTML) from a run summary.
"""

from bayesdecide.report.checks import CheckResult, Checks, run_checks, sample_ratio_mismatch
from bayesdecide.report.document import Document, to_markdown
from bayesdecide.report.html import render_html
from bayesdecide.report.memo import build_memo, write_memo
from bayesdecide.report.recommend import recommend

memo = build_memo

__all__ = [
    "CheckResult",
    "Checks",
    "Document",
    "build_memo",
    "memo",
    "recommend",
    "render_html",
    "run_checks",
    "sample_ratio_mismatch",
    "to_markdown",
    "write_memo",
]
