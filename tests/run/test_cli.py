"""The CLI: a run folder end to end (fake fit in-process; a real quick fit is marked slow), memo
re-renders that never overwrite, and bad input with clear messages and tested exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bayesdecide.card import load_card
from bayesdecide.cli import EXIT_BLOCKED, EXIT_DATA, EXIT_OK, EXIT_USAGE, main
from bayesdecide.run import SCHEMA_VERSION, RunSummary, read_summary

from ..fakes import RETENTION_CARD


def _check_run_folder(folder: Path) -> RunSummary:
    for name in ("memo.md", "memo.html", "summary.json", "lineage.json", "card.toml", "fit.nc"):
        assert (folder / name).exists(), name
    figs = {p.stem for p in (folder / "figures").glob("*.png")}
    assert {
        "shrinkage",
        "effects_by_factor",
        "value_posterior",
        "policy_values",
        "guardrails",
        "sensitivity",
        "region_comparison",
    } <= figs
    raw = json.loads((folder / "summary.json").read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    s = read_summary(folder / "summary.json")
    assert json.loads(s.to_json()) == raw  # the typed summary round-trips
    assert set(s.effects) == {o.name for o in load_card(RETENTION_CARD).outcomes}
    rec = s.recommendation
    assert rec.policy is None or rec.policy in s.policies
    assert {"transport_multiplier", "annoyance_penalty"} <= set(s.break_even)
    assert s.checks.thresholds.max_rhat == 1.01
    assert {"max_rhat", "min_ess_bulk", "divergences"} <= set(s.diagnostics)
    lineage = json.loads((folder / "lineage.json").read_text())
    assert (
        lineage["card"]["sha256"] and lineage["spec_fingerprint"] and lineage["data"]["fingerprint"]
    )
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # nothing staged
    return s


def test_run_and_rerender(fake_pipeline, tmp_path, capsys):
    assert main(["run", str(RETENTION_CARD), "--out", str(tmp_path), "--quick"]) == EXIT_OK
    out, err = capsys.readouterr()
    folder = Path(out.strip().splitlines()[-1])
    assert folder.parent == tmp_path and "[1/7]" in err
    s = _check_run_folder(folder)
    assert s.settings.n_eligible == 120000 and s.settings.fixed_cost == 280000
    assert s.run.draws == 300 and s.run.chains == 2
    assert s.policies["treat_medium_and_high_risk"].label == "Treat medium and high risk"
    # a second run never overwrites the first
    assert main(["run", str(RETENTION_CARD), "--out", str(tmp_path), "--quick", "--quiet"]) == 0
    second = Path(capsys.readouterr().out.strip())
    assert second != folder and second.exists() and folder.exists()
    # re-render with other assumptions: a new sub-folder, the original untouched
    before = (folder / "summary.json").read_text()
    code = main(
        [
            "memo",
            str(folder),
            "--set",
            "annoyance_penalty=80",
            "--set",
            "fixed_cost=400000",
            "--quiet",
        ]
    )
    assert code == EXIT_OK
    sub = Path(capsys.readouterr().out.strip())
    assert sub.parent == folder / "rerenders"
    s2 = read_summary(sub / "summary.json")
    assert s2.settings.fixed_cost == 400000 and s2.settings.weights["annoyance"] == -80
    assert s2.break_even["annoyance_penalty"].current == 80
    assert s2.run.parent == str(folder) and s2.run.overrides["annoyance_penalty"] == 80
    assert (folder / "summary.json").read_text() == before
    assert (sub / "memo.html").exists() and "annoyance_penalty=80" in (sub / "memo.md").read_text()
    # the same re-render twice gives two folders
    assert main(["memo", str(folder), "--set", "annoyance_penalty=80", "--quiet"]) == 0
    assert len(list((folder / "rerenders").iterdir())) == 2


def _card_with(tmp_path: Path, edit) -> Path:
    raw = RETENTION_CARD.read_text()
    path = tmp_path / "card.toml"
    path.write_text(edit(raw))
    return path


def test_missing_card(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_bad_key(tmp_path, capsys):
    path = _card_with(tmp_path, lambda t: t.replace("eligible = 120000", "eligble = 120000"))
    assert main(["run", str(path), "--out", str(tmp_path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "unknown key 'launch.eligble'" in err and "Did you mean 'eligible'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_wrong_type(tmp_path, capsys):
    path = _card_with(tmp_path, lambda t: t.replace("eligible = 120000", 'eligible = "lots"'))
    assert main(["validate", str(path)]) == EXIT_USAGE
    assert "'launch.eligible' must be an integer" in capsys.readouterr().err


def test_unreadable_data(tmp_path, capsys):
    def to_file(t: str) -> str:
        t = t.replace('simulator = "retention"', 'path = "data/missing.parquet"')
        return t.replace("[data.args]\nseed = 808\nn = 42000\n", "")

    path = _card_with(tmp_path, to_file)
    assert main(["run", str(path), "--out", str(tmp_path)]) == EXIT_DATA
    err = capsys.readouterr().err
    assert "missing.parquet" in err and "does not exist" in err and "Traceback" not in err
    # a file that is not Parquet
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "missing.parquet").write_text("not parquet")
    assert main(["run", str(path), "--out", str(tmp_path)]) == EXIT_DATA
    assert "data:" in capsys.readouterr().err


def test_data_not_matching_card(tmp_path, retention, capsys):
    df = retention.data.drop(columns=["seats"])
    (tmp_path / "d.csv").write_text(df.head(2000).to_csv(index=False))

    def to_csv(t: str) -> str:
        t = t.replace('simulator = "retention"', 'path = "d.csv"')
        return t.replace("[data.args]\nseed = 808\nn = 42000\n", "")

    path = _card_with(tmp_path, to_csv)
    assert main(["run", str(path), "--out", str(tmp_path)]) == EXIT_DATA
    err = capsys.readouterr().err
    assert "'seats'" in err and "Traceback" not in err


def test_memo_bad_inputs(tmp_path, capsys):
    assert main(["memo", str(tmp_path), "--set", "fixed_cost=1"]) == EXIT_USAGE
    assert "not a complete run folder" in capsys.readouterr().err
    assert main(["memo", str(tmp_path)]) == EXIT_USAGE
    assert "--set" in capsys.readouterr().err


def test_memo_refuses_refit_keys(fake_pipeline, tmp_path, capsys):
    assert main(["run", str(RETENTION_CARD), "--out", str(tmp_path), "--quick", "--quiet"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert main(["memo", str(folder), "--set", "hierarchy.factors=['segment']"]) == EXIT_USAGE
    assert "needs a refit" in capsys.readouterr().err
    assert main(["memo", str(folder), "--set", "launch.eligble=5"]) == EXIT_USAGE
    assert "unknown key 'launch.eligble'" in capsys.readouterr().err
    assert main(["memo", str(folder), "--set", "nonsense"]) == EXIT_USAGE


def test_usage_errors(capsys):
    assert main([]) == EXIT_USAGE
    assert main(["run"]) == EXIT_USAGE
    assert main(["run", str(RETENTION_CARD), "--draws", "0"]) == EXIT_USAGE
    assert main(["--help"]) == EXIT_OK
    capsys.readouterr()


def test_console_script_exit_code(tmp_path):
    exe = Path(sys.executable).with_name("bayesdecide")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bayesdecide.cli"]
    proc = subprocess.run(
        [*cmd, "run", str(tmp_path / "missing.toml")], capture_output=True, text=True
    )
    assert proc.returncode == EXIT_USAGE
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_both_cards(capsys):
    root = RETENTION_CARD.parent
    for card in sorted(root.glob("*.toml")):
        assert main(["validate", str(card)]) == EXIT_OK
        assert tomllib.loads(card.read_text())["card"]["name"] in capsys.readouterr().out


@pytest.mark.slow
def test_real_quick_run(tmp_path, capsys):
    """The README's main command with real (small) sampling."""
    code = main(["run", str(RETENTION_CARD), "--out", str(tmp_path), "--quick", "--quiet"])
    folder = Path(capsys.readouterr().out.strip())
    s = _check_run_folder(folder)
    assert code == (EXIT_BLOCKED if s.recommendation.blocked else EXIT_OK)
    code = main(["memo", str(folder), "--set", "transport_multiplier=0.8", "--quiet"])
    assert code == (EXIT_BLOCKED if s.recommendation.blocked else EXIT_OK)
    shutil.rmtree(folder)


