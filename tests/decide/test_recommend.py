"""The recommendation rule (one implementation) on hand-built policy and guardrail tables."""

from __future__ import annotations

import pandas as pd
import pytest

from bayesdecide.decide.checks import CheckResult, Checks
from bayesdecide.decide.recommend import (
    BLOCKED,
    LAUNCH_ALL,
    LAUNCH_TARGETED,
    NO_LAUNCH,
    recommend,
)

LABELS = {"treat_none": "Treat none", "treat_all": "Treat all", "targeted": "Targeted"}


def _tables(ev_all=2.5e4, ev_targeted=7.2e5, passes=(True, False, True)):
    policies = pd.DataFrame(
        {
            "expected_value": [0.0, ev_all, ev_targeted],
            "prob_positive": [0.0, 0.56, 0.99],
            "treated_share": [0.0, 1.0, 0.48],
            "passes_guardrails": list(passes),
        },
        index=pd.Index(["treat_none", "treat_all", "targeted"], name="policy"),
    )
    guardrails = pd.DataFrame(
        {
            "rule": ["Primary value"] * 3,
            "policy": list(policies.index),
            "passes": list(passes),
        }
    )
    return policies, guardrails


def test_launch_targeted():
    rec = recommend(*_tables(), None, LABELS)
    assert rec.decision == LAUNCH_TARGETED and rec.policy == "targeted" and rec.launch
    assert rec.rule_policy == "targeted" and not rec.blocked
    assert "'Targeted' has the highest expected launch value" in rec.reasons[0]


def test_launch_all_when_it_is_best_and_passes():
    rec = recommend(*_tables(ev_all=9e5, passes=(True, True, True)), None, LABELS)
    assert rec.decision == LAUNCH_ALL and rec.policy == "treat_all"


def test_higher_value_that_fails_is_explained():
    rec = recommend(*_tables(ev_all=9e5), None, LABELS)
    assert rec.policy == "targeted"
    assert any("'Treat all' has a higher expected value" in r for r in rec.reasons)


def test_do_not_launch_when_nothing_passes():
    rec = recommend(*_tables(passes=(False, False, False)), None, LABELS)
    assert rec.decision == NO_LAUNCH and rec.policy is None and rec.rule_policy is None
    assert any("'Targeted' fails Primary value" in r for r in rec.reasons)


def test_do_not_launch_when_the_best_passing_value_is_negative():
    rec = recommend(*_tables(ev_targeted=-1e4), None, LABELS)
    assert rec.decision == NO_LAUNCH
    assert any("expected launch value -$10,000" in r for r in rec.reasons)


@pytest.mark.parametrize(
    ("check", "kind", "words"),
    [
        ("Sample ratio mismatch", "data", "assignment and logging"),
        ("Covariate balance", "data", "assignment and logging"),
        ("R-hat", "sampler", "Re-fit"),
    ],
)
def test_failed_checks_block(check, kind, words):
    checks = Checks((CheckResult(check, False, 1.0, 0.1, "bad", kind),))
    rec = recommend(*_tables(), checks, LABELS)
    assert rec.decision == BLOCKED and rec.blocked and not rec.launch and rec.policy is None
    assert rec.rule_policy == "targeted"  # the provisional choice
    assert any(check in r for r in rec.reasons) and any(words in r for r in rec.reasons)


def test_loosened_checks_are_recorded():
    checks = Checks((CheckResult("R-hat", True, 3.6, 5.0, "ok", "sampler"),), loosened=("x",))
    rec = recommend(*_tables(), checks, LABELS)
    assert rec.launch and rec.loosened_checks == ("x",)
    assert "rests on loosened checks" in rec.reasons[-1]
