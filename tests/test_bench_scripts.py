"""Every script in bench/ imports and answers --help (a helper module that others
import, with no ``__main__`` block, imports), so a change to the library or to a
module a script imports cannot leave a benchmark broken unnoticed."""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py"))


@pytest.fixture(autouse=True)
def bench_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


def test_bench_holds_scripts():
    assert len(SCRIPTS) > 10


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_imports_and_answers_help(name, monkeypatch):
    module = importlib.import_module(name)
    assert module.__doc__ and module.__doc__.strip(), f"bench/{name}.py has no docstring"
    if '__name__ == "__main__"' not in (BENCH / f"{name}.py").read_text():
        return  # a helper module
    assert callable(getattr(module, "main", None)), f"bench/{name}.py has no main()"
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stopped:
        module.main()
    assert stopped.value.code == 0
    assert "usage:" in out.getvalue()
