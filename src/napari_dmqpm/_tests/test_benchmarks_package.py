"""benchmarks/ is a package: the scripts import each other as ``benchmarks.*``, and run as files."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BENCHMARKS = ROOT / "benchmarks"
pytestmark = pytest.mark.skipif(
    not (BENCHMARKS / "__init__.py").is_file(), reason="needs the source checkout (benchmarks/)"
)


def _scripts() -> list[Path]:
    return sorted(p for p in BENCHMARKS.glob("*.py") if p.name != "__init__.py")


def test_no_script_imports_another_by_its_bare_name():
    names = {p.stem for p in _scripts()}
    bare = []
    for path in _scripts():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module.split(".")[0]]
            else:
                continue
            bare += [f"{path.name}:{node.lineno} imports {m}" for m in modules if m in names]
    assert not bare, "import them as `from benchmarks import ...`: " + "; ".join(bare)


def test_no_script_puts_benchmarks_itself_on_sys_path():
    for path in _scripts():
        assert "Path(__file__).resolve().parent))" not in path.read_text(), path.name


@pytest.mark.parametrize("how", ["file", "module"])
def test_a_script_that_imports_others_runs_as_a_file_and_as_a_module(how, tmp_path):
    # loo_thresholds imports bench_scale and results, which import results_report, run_all,
    # baselines and iit; as a file it runs from another folder, as a module from the root
    command = (
        [str(BENCHMARKS / "loo_thresholds.py")]
        if how == "file"
        else ["-m", "benchmarks.loo_thresholds"]
    )
    done = subprocess.run(
        [sys.executable, *command, "--help"],
        cwd=tmp_path if how == "file" else ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
