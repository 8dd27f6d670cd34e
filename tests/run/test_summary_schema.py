"""The published run summary schema (docs/run_summary.md) is the code's, and round-trips."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bayesdecide.errors import RunFolderError
from bayesdecide.run.summary import SCHEMA_VERSION, RunSummary, read_summary, schema_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "run_summary.md"


def test_schema_page_matches_the_code():
    assert DOC.read_text() == schema_markdown(), (
        "docs/run_summary.md is out of date: run "
        "`python -m bayesdecide.run.summary > docs/run_summary.md`"
    )


def test_every_field_is_documented():
    text = schema_markdown()
    for name in ("RunSummary", "PolicySummary", "Recommendation", "CheckResult", "BreakEven"):
        assert f"## {name}" in text
    assert "| `| " not in text and "|  |" not in text.replace("| `", "")


def test_wrong_version_or_damaged_file_names_the_file(tmp_path):
    bad = tmp_path / "summary.json"
    bad.write_text('{"schema_version": 1}')
    with pytest.raises(RunFolderError, match="summary.json cannot be read.*version 1"):
        read_summary(bad)
    bad.write_text("{not json")
    with pytest.raises(RunFolderError, match="summary.json cannot be read"):
        read_summary(bad)
    with pytest.raises(RunFolderError, match="summary.json is missing"):
        read_summary(tmp_path / "nope" / "summary.json")


def test_fields_have_meanings():
    def walk(cls, seen):
        if cls in seen or not dataclasses.is_dataclass(cls):
            return
        seen.add(cls)
        for f in dataclasses.fields(cls):
            assert f.metadata.get("doc"), f"{cls.__name__}.{f.name} has no meaning"

    walk(RunSummary, set())
    assert SCHEMA_VERSION >= 2