def test_rerender_with_launch_mix_and_rule(fake_pipeline, tmp_path, capsys):
    assert main(["run", str(RETENTION_CARD), "--out", str(tmp_path), "--quick", "--quiet"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    mix = '{"Low risk" = 0.2, "Medium risk" = 0.5, "High risk" = 0.3}'
    code = main(
        [
            "memo",
            str(folder),
            "--set",
            f"launch.mix.risk_band={mix}",
            "--set",
            "rules.Primary value.min_prob=0.95",
            "--set",
            "launch.fixed_cost_scaling=constant",
            "--quiet",
        ]
    )
    assert code == EXIT_OK
    sub = Path(capsys.readouterr().out.strip())
    s = read_summary(sub / "summary.json")
    base = read_summary(folder / "summary.json")
    assert s.settings.fixed_cost_scaling == "constant"
    assert s.policies["treat_all"].expected_value != base.policies["treat_all"].expected_value
    thresholds = {g.rule: g.threshold for g in s.guardrails}
    assert thresholds["Primary value"] == 0.95


def test_validate_by_names_a_factor_the_card_pools_over(capsys):
    assert main(["validate", str(RETENTION_CARD), "--by", "country"]) == EXIT_USAGE
    assert "hierarchy.factors" in capsys.readouterr().err


@pytest.mark.slow
def test_validate_cross_validates_by_region(capsys):
    """Each of the seed's three regions held out in turn (quick refits): a row per region and
    checked outcome with its predictive interval and PIT."""
    assert (
        main(["validate", str(RETENTION_CARD), "--by", "region", "--quick", "--quiet"]) == EXIT_OK
    )
    out = capsys.readouterr().out
    assert "cross-validation by region (3 levels" in out
    for region in ("Americas", "EMEA", "APAC"):
        assert region in out


def test_a_run_records_the_warm_up_and_sampler_that_ran(fake_pipeline, tmp_path, monkeypatch):
    """A card without ``[fit].tune`` (the shipped ones) leaves the warm-up to the fit (so a
    fallback from nutpie to PyMC runs PyMC's 1000 steps, not nutpie's 300); the run summary
    records the warm-up and the sampler the fit resolved, from its lineage."""
    from bayesdecide.run import run_card

    from ..fakes import FakeFit

    card = load_card(RETENTION_CARD)
    assert card.sampling.tune is None
    asked = []

    def fell_back(cells, card, settings, progressbar):
        asked.append(settings["tune"])
        fit = FakeFit.from_cells(cells, draws=settings["draws"], chains=settings["chains"])
        fit.lineage = {"settings": {"tune": 1000, "sampler": "pymc", "seed": settings["seed"]}}
        return fit

    monkeypatch.setattr(fake_pipeline, "fit_model", fell_back)
    result = run_card(card, tmp_path, draws=50, chains=2, progress=None, registry=False)
    assert asked == [None]
    run = read_summary(result.folder / "summary.json").run
    assert (run.tune, run.sampler) == (1000, "pymc")
