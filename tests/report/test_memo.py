"""The memo, rendered section by section from the typed run summary (a fake fit, no sampling)."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

import numpy as np
import pytest

from bayesdecide.card import card_from_dict, load_card
from bayesdecide.decide.checks import CheckResult
from bayesdecide.decide.recommend import BLOCKED, Recommendation
from bayesdecide.report.document import Document, Paragraph, Table, inline_html, to_markdown
from bayesdecide.report.memo import build_memo, effect_text, pct, usd, write_memo
from bayesdecide.run.pipeline import describe_data
from bayesdecide.run.summarize import build_summary
from bayesdecide.run.summary import OutcomeInfo, RunInfo, read_summary

from ..fakes import RETENTION_CARD, FakeFit

SECTIONS = [
    "1. Decision",
    "2. Estimand",
    "3. Identification",
    "4. Primary effect",
    "5. Guardrails",
    "6. Economics",
    "7. Heterogeneity",
    "8. Fairness across groups",
    "9. Recommendation",
    "10. Rollout conditions",
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


def _summary(card, fit, cells):
    decision = card.decide(fit, cells=cells)
    run = RunInfo("r-1", "2026-01-01T00:00:00", True, 0.1, 200, 300, 2, 1, 0.9, "nutpie")
    return build_summary(card, fit, decision, run, describe_data(card, cells))[0]


def _section(md: str, start: str, end: str) -> str:
    return md[md.index(f"## {start}") : md.index(f"## {end}")]


def test_fairness_section(summary, card):
    md = _md(summary, card)
    fair = _section(md, "8. Fairness across groups", "9. Recommendation")
    # the estimand, stated
    assert "average effect per eligible customer of the group at launch" in fair
    assert "untreated customers counting 0" in fair
    # effects and treated shares by region and by segment (the card's fairness factors)
    assert "### By region" in fair and "### By segment" in fair and "### By risk band" not in fair
    americas = next(
        e
        for e in summary.fairness.effects
        if e.level == "Americas" and e.outcome is None and e.policy == "treat_all"
    )
    assert (
        f"| Americas | {pct(americas.share)} | {usd(americas.mean, 2)} ({usd(americas.lower, 2)} to {usd(americas.upper, 2)})"
        in fair
    )
    assert "| Enterprise | 12% |" in fair and "Treat Enterprise: treated" in fair
    # which groups each policy leaves out, and why
    assert (
        "**Treat Enterprise** leaves out segment **SMB** (58% of customers): its rule (segment in "
        "[Enterprise]) treats no segment SMB cell." in fair
    )
    # the group rule: levels x probabilities per policy, worst level marked; it does not bind
    assert "**Renewal by region**" in fair and "per treated customer of the region" in fair
    assert "(worst)" in fair
    assert "The group rules do not change the optimal targeting" in fair
    assert not summary.fairness.group_rules_bind
    # the guardrails table names the worst region of the group rule
    guard = _section(md, "5. Guardrails", "6. Economics")
    worst = next(
        g for g in summary.guardrails if g.rule == "Renewal by region" and g.policy == "optimal"
    )
    assert worst.worst_level in {"Americas", "EMEA", "APAC"}
    assert f"{pct(worst.probability)} pass ({worst.worst_level})" in guard


def test_memo_names_the_region_a_group_rule_protects(card, fake_fit, retention_cells):
    """Issue 17, item 4, through the memo: hand-built draws (the fake fit's, with every EMEA
    cell's renewal effect set to -3 pp and nothing else changed, so net value is untouched) make
    the value-optimal targeting harm EMEA. Without the card's 'Renewal by region' rule it is
    recommended; with it the recommendation moves to the constrained optimum, and the memo says
    which region and probability caused that."""
    tau = fake_fit.tau.copy()
    emea = tau["region"].values == "EMEA"
    noise = np.random.default_rng(7).normal(0.0, 0.005, tau.sel(outcome="renewed").shape)
    renewed = np.where(emea, -0.03 + noise, tau.sel(outcome="renewed").values)
    tau.loc[{"outcome": "renewed"}] = renewed
    harmed = FakeFit(fake_fit.effects, tau, fake_fit.cell_share, fake_fit.diagnostics)

    raw = card.to_dict()
    raw["rules"] = [r for r in raw["rules"] if r["name"] != "Renewal by region"]
    without = _summary(card_from_dict(raw), harmed, retention_cells)
    with_rule = _summary(card, harmed, retention_cells)

    assert without.recommendation.policy == with_rule.recommendation.policy == "optimal"
    assert any("EMEA" in c for c in without.optimal.cells)
    assert not any("EMEA" in c for c in with_rule.optimal.cells)
    assert with_rule.fairness.group_rules_bind
    free = with_rule.policies["optimal_without_group_rules"]
    assert free.expected_value == pytest.approx(without.policies["optimal"].expected_value)

    md = _md(with_rule, card)
    fail = next(
        g
        for g in with_rule.guardrails
        if g.policy == "optimal_without_group_rules" and g.rule == "Renewal by region"
    )
    assert fail.worst_level == "EMEA" and not fail.passes
    why = f"Renewal by region (region EMEA: P = {fail.probability:.0%}, needs ≥ 90%)"
    # the recommendation says it ...
    rec = _section(md, "9. Recommendation", "10. Rollout conditions")
    assert (
        "'Optimal targeting without group rules' has a higher expected value" in rec and why in rec
    )
    # ... and the fairness section shows the region, its probability and the price of the rule
    fair = _section(md, "8. Fairness across groups", "9. Recommendation")
    assert "**The group rules change the optimal targeting.**" in fair
    assert f"**Renewal by region** (region EMEA: P = {pct(fail.probability)}, needs ≥ 90%)" in fair
    price = free.expected_value - with_rule.policies["optimal"].expected_value
    assert f"the rules cost {usd(price)} in expectation" in fair
    assert "**Optimal targeting** leaves out region **EMEA**" in fair
    assert "would fail Renewal by region (region EMEA: P = 0%, needs ≥ 90%)" in fair


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


def test_what_the_hierarchy_leaves_out_is_in_the_header_and_the_appendix(summary):
    assert summary.hierarchy.left_out == []  # the fake fit has no model inputs
    assert "structure the card's hierarchy leaves out" not in _md(summary)
    found = "interaction 'segment' x 'risk_band': net_margin (F = 7.1, p = 1e-05)"
    hierarchy = dataclasses.replace(summary.hierarchy, left_out=[found])
    md = _md(dataclasses.replace(summary, hierarchy=hierarchy))
    head, appendix = md.split("## 1. Decision")[0], md.split("### C. Model")[1]
    assert "structure the card's hierarchy leaves out" in head and found in head
    assert "Checked before sampling" in appendix and found in appendix
    assert "`hierarchy.interactions`" in appendix


def test_appendix_says_on_which_scale_each_outcome_pooled(summary):
    assert summary.hierarchy.relative == []  # the fake fit has no model inputs
    md = _md(summary)
    assert "Every outcome pools relative to each cell's smoothed unit-level standard" in md
    hierarchy = dataclasses.replace(summary.hierarchy, relative=["renewed", "gross_margin"])
    md = _md(dataclasses.replace(summary, hierarchy=hierarchy))
    label = summary.outcomes["gross_margin"].label.lower()
    assert f"control-arm mean): {summary.outcomes['renewed'].label.lower()}, {label}; the" in md


def test_appendix_names_the_tails_of_the_level_effects_and_cells(summary):
    md = _md(summary)
    assert "Student-t level effects" not in md and "a normal cell deviation" in md
    tails = {**summary.priors, "level_nu[net_margin]": "Fixed(value=4)"}
    md = _md(dataclasses.replace(summary, priors=tails))
    assert "(Student-t level effects: an outlying level is pooled less)" in md


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
