"""The run registry: every run, re-render and update recorded (DuckDB), listed, shown and compared;
safe under concurrent runs (real processes); deleted run folders reported, not crashed on."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import bayesdecide as bd
from bayesdecide.cli import EXIT_OK, EXIT_USAGE, main
from bayesdecide.errors import RegistryError
from bayesdecide.run.records import RunRecord, record_from_folder
from bayesdecide.run.registry import (
    DuckDBRegistry,
    RunRegistry,
    diff_records,
    find_record,
    open_registry,
    register_folder,
)

from ..fakes import RETENTION_CARD, ROOT

# A real process: `bayesdecide run` with the fit replaced by the fake (no sampling).
FAKE_RUN = textwrap.dedent(
    """
    import sys, warnings
    sys.path.insert(0, {root!r})
    warnings.simplefilter("ignore")
    from tests.fakes import FakeFit
    from bayesdecide.run import pipeline
    pipeline.fit_model = lambda cells, card, settings, progressbar: FakeFit.from_cells(
        cells, draws=settings["draws"], chains=settings["chains"])
    from bayesdecide.cli import main
    sys.exit(main(["run", {card!r}, "--out", sys.argv[1], "--quick", "--quiet"]))
    """
)

# A real process registering copies of one run folder under other ids, as fast as it can.
REGISTER_MANY = textwrap.dedent(
    """
    import sys, dataclasses
    sys.path.insert(0, {root!r})
    from bayesdecide.run.records import record_from_folder
    from bayesdecide.run.registry import DuckDBRegistry
    rec = record_from_folder(sys.argv[2])
    reg = DuckDBRegistry(sys.argv[1])
    for i in range(int(sys.argv[4])):
        reg.add(dataclasses.replace(rec, run_id=f"{{sys.argv[3]}}-{{i}}",
                                    folder=f"{{rec.folder}}-{{sys.argv[3]}}-{{i}}"))
    """
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A fake run and a re-render of it, registered in <out>/registry.duckdb."""
    from bayesdecide.run import pipeline, rerendering

    from ..fakes import FakeFit

    out = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            pipeline,
            "fit_model",
            lambda cells, card, s, pb: FakeFit.from_cells(cells, draws=s["draws"], chains=2),
        )
        mp.setattr(rerendering, "load_fit", FakeFit.load)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = bd.run_card(RETENTION_CARD, out, quick=True, progress=None)
            memo = rerendering.rerender(run.folder, {"annoyance_penalty": 80}, progress=None)
    return out, run, memo


def test_runs_and_rerenders_are_registered_with_their_parent(runs):
    out, run, memo = runs
    registry = out / "registry.duckdb"
    assert registry.is_file()
    assert run.record is not None and run.record.kind == "run" and run.record.parent_run is None
    assert memo.record.kind == "memo" and memo.record.parent_run == run.record.run_id
    table = bd.registry(registry)
    assert list(table.index) == [memo.record.run_id, run.record.run_id]  # newest first
    row = table.loc[run.record.run_id]
    assert row["folder_exists"] and row["card_name"] == "retention_outreach"
    assert row["card_sha256"] == run.summary.card.sha256
    assert row["data_fingerprint"] == run.summary.data.fingerprint
    assert row["spec_fingerprint"] == run.summary.lineage.spec_fingerprint
    assert row["factors"] == ["segment", "region", "risk_band"]
    assert row["interactions"] == ["segment x risk_band"]
    assert row["draws"] == 300 and row["chains"] == 2
    assert row["versions"]["pymc"] and row["settings"]["fixed_cost"] == 280000
    assert row["decision"] == run.summary.recommendation.decision
    assert row["policy"] == run.summary.recommendation.policy
    focus = run.summary.policies[run.summary.recommendation.policy]
    assert row["expected_value"] == pytest.approx(focus.expected_value)
    assert table.loc[memo.record.run_id, "overrides"] == {"annoyance_penalty": 80}
    # the top-level function, called twice (a name is one thing)
    assert bd.registry(registry).equals(table)
    assert callable(bd.registry)


