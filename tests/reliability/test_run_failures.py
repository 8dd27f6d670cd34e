"""Run failures (issue 15), driven through the CLI the way a user meets them: interrupted runs
leave nothing that looks complete, damaged run folders are named, loosened checks are recorded,
and every failure exits with its documented code."""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from bayesdecide import cli
from bayesdecide.cli import (
    EXIT_BLOCKED,
    EXIT_CODES,
    EXIT_FIT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    main,
)
from bayesdecide.run import pipeline, read_summary, rerendering

from ..fakes import RETENTION_CARD, FakeFit

ROOT = Path(__file__).resolve().parents[2]
BAD_DIAGNOSTICS = {"max_rhat": 3.649, "min_ess_bulk": 3.0, "divergences": 0}


def _fake_fit(diagnostics=None):
    def fit_model(cells, card, settings, progressbar):
        d = settings["draws"]
        return FakeFit.from_cells(
            cells, draws=d, chains=settings["chains"], diagnostics=diagnostics
        )

    return fit_model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two fake runs (no sampling): one whose diagnostics pass, one whose R-hat fails."""
    out = tmp_path_factory.mktemp("runs")
    folders = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rerendering, "load_fit", FakeFit.load)
        for name, diag, code in (
            ("good", None, EXIT_OK),
            ("blocked", BAD_DIAGNOSTICS, EXIT_BLOCKED),
        ):
            mp.setattr(pipeline, "fit_model", _fake_fit(diag))
            parent = out / name
            assert (
                main(["run", str(RETENTION_CARD), "--out", str(parent), "--quick", "--quiet"])
                == code
            )
            (folders[name],) = [p for p in parent.iterdir() if p.is_dir()]  # not the registry
    return folders


def _copy(folder: Path, tmp_path: Path) -> Path:
    dst = tmp_path / folder.name
    shutil.copytree(folder, dst)
    return dst


def _no_run_left(parent: Path) -> None:
    assert not parent.exists() or not list(parent.iterdir()), list(parent.iterdir())


def test_out_naming_a_file_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    def no_fit(*args, **kwargs):
        raise AssertionError("fitted although --out is a file")

    monkeypatch.setattr(pipeline, "fit_model", no_fit)
    out = tmp_path / "runs.txt"
    out.write_text("not a folder")
    assert main(["run", str(RETENTION_CARD), "--out", str(out), "--quick"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "runs.txt" in err
    assert main(["run", str(RETENTION_CARD), "--out", str(out / "sub"), "--quick"]) == EXIT_USAGE


def test_ctrl_c_during_sampling_exits_130_and_writes_nothing(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "fit_model", interrupted)
    assert main(["run", str(RETENTION_CARD), "--out", str(tmp_path), "--quick"]) == EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err
    _no_run_left(tmp_path)


def test_ctrl_c_swallowed_by_the_sampler_still_interrupts(tmp_path, monkeypatch, capsys):
    """The sampler catches Ctrl-C and returns a partial trace: the run must not go on."""
    fit_model = _fake_fit()

    def swallowing(cells, card, settings, progressbar):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            signal.sigtimedwait([], 0) if hasattr(signal, "sigtimedwait") else None
        except KeyboardInterrupt:
            pass  # what nutpie does: keep the draws so far
        return fit_model(cells, card, settings, progressbar)

    monkeypatch.setattr(pipeline, "fit_model", swallowing)
    assert main(["run", str(RETENTION_CARD), "--out", str(tmp_path), "--quick"]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "interrupted while sampling" in err and "Fitted in" not in err
    _no_run_left(tmp_path)


def test_a_partial_trace_is_a_fit_error_not_a_card_error(tmp_path, monkeypatch, capsys):
    def partial(cells, card, settings, progressbar):
        fit = FakeFit.from_cells(cells, draws=17, chains=settings["chains"])
        fit.tau.values[:, 10:] = np.nan
        return fit

    monkeypatch.setattr(pipeline, "fit_model", partial)
    assert main(["run", str(RETENTION_CARD), "--out", str(tmp_path), "--quick"]) == EXIT_FIT
    err = capsys.readouterr().err
    assert "2 chains x 17 draws, not the 2 x 300 asked for" in err
    _no_run_left(tmp_path)


@pytest.mark.parametrize("where", ["save", "memo"])
def test_ctrl_c_while_writing_leaves_no_run_folder(tmp_path, monkeypatch, capsys, where):
    monkeypatch.setattr(pipeline, "fit_model", _fake_fit())
    if where == "save":

        def save(self, path):  # the netCDF writer swallows the interrupt ("Exception ignored")
            Path(path).write_bytes(b"partial")
            try:
                os.kill(os.getpid(), signal.SIGINT)
            except KeyboardInterrupt:
                pass

        monkeypatch.setattr(FakeFit, "save", save)
    else:
        from bayesdecide.report import memo

        def write_memo(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(memo, "write_memo", write_memo)
    assert main(["run", str(RETENTION_CARD), "--out", str(tmp_path), "--quick"]) == EXIT_INTERRUPTED
    capsys.readouterr()
    _no_run_left(tmp_path)  # neither the run folder nor its hidden staging folder


def test_interrupted_rerender_leaves_no_sub_folder(runs, tmp_path, monkeypatch, capsys):
    folder = _copy(runs["good"], tmp_path)
    monkeypatch.setattr(rerendering, "load_fit", FakeFit.load)
    from bayesdecide.report import memo

    def write_memo(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(memo, "write_memo", write_memo)
    assert main(["memo", str(folder), "--set", "fixed_cost=1", "--quiet"]) == EXIT_INTERRUPTED
    capsys.readouterr()
    _no_run_left(folder / "rerenders")


@pytest.mark.parametrize("damage", ["missing", "empty", "garbage", "truncated"])
def test_damaged_fit_nc_is_named(runs, tmp_path, capsys, damage):
    folder = _copy(runs["good"], tmp_path)
    fit_nc = folder / "fit.nc"
    if damage == "missing":
        fit_nc.unlink()
    elif damage == "empty":
        fit_nc.write_bytes(b"")
    elif damage == "garbage":
        fit_nc.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(200))
    else:
        fit_nc.write_bytes(fit_nc.read_bytes()[:64])
    assert main(["memo", str(folder), "--set", "fixed_cost=1", "--quiet"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert str(fit_nc) in err and "unexpected" not in err
    assert ("is missing" in err) if damage == "missing" else ("damaged or incomplete" in err)


def test_broken_summary_json_is_named(runs, tmp_path, capsys):
    folder = _copy(runs["good"], tmp_path)
    (folder / "summary.json").write_text('{"schema_version": 2, "card": ')
    assert main(["memo", str(folder), "--set", "fixed_cost=1", "--quiet"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "summary.json cannot be read" in err and "damaged" in err


def test_loosened_checks_are_recorded_as_overrides(runs, tmp_path, monkeypatch, capsys):
    folder = _copy(runs["blocked"], tmp_path)
    base = read_summary(folder / "summary.json")
    assert base.recommendation.blocked
    monkeypatch.setattr(rerendering, "load_fit", FakeFit.load)
    sets = ["--set", "checks.max_rhat=5", "--set", "checks.min_ess_bulk=1"]
    assert main(["memo", str(folder), *sets, "--quiet"]) == EXIT_OK
    sub = Path(capsys.readouterr().out.strip())
    s = read_summary(sub / "summary.json")
    assert s.recommendation.loosened_checks == ("max_rhat 1.01 -> 5", "min_ess_bulk 400 -> 1")
    assert s.checks.loosened == list(s.recommendation.loosened_checks)
    md = (sub / "memo.md").read_text()
    head = md.split("## 1. Decision")[0]
    assert "rests on loosened checks" in head and "max_rhat 1.01 -> 5" in head
    # the check table shows the threshold actually used
    assert "| R-hat | pass | largest R-hat 3.649 (must be <= 5) |" in md
    assert "(must be <= 1.01) | pass" not in md


def test_memo_refuses_a_non_positive_transport_multiplier(runs, tmp_path, capsys):
    folder = _copy(runs["good"], tmp_path)
    assert main(["memo", str(folder), "--set", "transport_multiplier=-3"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "transport_multiplier" in err and "> 0" in err
    assert not (folder / "rerenders").exists()


def test_card_text_is_escaped_in_memo_md(tmp_path, monkeypatch, capsys):
    text = RETENTION_CARD.read_text().replace(
        'owner = "Customer Success analytics"', 'owner = "<script>alert(1)</script>"'
    )
    card = tmp_path / "card.toml"
    card.write_text(text)
    monkeypatch.setattr(pipeline, "fit_model", _fake_fit())
    assert main(["run", str(card), "--out", str(tmp_path / "runs"), "--quick", "--quiet"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert "<script>" not in (folder / "memo.md").read_text()
    assert "<script>" not in (folder / "memo.html").read_text()


def test_exit_codes_are_documented_once(capsys):
    """The user guide's table and `bayesdecide --help` list exactly the codes the CLI returns."""
    guide = (ROOT / "docs" / "user_guide.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", guide.split("### Exit codes")[1], re.M))
    assert {int(k): v for k, v in table.items()} == EXIT_CODES
    used = {
        int(getattr(cli, n))
        for n in re.findall(r"\b(EXIT_[A-Z]+)\b", Path(cli.__file__).read_text())
        if n != "EXIT_CODES"
    }
    assert used == set(EXIT_CODES)
    assert main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
    for code, text in EXIT_CODES.items():
        assert f"{code:>3}  {text[:30]}" in out
