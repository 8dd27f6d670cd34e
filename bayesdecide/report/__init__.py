"""Reporting: decision plots and the decision memo.

- :mod:`.plots` — matplotlib figures (shrinkage, value posterior, policies, guardrails,
  sensitivity and break-even, region comparison);
- :mod:`.document` — a tiny document model rendered to Markdown and HTML;
- :mod:`.html` — the memo's stylesheet and HTML page;
- :mod:`.memo` — the memo (Markdown and self-contained HTML) from the typed run summary.

The checks and the recommendation rule live in :mod:`bayesdecide.decide` (the decision stage);
the report renders what the decision stage computed.
"""

from bayesdecide.report.document import Document, to_markdown
from bayesdecide.report.html import render_html
from bayesdecide.report.memo import build_memo, write_memo

__all__ = [
    "Document",
    "build_memo",
    "render_html",
    "to_markdown",
    "write_memo",
]
