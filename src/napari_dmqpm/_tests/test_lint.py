"""The code style is part of the test suite: ruff (with pydocstyle and the banned-api rule),
numpydoc validation (every public callable documents its parameters) and mypy on the core
packages (the files pyproject.toml names)."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _ruff() -> list[str]:
    local = Path(sys.executable).with_name("ruff")
    if local.exists():
        return [str(local)]
    found = shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (it comes with the test extra)")
    return [found]


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source checkout")
def test_ruff_check_passes():
    done = subprocess.run(
        [*_ruff(), "check", "src", "benchmarks", "scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow  # about a minute the first time; mypy's cache makes later runs take seconds
@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source checkout")
def test_mypy_passes_on_the_core():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (it comes with the test extra)")
    done = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source checkout")
def test_every_public_callable_documents_its_parameters():
    if importlib.util.find_spec("numpydoc") is None:
        pytest.skip("numpydoc is not installed (it comes with the test extra)")
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "src" / "napari_dmqpm").rglob("*.py"))
    done = subprocess.run(
        [sys.executable, "-m", "numpydoc", "lint", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
