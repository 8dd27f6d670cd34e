"""The notebooks execute top to bottom (kernel python3). Run with ``pytest -m notebook``.

Each is executed in a copy, from the notebooks/ folder, so the committed outputs stay as they are.
If no ``python3`` kernelspec is installed: ``python -m ipykernel install --sys-prefix``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors


def test_notebooks_are_committed_with_outputs():
    nbformat = pytest.importorskip("nbformat")
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("execution_count") for c in code), path.name
        assert nb.metadata["kernelspec"]["name"] == "python3"


def test_notebooks_keep_warnings_visible():
    """A notebook may silence one expected warning by its message, never every warning (a failed
    sampler diagnostic is a UserWarning)."""
    import re

    nbformat = pytest.importorskip("nbformat")
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "simplefilter(" not in code, path.name
        for call in re.findall(r"filterwarnings\((.*?)\)", code):
            assert "message=" in call, (path.name, call)
