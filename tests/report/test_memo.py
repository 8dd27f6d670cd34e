"""The memo, rendered section by section from the typed run summary (a fake fit, no sampling)."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

import pytest

from bayesdecide.card import load_card
from bayesdecide.decide.checks import CheckResult
from bayesdecide.decide.recommend import BLOCKED, Recommendation
from bayesdecide.report.document import Document, Paragraph, Table, inline_html, to_markdown
from bayesdecide.report.memo import build_memo, effect_text, pct, usd, write_memo
from bayesdecide.run.pipeline import describe_data
from bayesdecide.run.summarize import build_summary
from bayesdecide.run.summary import OutcomeInfo, RunInfo, read_summary

from ..fakes import RETENTION_CARD

SECTIONS = [
    "1. Decision",
    "2. Estimand",
    "3. Identification",
    "4. Primary effect",
    "5. Guardrails",
    "6. Economics",
    "7. Heterogeneity",
    "8. Recommendation",
    "9. Rollout conditions",
    "Appendix",
]


@pytest.fixture(scope="module")
def card():
    return load_card(RETENTION_CARD)


@pytest.fixture(scope="module")
def summary(card, fake_fit, retention_cells):
    decision = card.decide(fake_fit, cells=retention_cells)
    run = RunInfo("r-1", "2026-01-01T00:00:00", True, 0.1, 200, 300, 2, 1, 0.9, "nutpie")
    s, _ = build_summary(card, fake_fit, decision, run, describe_data(card, retention_cells))
    return s


def _md(summary, card=None) -> str:
    return to_markdown(build_memo(summary, card))


def test_formatting():
    assert usd(22945.4) == "$22,945" and usd(-272359.45) == "-$272,359"
    assert pct(0.559) == "56%" and pct(0.999) == ">99%" and pct(0.001) == "<1%"
    binary = OutcomeInfo("Annoyance", "binary", "probability", "guardrail")
    money = OutcomeInfo("Margin", "continuous", "dollars", "primary")
    tickets = OutcomeInfo("Tickets", "count", "tickets", "guardrail")
    assert effect_text(0.0152, binary) == "+1.52 pp"
    assert effect_text(-8.91, money) == "-$8.91"
    assert effect_text(0.034, tickets) == "+0.034"


def test_memo_sections_in_seed_order(summary, card):
    md = _md(summary, card)
    positions = [md.index(f"## {s}") for s in SECTIONS]
    assert positions == sorted(positions)
    rec = summary.recommendation
    assert f"**Recommendation: {rec.decision} — Optimal targeting.**" in md
    assert "Risk register" in md and "Feature dictionary" in md
    tm = summary.break_even["transport_multiplier"].median
    assert f"keeps less than {tm:.2f} of the experiment's benefit" in md
    # one interval convention: every interval header states the summary's ci_prob
    assert "90% interval" not in md and "95% interval" in md
    # named cost assumptions get a generic sentence, no outcome-specific wording
    assert "If the annoyance penalty is more than" in md
    assert "If the support tickets penalty is more than" in md


def test_blocked_memo_is_provisional(summary):
    failed = CheckResult(
        "R-hat", False, 3.649, 1.01, "largest R-hat 3.649 (must be <= 1.01)", "sampler"
    )
    rec = Recommendation(BLOCKED, None, "optimal", False, True, ("Sampler diagnostic failed.",))
    checks = dataclasses.replace(
        summary.checks, ok=False, results=[*summary.checks.results, failed]
    )
    s = dataclasses.replace(summary, recommendation=rec, checks=checks)
    md = _md(s)
    assert "**No launch recommendation.**" in md and "provisional" in md
    assert "| R-hat | **FAIL** | largest R-hat 3.649 (must be <= 1.01) |" in md
    assert "the rule below would pick **Optimal targeting**" in md


def test_loosened_checks_are_in_the_header(summary):
    rec = dataclasses.replace(summary.recommendation, loosened_checks=("max_rhat 1.01 -> 5",))
    md = _md(dataclasses.replace(summary, recommendation=rec))
    head = md.split("## 1. Decision")[0]
    assert "rests on loosened checks" in head and "max_rhat 1.01 -> 5" in head


def test_card_text_is_escaped_in_markdown(summary):
    card = dataclasses.replace(summary.card, description="<script>alert(1)</script> and x <= 1")
    md = _md(dataclasses.replace(summary, card=card))
    assert "<script>" not in md and "&lt;script>" in md
    assert "x <= 1" in md  # a comparison is not a tag


def test_document_rendering():
    assert inline_html("**a** <b> *c*") == "<strong>a</strong> &lt;b&gt; <em>c</em>"
    doc = Document("T", blocks=[Paragraph("x | y"), Table(["a", "b"], [["1|2", 3]])])
    md = to_markdown(doc)
    assert "1\\|2" in md and md.startswith("# T")


class _Checker(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.imgs, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])
        elif tag not in ("meta", "br", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_write_memo_html_is_self_contained(fake_pipeline, tmp_path):
    result = fake_pipeline.run_card(RETENTION_CARD, tmp_path, quick=True, progress=None)
    html = result.memo_html.read_text()
    p = _Checker()
    p.feed(html)
    assert not p.errors and not p.stack
    assert len(p.imgs) >= 6 and all(src.startswith("data:image/png;base64,") for src in p.imgs)
    assert "http" not in html.split("<body>")[1]  # nothing fetched from outside
    md = result.memo_md.read_text()
    for fig in result.figures.values():
        assert f"figures/{fig.name}" in md and fig.exists()
    # re-rendering from the summary file alone reproduces the memo
    summary = read_summary(result.folder / "summary.json")
    md2, _ = write_memo(summary, tmp_path / "again", load_card(RETENTION_CARD), result.figures)
    assert md2.read_text() == md
