"""Memo rendering and the recommendation rule, from hand-built summaries and a fake fit."""

from __future__ import annotations

import copy
import json
from html.parser import HTMLParser

import pytest

from bayesdecide.card import load_card
from bayesdecide.report.document import Document, Paragraph, Table, inline_html, to_markdown
from bayesdecide.report.memo import build_memo, effect_text, pct, usd, write_memo
from bayesdecide.report.recommend import BLOCKED, LAUNCH_ALL, LAUNCH_TARGETED, NO_LAUNCH, recommend

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


def _policy(ev, share, p=0.9):
    return {
        "expected_value": ev,
        "prob_positive": p,
        "prob_large_loss": 0.0,
        "p10": ev - 1e5,
        "p50": ev,
        "p90": ev + 1e5,
        "prob_best": 0.5,
        "treated_share": share,
    }


@pytest.fixture()
def summary() -> dict:
    return {
        "policies": {
            "treat_none": _policy(0.0, 0.0, 0.0),
            "treat_all": _policy(2.5e4, 1.0, 0.56),
            "targeted": _policy(7.2e5, 0.48, 0.99),
        },
        "recommended_policy": "targeted",
        "guardrails": [
            {
                "rule": "Primary value",
                "policy": "treat_all",
                "probability": 0.56,
                "threshold": 0.8,
                "passes": False,
            },
            {
                "rule": "Primary value",
                "policy": "targeted",
                "probability": 0.99,
                "threshold": 0.8,
                "passes": True,
            },
        ],
        "effects": {
            "net_margin": {
                "mean": 2.5,
                "sd": 1.2,
                "ci_lower": 0.1,
                "ci_upper": 4.9,
                "prob_positive": 0.98,
            }
        },
        "outcomes": {
            "net_margin": {
                "label": "Net margin",
                "kind": "continuous",
                "unit": "dollars per customer",
                "role": "primary",
            }
        },
        "primary_outcome": "net_margin",
        "break_even": {
            "transport_multiplier": {
                "median": 0.6,
                "ci_lower": 0.5,
                "ci_upper": 0.7,
                "current": 1.0,
                "direction": "above",
                "policy": "targeted",
            },
            "annoyance_penalty": {
                "median": 140.0,
                "ci_lower": 90.0,
                "ci_upper": 300.0,
                "current": 35.0,
                "direction": "below",
                "policy": "targeted",
            },
        },
        "settings": {
            "n_eligible": 120000,
            "fixed_cost": 280000.0,
            "loss_threshold": 500000.0,
            "weights": {"gross_margin": 1.0, "annoyance": -35.0},
        },
        "checks": {
            "ok": True,
            "results": [
                {
                    "name": "Sample ratio mismatch",
                    "passes": True,
                    "observed": 0.8,
                    "threshold": 0.001,
                    "detail": "fine",
                    "kind": "data",
                }
            ],
        },
        "diagnostics": {"max_rhat": 1.002, "min_ess_bulk": 900, "divergences": 0},
        "card": {"name": "retention_outreach", "version": "1.0.0", "title": "Retention outreach"},
    }


def test_formatting():
    assert usd(22945.4) == "$22,945" and usd(-272359.45) == "-$272,359"
    assert usd(2.525, 2) == "$2.52" or usd(2.525, 2) == "$2.53"
    assert pct(0.559) == "56%" and pct(0.999) == ">99%" and pct(0.001) == "<1%"
    assert effect_text(0.0152, {"kind": "binary"}) == "+1.52 pp"
    assert effect_text(-8.91, {"kind": "continuous", "unit": "dollars"}) == "-$8.91"
    assert effect_text(0.034, {"kind": "count", "unit": "tickets"}) == "+0.034"


def test_recommend_launch_targeted(summary):
    rec = recommend(summary)
    assert rec["decision"] == LAUNCH_TARGETED and rec["policy"] == "targeted" and rec["launch"]
    assert any("treat_all" in r for r in rec["reasons"]) is False  # treat_all is worth less


def test_recommend_launch_all(summary):
    s = copy.deepcopy(summary)
    s["recommended_policy"] = "treat_all"
    s["policies"]["treat_all"]["expected_value"] = 9e5
    s["guardrails"] = []
    assert recommend(s)["decision"] == LAUNCH_ALL


def test_recommend_hold_when_nothing_passes(summary):
    s = copy.deepcopy(summary)
    s["recommended_policy"] = "treat_none"
    for g in s["guardrails"]:
        g["passes"] = False
    rec = recommend(s)
    assert rec["decision"] == NO_LAUNCH and rec["policy"] is None
    assert any("fails Primary value" in r for r in rec["reasons"])


@pytest.mark.parametrize(
    ("check", "kind", "words"),
    [
        ("Sample ratio mismatch", "data", "assignment and logging"),
        ("Covariate balance", "data", "assignment and logging"),
        ("R-hat", "sampler", "Re-fit"),
    ],
)
def test_recommend_refuses_when_checks_fail(summary, check, kind, words):
    s = copy.deepcopy(summary)
    s["checks"]["results"].append(
        {
            "name": check,
            "passes": False,
            "observed": 1.0,
            "threshold": 0.1,
            "detail": "bad",
            "kind": kind,
        }
    )
    rec = recommend(s)
    assert rec["decision"] == BLOCKED and not rec["launch"] and rec["policy"] is None
    assert any(check in r for r in rec["reasons"]) and any(words in r for r in rec["reasons"])
    doc = build_memo(s)
    md = to_markdown(doc)
    assert "No launch recommendation" in md and "provisional" in md


def test_memo_sections_in_seed_order(summary):
    md = to_markdown(build_memo(summary, load_card(RETENTION_CARD)))
    positions = [md.index(f"## {s}") for s in SECTIONS]
    assert positions == sorted(positions)
    assert "Launch targeted policy" in md and "$720,000" in md
    assert "Risk register" in md and "Feature dictionary" in md
    assert "0.60" in md  # break-even transport multiplier in the rollout conditions


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
        assert f"figures/{fig.name}" in md
    # re-rendering from the summary alone reproduces the memo
    summary = json.loads((result.folder / "summary.json").read_text())
    md2, _ = write_memo(summary, tmp_path / "again", load_card(RETENTION_CARD), result.figures)
    assert md2.read_text() == md
