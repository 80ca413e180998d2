"""Shared fixtures and markers for the napari-dmqpm test suite.

- ``real_data_dir``: the measured data in ``<repo>/../shared/data/real`` (see
  ``../shared/data/README.md``); a test that asks for it is skipped, with the reason, where
  that folder is absent (on a user's machine, or an installed package).
- ``bench``: the script ``benchmarks/<BENCHMARK>.py`` named by the test module's ``BENCHMARK``,
  imported as ``benchmarks.<BENCHMARK>`` (skipped outside a source checkout).
- ``backend="auto"`` runs torch in every test, whatever runtimes are installed (an export and
  its check cost seconds per checkpoint); a test module that tests the choice itself sets
  ``KEEP_AUTO_BACKEND = True``.
- Tests marked ``gui`` need a display (napari draws with OpenGL; Qt's offscreen platform
  crashes when napari draws, so they run under Xvfb: ``make test`` does that) and napari with
  a Qt binding; without either they are skipped with the reason.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

#: The repository root (``src/napari_dmqpm/_tests/conftest.py`` -> 3 levels up).
REPO_ROOT = Path(__file__).resolve().parents[3]
#: Where the measured data lives, next to the repository.
REAL_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "real"
#: The benchmark scripts (in a source checkout only).
BENCHMARKS_DIR = REPO_ROOT / "benchmarks"


@pytest.fixture(autouse=True)
def _auto_backend_is_torch(request, monkeypatch):
    """``InferenceConfig(backend="auto")`` picks torch (see the module docstring)."""
    if getattr(request.module, "KEEP_AUTO_BACKEND", False):
        return
    from napari_dmqpm.inference import backends

    monkeypatch.setattr(backends, "AUTO_ORDER", ())


@pytest.fixture(scope="module")
def bench(request):
    """The benchmark script named by the test module's ``BENCHMARK``, imported as a module.

    The repository root is on ``sys.path`` only while the module's tests run, so that
    ``benchmarks.<script>`` (and the scripts it imports) can be imported; the package is
    forgotten afterwards.
    """
    name = request.module.BENCHMARK
    if not (BENCHMARKS_DIR / f"{name}.py").is_file():
        pytest.skip(f"needs the source checkout ({BENCHMARKS_DIR / name}.py is absent)")
    path = list(sys.path)
    sys.path.insert(0, str(REPO_ROOT))
    yield importlib.import_module(f"benchmarks.{name}")
    sys.path[:] = path
    for module in [m for m in sys.modules if m == "benchmarks" or m.startswith("benchmarks.")]:
        del sys.modules[module]


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real-data folder ``<repo>/../shared/data/real``; skips when it is absent."""
    if not REAL_DATA_DIR.is_dir():
        pytest.skip(f"real data not available: {REAL_DATA_DIR} does not exist")
    return REAL_DATA_DIR


def _gui_skip_reason() -> str | None:
    """Why GUI tests cannot run here, or None when they can."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return (
            "no display: run GUI tests under Xvfb "
            '(xvfb-run -a -s "-screen 0 1600x1000x24" python -m pytest; make test does this)'
        )
    for module in ("napari", "qtpy", "pytestqt"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'napari-dmqpm[test]')"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gui``-marked tests, with the reason, where there is no display or no Qt."""
    reason = _gui_skip_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gui" in item.keywords:
            item.add_marker(skip)
