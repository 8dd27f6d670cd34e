"""A three-arm card through decision, summary and memo on a fake fit (flat-prior draws from the
multi-arm EffectTable, no sampling), and the CLI run and re-render of it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from bayesdecide.card import load_card
from bayesdecide.cli import EXIT_OK, main
from bayesdecide.report.document import to_markdown
from bayesdecide.report.memo import build_memo, pct, usd
from bayesdecide.run.pipeline import describe_data
from bayesdecide.run.summarize import build_summary
from bayesdecide.run.summary import RunInfo, RunSummary, read_summary

from ..fakes import OFFERS_CARD, FakeFit


@pytest.fixture(scope="module")
def card():
    return load_card(OFFERS_CARD)


@pytest.fixture(scope="module")
def offers_cells(card):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return card.cells()


@pytest.fixture(scope="module")
def built(card, offers_cells):
    fit = FakeFit.from_cells(offers_cells, draws=300, seed=1)
    decision = card.decide(fit, cells=offers_cells)
    run = RunInfo("r-1", "2026-01-01T00:00:00", True, 0.1, 300, 300, 2, 1, 0.9, "nutpie")
    summary, tables = build_summary(card, fit, decision, run, describe_data(card, offers_cells))
    return decision, summary, tables


def _section(md: str, start: str, end: str) -> str:
    return md[md.index(start) : md.index(end)]


def test_summary_has_the_arms_and_round_trips(built):
    decision, s, tables = built
    arms = s.arms
    assert arms is not None and s.effects == {}
    assert arms.control == "control" and arms.treatment_arms == ["outreach", "email"]
    assert set(arms.effects) == {"outreach", "email"}
    assert set(arms.effects["email"]) == set(s.outcomes)
    assert arms.all_policies == {"outreach": "treat_all_outreach", "email": "treat_all_email"}
    assert s.data.arm_counts == {"control": 10_366, "outreach": 21_025, "email": 10_609}
    assert s.data.n_treatment == 21_025 + 10_609
    # P(best) sums to one within every unit
    for rows in [arms.overall, arms.by_cell, *arms.by_level.values()]:
        totals: dict[str, float] = {}
        for r in rows:
            totals[r.unit] = totals.get(r.unit, 0.0) + r.prob_best
        assert all(abs(t - 1) < 1e-9 for t in totals.values())
    # the optimal choice per cell is the optimal policy's assignment
    optimal = {r.unit: r.choice for r in arms.by_cell if r.optimal}
    assert {c: a for c, a in optimal.items() if a != "none"} == s.optimal.assignment
    assert s.policies["optimal"].arm_shares == decision.arm_shares("optimal")
    assert {lv.arm for f in s.heterogeneity.values() for lv in f} == {"outreach", "email"}
    assert s.comparison is not None and s.comparison.arm == decision.lead_arm
    assert {b.arm for b in s.checks.balance} == {"outreach", "email"}
    assert "(2 df)" in next(c.detail for c in s.checks.results if c.name == "Sample ratio mismatch")
    assert {"best_arm_cells", "best_arm_levels", "best_arm_overall"} <= set(tables)
    text = s.to_json()
    assert RunSummary.from_dict(json.loads(text)).to_json() == text


def test_memo_sections_for_arms(built, card):
    _, s, _ = built
    md = to_markdown(build_memo(s, card))
    rec = s.recommendation
    head = md[: md.index("## 1. Decision")]
    assert rec.policy is not None
    shares = s.policies[rec.policy].arm_shares
    lead = max(shares, key=lambda a: shares[a] if shares[a] > 0 else -1)
    assert f"{lead} to" in head and "of customers" in head
    ident = _section(md, "## 3. Identification", "## 4. Primary effect")
    assert "10,366 control, 21,025 outreach, 10,609 email" in ident
    assert "control 25% / outreach 50% / email 25%" in ident
    primary = _section(md, "## 4. Primary effect", "## 5. Guardrails")
    assert "Assignment to **outreach** changed **net margin**" in primary
    assert "Assignment to **email** changed **net margin**" in primary
    assert "| Outcome | Role | outreach (95% CrI) | email (95% CrI) |" in primary
    guard = _section(md, "## 5. Guardrails", "## 6. Economics")
    assert "Outreach to everyone:" in guard and "Email to everyone:" in guard
    econ = _section(md, "## 6. Economics", "## 7. Heterogeneity")
    assert "| Policy | Arms | Expected value |" in econ
    assert "### Which arm, for whom" in econ
    by_band = {(r.unit, r.choice): r for r in s.arms.by_level["risk_band"]}
    low = by_band[("Low risk", "email")]
    assert f"{usd(low.mean, 2)} ({pct(low.prob_best)})" in econ
    overall = {r.choice: r for r in s.arms.overall}
    assert f"| {usd(overall['outreach'].mean)} |" in econ
    het = _section(md, "## 7. Heterogeneity", "## 8. Fairness")
    assert "| Segment | Arm | Customers |" in het and "Net value per customer if everyone" in het
    fair = _section(md, "## 8. Fairness", "## 9. Recommendation")
    assert "if all get outreach" in fair and "if all get email" in fair
    appendix = md[md.index("## Appendix") :]
    assert "| Covariate | Arm | Control mean | Arm mean | SMD |" in appendix
    assert "### H. Best arm per cell" in appendix
    cell = {(r.unit, r.choice): r for r in s.arms.by_cell}
    first = s.arms.by_cell[0].unit
    email = cell[(first, "email")]
    optimal = next(r.choice for r in s.arms.by_cell if r.unit == first and r.optimal)
    label = first.replace("|", "\\|")  # the cell label's separators are escaped in the table
    assert f"| {label} | " in appendix
    assert f"{usd(email.mean, 2)} ({pct(email.prob_best)})" in appendix
    assert f"| {optimal} |" in appendix


def test_two_arm_memo_has_no_arm_sections(summary_two_arm):
    md = to_markdown(build_memo(summary_two_arm))
    assert "Which arm" not in md and "Best arm per cell" not in md and "| Arms |" not in md


@pytest.fixture(scope="module")
def summary_two_arm(fake_fit, retention_cells):
    from ..fakes import RETENTION_CARD

    card = load_card(RETENTION_CARD)
    decision = card.decide(fake_fit, cells=retention_cells)
    run = RunInfo("r-1", "2026-01-01T00:00:00", True, 0.1, 200, 300, 2, 1, 0.9, "nutpie")
    s, _ = build_summary(card, fake_fit, decision, run, describe_data(card, retention_cells))
    assert s.arms is None
    return s


def test_three_arm_run_and_rerender(fake_pipeline, tmp_path, capsys):
    assert main(["run", str(OFFERS_CARD), "--out", str(tmp_path), "--quick"]) == EXIT_OK
    out, err = capsys.readouterr()
    folder = Path(out.strip().splitlines()[-1])
    assert "27 cells x 3 arms" in err
    figs = {p.stem for p in (folder / "figures").glob("*.png")}
    assert {
        "best_arm",
        "effects_by_factor_outreach",
        "effects_by_factor_email",
        "shrinkage_outreach",
        "shrinkage_email",
        "policy_values",
        "guardrails",
    } <= figs
    assert "figures/best_arm.png" in (folder / "memo.md").read_text()
    s = read_summary(folder / "summary.json")
    assert s.arms is not None
    code = main(["memo", str(folder), "--set", "annoyance_penalty=80", "--quiet"])
    assert code == EXIT_OK
    sub = Path(capsys.readouterr().out.strip())
    s2 = read_summary(sub / "summary.json")
    assert s2.settings.weights["annoyance"] == -80 and s2.arms is not None
    srm = next(c for c in s2.checks.results if c.name == "Sample ratio mismatch")
    assert "(2 df)" in srm.detail and srm.passes
