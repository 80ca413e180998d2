"""The import rules of docs/architecture.md, checked.

- Opening a file (``napari_dmqpm.io``), retrieving phase and simulating never load torch or Qt
  (checked in a fresh interpreter, through ``sys.modules``).
- No module outside ``napari_dmqpm._napari`` (and its GUI tests in ``_tests/napari``) imports
  napari, qtpy, magicgui or a Qt binding (checked on the source with ``ast``, so a lazy import
  inside a function counts too).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import tifffile

PACKAGE_DIR = Path(__file__).resolve().parents[1]
GUI_MODULES = ("napari", "qtpy", "magicgui", "PyQt5", "PyQt6", "PySide2", "PySide6", "vispy")
FORBIDDEN_AT_RUNTIME = ("torch", "napari", "qtpy", "magicgui", "PyQt5", "PyQt6", "PySide6")


def _run_and_list_modules(code: str) -> set[str]:
    """Run ``code`` in a fresh interpreter; return the top-level names in ``sys.modules``."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json, sys
        print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_core_and_reading_a_file_load_neither_torch_nor_qt(tmp_path):
    path = tmp_path / "stack.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(path, rng.uniform(100, 200, (5, 32, 32)).astype(np.float32))
    loaded = _run_and_list_modules(
        f"""
        import napari_dmqpm.io, napari_dmqpm.phase, napari_dmqpm.simulation
        napari_dmqpm.io.inspect_file({str(path)!r})
        napari_dmqpm.io.read_acquisition({str(path)!r})
        """
    )
    assert not loaded & set(FORBIDDEN_AT_RUNTIME), sorted(loaded & set(FORBIDDEN_AT_RUNTIME))


def _imported_modules(source: str) -> set[str]:
    """Top-level names of every module imported anywhere in ``source``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and _is_import_module_call(node):
            names.add(node.args[0].value.split(".")[0])
    return names


def _is_import_module_call(node: ast.Call) -> bool:
    """``importlib.import_module("...")`` or ``__import__("...")`` with a literal name."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return (
        name in ("import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def test_import_parser_sees_lazy_and_dynamic_imports():
    source = (
        "def f():\n"
        "    from qtpy.QtWidgets import QWidget\n"
        "    importlib.import_module('napari.utils')\n"
    )
    assert _imported_modules(source) == {"qtpy", "napari"}


def test_only_the_napari_package_imports_gui_modules():
    offenders = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = path.relative_to(PACKAGE_DIR)
        if relative.parts[0] == "_napari" or relative.parts[:2] == ("_tests", "napari"):
            continue
        gui = _imported_modules(path.read_text(encoding="utf-8")) & set(GUI_MODULES)
        if gui:
            offenders.append(f"{relative}: {sorted(gui)}")
    assert not offenders, "GUI imports outside napari_dmqpm._napari:\n" + "\n".join(offenders)
