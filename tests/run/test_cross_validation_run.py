"""A card's ``hierarchy.cross_validate``: each run holds out every level of the factor, refits,
predicts it, records it in summary.json and the memo, and warns about a mispredicted level."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import bayesdecide as bd
from bayesdecide.card import CardError, load_card
from bayesdecide.report import to_markdown
from bayesdecide.report.memo import build_memo
from bayesdecide.run import read_summary, rerender

ROOT = Path(__file__).resolve().parents[2]
CARD = ROOT / "models" / "retention_outreach.toml"
FACTORS = 'interactions = [["segment", "risk_band"]]'


def _card(tmp_path: Path, extra: str) -> Path:
    text = CARD.read_text()
    assert FACTORS in text
    path = tmp_path / "card.toml"
    path.write_text(text.replace(FACTORS, FACTORS + "\n" + extra, 1))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cv")
    card = _card(tmp, 'cross_validate = ["region"]')
    return bd.run_card(card, tmp / "runs", quick=True, progress=None, registry=False)


def test_each_region_is_held_out_and_reported(run):
    held = run.summary.cross_validation
    card = load_card(run.folder / "card.toml")
    outcomes = [card.primary_outcome] + [
        o for o in card.guardrail_outcomes if o != card.primary_outcome
    ]
    assert sorted({h.level for h in held}) == ["APAC", "Americas", "EMEA"]
    assert len(held) == 3 * len(outcomes)
    for h in held:
        assert h.factor == "region" and h.lower < h.mean < h.upper and 0 <= h.pit <= 1
        assert h.surprising == (not 0.025 <= h.pit <= 0.975)
    # summary.json round-trips it; the memo shows the table
    assert read_summary(run.folder / "summary.json").cross_validation == held
    md = run.memo_md.read_text()
    assert "**Cross-validation by region.**" in md and "region = APAC" in md
    # a re-render changes assumptions, not the model: the parent's cross-validation is kept
    again = rerender(run.folder, {"annoyance_penalty": 50}, progress=None, registry=False)
    assert again.summary.cross_validation == held


def test_the_memo_warns_about_a_mispredicted_level(run):
    first = run.summary.cross_validation[0]
    bad = dataclasses.replace(first, pit=0.004, covered=False, surprising=True)
    summary = dataclasses.replace(run.summary, cross_validation=[bad])
    md = to_markdown(build_memo(summary))
    assert f"mispredicted region = {first.level}" in md and "PIT 0.004" in md
    fine = dataclasses.replace(run.summary, cross_validation=[first])
    if not first.surprising:
        assert "mispredicted" not in to_markdown(build_memo(fine))


def test_cross_validating_a_factor_the_card_does_not_pool_is_refused(tmp_path):
    with pytest.raises(CardError, match=r"hierarchy.cross_validate\[0\]' is 'channel'"):
        load_card(_card(tmp_path, 'cross_validate = ["channel"]'))


def test_the_memo_lists_every_prior_the_fit_used(run):
    """Natural units, per prior and modelled outcome (net margin is derived from the others), as
    ``fit.priors`` gives them (issue 12: priors a statistician can read)."""
    priors = run.summary.priors
    # three regions: a fixed, wide spread (few levels are not pooled); the interaction is pooled
    assert priors["sigma_region[gross_margin]"].startswith("Fixed(value=")
    assert priors["sigma_segment_x_risk_band[gross_margin]"].startswith("HalfNormal(sigma=")
    assert priors["mu[gross_margin]"].startswith("Normal(mu=0, sigma=")
    md = run.memo_md.read_text()
    assert "| sigma_region | gross_margin | Fixed(value=" in md
    assert "| sigma_segment_x_risk_band | gross_margin | HalfNormal(sigma=" in md
