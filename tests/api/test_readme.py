"""The README's Python example runs as written: its code blocks, verbatim, twice in one process.

A notebook user pastes the README into one session and runs cells again; names must stay what they
are and the example's own assertion (the sampler diagnostics pass) must hold. The fit samples a
real model (4 chains x 1000 draws), so the run is marked slow; the fast test only checks that the
blocks are there and compile.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def python_blocks(text: str) -> list[str]:
    """The ```python fenced blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_starts_with_the_two_commands_and_has_a_python_example():
    text = README.read_text(encoding="utf-8")
    first = re.search(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)
    assert first is not None
    commands = [line.split("#")[0].strip() for line in first.group(1).splitlines()]
    assert commands == ["make run", "make test"]
    assert text.index("```bash") < text.index("```python")
    blocks = python_blocks(text)
    assert len(blocks) >= 2
    assert blocks[0].startswith("import bayesdecide as bd\n")
    code = "\n".join(blocks)
    for call in ("bd.fit(", "card.decide(fit", "for_new_level(", 'fit.diagnostics["ok"]'):
        assert call in code, call
    compile(code, "README.md", "exec")


@pytest.mark.slow
def test_readme_python_example_runs_twice_in_one_process(tmp_path, monkeypatch):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    code = compile("\n".join(blocks), "README.md", "exec")
    # the example reads models/ relative to the repository root and writes fit.nc: run it in a
    # scratch folder that sees the repository's models/
    (tmp_path / "models").symlink_to(ROOT / "models", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    results = []
    for _ in range(2):
        namespace: dict = {"__name__": "__readme__"}
        exec(code, namespace)
        results.append(namespace)
    first, second = results
    assert first["fit"].diagnostics["ok"] and second["fit"].diagnostics["ok"]
    # the same seed gives the same draws and the same decision, run after run
    assert (first["fit"].tau.values == second["fit"].tau.values).all()
    a, b = first["decision"].policy_table(), second["decision"].policy_table()
    assert a.equals(b)
    assert first["latam"].policy_table().equals(second["latam"].policy_table())
    assert (tmp_path / "fit.nc").exists()