def test_the_record_is_read_from_the_run_folder_alone(runs):
    _, run, memo = runs
    assert record_from_folder(run.folder) == run.record
    again = record_from_folder(memo.folder)
    assert again.parent_run == run.record.run_id and again.kind == "memo"
    # a re-render has no lineage.json: its model (versions, commit) is its parent's
    assert again.versions == run.record.versions


def test_row_round_trip_keeps_every_field(runs):
    _, run, _ = runs
    assert RunRecord.from_row(run.record.to_row()) == run.record


def test_cli_list_show_and_diff(runs, capsys):
    out, run, memo = runs
    reg = str(out / "registry.duckdb")
    assert main(["registry", "list", "--registry", reg]) == EXIT_OK
    listing = capsys.readouterr().out
    assert run.record.run_id in listing and "memo" in listing
    assert f"<- {run.record.run_id}" in listing
    assert main(["registry", "show", run.record.run_id, "--registry", reg]) == EXIT_OK
    shown = capsys.readouterr().out
    assert "card_sha256" in shown and run.record.card_sha256 in shown
    assert main(["registry", "diff", run.record.run_id, memo.record.run_id, "--registry", reg]) == 0
    diff = capsys.readouterr().out
    assert "settings.weights.annoyance" in diff and "-45" in diff
    assert "overrides.annoyance_penalty" in diff
    # a unique prefix and a folder path name a run too
    assert main(["registry", "show", str(memo.folder), "--registry", reg]) == EXIT_OK
    capsys.readouterr()


def test_diff_records_reports_what_changed_with_units(runs):
    _, run, memo = runs
    d = diff_records(run.record, memo.record).set_index("field")
    assert d.loc["settings.weights.annoyance", "change"] == pytest.approx(-45.0)
    assert d.loc["kind", "b"] == "memo"
    assert "run_id" not in d.index and "folder" not in d.index
    assert diff_records(run.record, run.record).empty


def test_unknown_and_ambiguous_runs_name_the_candidates(runs):
    out, run, memo = runs
    records = open_registry(out / "registry.duckdb").records()
    with pytest.raises(RegistryError, match="no run 'nope'"):
        find_record(records, "nope")
    with pytest.raises(RegistryError, match="matches 2 runs"):
        find_record(records, "retention_outreach-")
    assert main(["registry", "show", "nope", "--registry", str(out / "registry.duckdb")]) == 2


def test_a_run_folder_deleted_by_hand_is_reported_not_crashed_on(runs, tmp_path, capsys):
    out, run, _ = runs
    copy = tmp_path / "copy"
    shutil.copytree(run.folder, copy)
    reg = tmp_path / "registry.duckdb"
    rec = register_folder(copy, reg)
    shutil.rmtree(copy)
    table = bd.registry(reg)
    assert not table.loc[rec.run_id, "folder_exists"]
    assert main(["registry", "list", "--registry", str(reg)]) == EXIT_OK
    assert "[folder missing]" in capsys.readouterr().out
    assert main(["registry", "show", rec.run_id, "--registry", str(reg)]) == EXIT_OK
    assert "no longer exists" in capsys.readouterr().out
    # registering a folder that is gone is a clear usage error
    assert main(["registry", "add", str(copy), "--registry", str(reg)]) == EXIT_USAGE
    assert "is not a run folder" in capsys.readouterr().err


def test_registry_add_is_idempotent_and_defaults_next_to_the_run(runs, tmp_path, capsys):
    _, run, _ = runs
    copy = tmp_path / run.folder.name
    shutil.copytree(run.folder, copy)
    for _ in range(2):
        assert main(["registry", "add", str(copy)]) == EXIT_OK
    assert "registered" in capsys.readouterr().out
    assert len(bd.registry(tmp_path / "registry.duckdb")) == 1


def test_same_id_from_another_folder_is_refused(runs, tmp_path):
    _, run, _ = runs
    reg = DuckDBRegistry(tmp_path / "r.duckdb")
    reg.add(run.record)
    import dataclasses

    with pytest.raises(RegistryError, match="already holds run"):
        reg.add(dataclasses.replace(run.record, folder="/elsewhere"))


