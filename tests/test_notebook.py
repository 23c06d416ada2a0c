"""notebooks/quickstart.ipynb runs from top to bottom (with a tiny budget)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("HCTREE_NOTEBOOK_PRESET", "tiny")
    monkeypatch.setenv("HCTREE_NOTEBOOK_SUBSET", "600")
    monkeypatch.setenv("HCTREE_NOTEBOOK_LEAVES", "3")
    monkeypatch.setenv("HCTREE_NOTEBOOK_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("HCTREE_THREADS", "1")
    monkeypatch.setenv(
        "PYTHONPATH", str(NOTEBOOK.parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the tree was drawn inline
    text = "".join(o.get("text", "") for o in outputs)
    assert "dendrogram purity" in text and "tree.nwk" in text
    assert (tmp_path / "out" / "tree.h5").exists() and (tmp_path / "out" / "tree.csv").exists()
