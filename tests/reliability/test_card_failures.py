"""Card failures found when the card loads (issue 15): `bayesdecide validate` catches everything
that needs only the card, with the key and the fix, before any data is read or sampled."""

from __future__ import annotations

from pathlib import Path

import pytest

from bayesdecide.cli import EXIT_OK, EXIT_USAGE, main

from ..fakes import RETENTION_CARD


def _card(tmp_path: Path, old: str, new: str) -> Path:
    text = RETENTION_CARD.read_text()
    assert old in text, old
    path = tmp_path / "card.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def _validate(path: Path, capsys) -> str:
    assert main(["validate", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absname", "a/b", ".hidden", ""])
def test_card_name_must_be_a_safe_folder_name(tmp_path, capsys, name):
    path = _card(tmp_path, 'name = "retention_outreach"', f'name = "{name}"')
    err = _validate(path, capsys)
    assert "'card.name'" in err and "no '/' or '..'" in err
    # and a run refuses it before writing anything, inside or outside --out
    assert main(["run", str(path), "--out", str(tmp_path / "runs")]) == EXIT_USAGE
    assert not (tmp_path / "runs").exists() and not Path("/tmp/absname").exists()


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("draws = 2000", "draws = -5", "draws = -5 is out of range"),
        ("draws = 2000", "draws = 0", "draws = 0 is out of range"),
        ("chains = 4", "chains = 0", "chains = 0 is out of range"),
        ("target_accept = 0.8", "target_accept = 1.5", "target_accept = 1.5 is out of range"),
        ("seed = 20260309", "seed = -1", "seed = -1 is out of range"),
    ],
)
def test_fit_values_are_range_checked(tmp_path, capsys, old, new, words):
    err = _validate(_card(tmp_path, old, new), capsys)
    assert "[fit]" in err and words in err and "give" in err


@pytest.mark.parametrize(
    "flag", [["--draws", "0"], ["--chains", "0"], ["--tune", "-1"], ["--seed", "-3"]]
)
def test_fit_flags_are_range_checked_before_any_work(tmp_path, capsys, flag):
    code = main(["run", str(RETENTION_CARD), "--out", str(tmp_path / "runs"), *flag])
    assert code == EXIT_USAGE
    assert "out of range" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_hierarchy_typo_blames_the_hierarchy_with_did_you_mean(tmp_path, capsys):
    path = _card(
        tmp_path,
        'factors = ["segment", "region", "risk_band"]',
        'factors = ["segment", "regoin", "risk_band"]',
    )
    err = _validate(path, capsys)
    assert "'hierarchy.factors[1]' is 'regoin'" in err and "Did you mean 'region'?" in err
    assert "compare_factor" not in err


def test_unknown_policy_level_is_found_at_load(tmp_path, capsys):
    path = _card(
        tmp_path, 'treat = { risk_band = ["High risk"] }', 'treat = { risk_band = ["Hi risk"] }'
    )
    err = _validate(path, capsys)
    assert "policies[3].treat.risk_band" in err and "'Hi risk'" in err
    assert "Did you mean 'High risk'?" in err and "[features.risk_band].levels" in err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_fixed_cost_must_be_finite(tmp_path, capsys, value):
    err = _validate(_card(tmp_path, "fixed_cost = 280000.0", f"fixed_cost = {value}"), capsys)
    assert "'launch.fixed_cost'" in err and "finite" in err


def test_transport_multiplier_must_be_positive(tmp_path, capsys):
    err = _validate(
        _card(tmp_path, "transport_multiplier = 1.0", "transport_multiplier = -3.0"), capsys
    )
    assert "'launch.transport_multiplier'" in err and "> 0" in err


def test_break_even_names_are_checked_at_load(tmp_path, capsys):
    path = _card(tmp_path, '"annoyance_penalty", "support', '"annoyance_penlty", "support')
    err = _validate(path, capsys)
    assert "'decision.break_even[1]' is 'annoyance_penlty'" in err
    assert "Did you mean 'annoyance_penalty'?" in err


def test_validate_accepts_the_shipped_cards(capsys):
    for card in sorted(RETENTION_CARD.parent.glob("*.toml")):
        assert main(["validate", str(card)]) == EXIT_OK
    assert "fit:" in capsys.readouterr().out