def test_two_runs_at_once_both_register(tmp_path):
    """Two `bayesdecide run` processes writing to one --out at the same time."""
    script = tmp_path / "fake_run.py"
    script.write_text(FAKE_RUN.format(root=str(ROOT), card=str(RETENTION_CARD)))
    out = tmp_path / "runs"
    procs = [
        subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    folders = [Path(p.communicate(timeout=600)[0].decode().strip()) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert folders[0] != folders[1] and all(f.is_dir() for f in folders)
    table = bd.registry(out / "registry.duckdb")
    assert sorted(table.index) == sorted(f.name for f in folders)


def test_concurrent_registrations_lose_nothing(runs, tmp_path):
    """Two processes registering 15 runs each as fast as they can: 30 records."""
    _, run, _ = runs
    script = tmp_path / "many.py"
    script.write_text(REGISTER_MANY.format(root=str(ROOT)))
    reg = tmp_path / "registry.duckdb"
    procs = [
        subprocess.Popen([sys.executable, str(script), str(reg), str(run.folder), tag, "15"])
        for tag in ("a", "b")
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    table = bd.registry(reg)
    assert len(table) == 30 and {i.split("-")[0] for i in table.index} == {"a", "b"}


def test_a_locked_registry_times_out_with_a_clear_error(runs, tmp_path):
    _, run, _ = runs
    path = tmp_path / "registry.duckdb"
    with open(str(path) + ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RegistryError, match="stayed locked by another process"):
            DuckDBRegistry(path, timeout=0.2).add(run.record)


def test_a_failed_registration_leaves_the_run_complete(fake_pipeline, tmp_path):
    bad = tmp_path / "not-a-file"
    bad.mkdir()
    with pytest.warns(RuntimeWarning, match="complete but was not registered"):
        result = bd.run_card(RETENTION_CARD, tmp_path / "runs", quick=True, progress=None,
                             registry=bad)  # fmt: skip
    assert result.record is None and (result.folder / "summary.json").is_file()


def test_no_registry_and_a_registry_flag(fake_pipeline, tmp_path, capsys):
    out = tmp_path / "runs"
    args = ["run", str(RETENTION_CARD), "--out", str(out), "--quick", "--quiet"]
    assert main([*args, "--no-registry"]) == EXIT_OK
    assert not (out / "registry.duckdb").exists()
    elsewhere = tmp_path / "central" / "reg.duckdb"
    assert main([*args, "--registry", str(elsewhere)]) == EXIT_OK
    assert len(bd.registry(elsewhere)) == 1 and not (out / "registry.duckdb").exists()
    capsys.readouterr()


def test_the_card_names_its_registry(fake_pipeline, tmp_path):
    card = tmp_path / "card.toml"
    card.write_text(RETENTION_CARD.read_text() + '\n[registry]\npath = "shared/registry.duckdb"\n')
    bd.run_card(card, tmp_path / "runs", quick=True, progress=None)
    assert len(bd.registry(tmp_path / "shared" / "registry.duckdb")) == 1
    assert not (tmp_path / "runs" / "registry.duckdb").exists()


def test_files_that_are_not_registries_are_refused(tmp_path):
    import duckdb

    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    with pytest.raises(RegistryError, match="not a bayesdecide run registry"):
        bd.registry(other)
    with pytest.raises(RegistryError, match="no registry at"):
        bd.registry(tmp_path / "missing.duckdb")
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    with pytest.raises(RegistryError, match="junk.duckdb"):
        bd.registry(junk)
    with pytest.raises(RegistryError, match="only DuckDB files"):
        open_registry("postgres://warehouse/runs")


def test_the_interface_is_small(tmp_path):
    reg = open_registry(tmp_path / "r.duckdb")
    assert isinstance(reg, RunRegistry)
    assert {"add", "records", "get"} <= set(dir(reg))


def test_registry_schema_version_is_checked(runs, tmp_path):
    import duckdb

    _, run, _ = runs
    path = tmp_path / "r.duckdb"
    DuckDBRegistry(path).add(run.record)
    con = duckdb.connect(str(path))
    con.execute("UPDATE registry_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(RegistryError, match="schema version 99"):
        bd.registry(path)


def test_summary_of_the_record_is_json_serialisable(runs):
    _, run, _ = runs
    json.dumps(run.record.to_row(), default=str)
