"""The memo's HTML template: one stylesheet, inlined so ``memo.html`` is a single file."""

from __future__ import annotations

from bayesdecide.report.document import Document, to_html

CSS = """
:root { --ink:#1d2530; --muted:#5b6675; --line:#dde3ea; --blue:#1f6fb4; --good:#2e7d4f;
        --bad:#b03a2e; --warn:#a86400; --bg:#ffffff; --soft:#f5f7fa; }
* { box-sizing: border-box; }
body { margin:0; background:var(--soft); color:var(--ink);
       font: 15px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 980px; margin: 24px auto; background: var(--bg); padding: 36px 48px 56px;
       border: 1px solid var(--line); border-radius: 8px; }
h1 { font-size: 27px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 34px 0 10px; padding-top: 10px; border-top: 2px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; color: #2c3a4b; }
p { margin: 8px 0 12px; }
.subtitle { color: var(--muted); margin-top: 0; font-size: 13.5px; }
nav { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
      padding: 10px 18px; margin: 18px 0 8px; font-size: 14px; }
nav ol { margin: 6px 0 0; padding-left: 22px; columns: 2; }
nav a { color: var(--blue); text-decoration: none; }
.callout { border-left: 5px solid var(--blue); background: #eef4fb; padding: 12px 16px;
           margin: 14px 0; border-radius: 4px; }
.callout.good { border-color: var(--good); background: #edf7f0; }
.callout.bad { border-color: var(--bad); background: #fbeeed; }
.callout.warn { border-color: var(--warn); background: #fdf5e8; }
.table-wrap { overflow-x: auto; margin: 10px 0 16px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: 12.5px;
          padding-top: 6px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; border-bottom: 2px solid var(--line); }
td.right, th.right { text-align: right; font-variant-numeric: tabular-nums; }
td.left, th.left { text-align: left; }
td.center, th.center { text-align: center; }
tbody tr:hover { background: #fafbfc; }
figure { margin: 16px 0 22px; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
code { background: var(--soft); padding: 1px 4px; border-radius: 3px; font-size: 13px; }
ul, ol { padding-left: 24px; }
li { margin: 3px 0; }
@media print { body { background: white; } main { border: none; margin: 0; } nav { display: none; } }
"""


def render_html(doc: Document) -> str:
    """The memo as a self-contained HTML page (figures embedded as base64 PNG)."""
    return to_html(doc, CSS)


__all__ = ["CSS", "render_html"]
