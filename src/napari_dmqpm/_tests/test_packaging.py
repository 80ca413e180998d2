"""The wheel ships the package, its napari.yaml and the weights, and no tests.

Building a wheel needs hatchling in an isolated build environment (a download), so these tests
read the build configuration instead: always pyproject.toml, and hatchling's own file
selection (what ``pip wheel .`` would pack, without packing it) where hatchling is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

#: The repository root (``src/napari_dmqpm/_tests/`` -> 3 levels up).
REPO_ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = REPO_ROOT / "pyproject.toml"
PACKAGE = "src/napari_dmqpm"

pytestmark = pytest.mark.skipif(
    not PYPROJECT.is_file(), reason=f"needs the source checkout ({PYPROJECT} is absent)"
)


def _wheel_config() -> dict:
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["hatch"]["build"][
        "targets"
    ]["wheel"]


def test_the_wheel_config_excludes_the_tests_and_force_includes_the_weights():
    config = _wheel_config()
    assert config["packages"] == [PACKAGE]
    excluded = {pattern.strip("/").removesuffix("/**") for pattern in config.get("exclude", [])}
    assert f"{PACKAGE}/_tests" in excluded, config
    assert config["force-include"] == {"weights": "napari_dmqpm/_weights"}
    assert (REPO_ROOT / PACKAGE / "napari.yaml").is_file()


def test_hatchling_selects_no_test_file_and_every_weight_and_the_manifest():
    wheel = pytest.importorskip("hatchling.builders.wheel", reason="hatchling is not installed")
    shipped = {
        item.distribution_path
        for item in wheel.WheelBuilder(str(REPO_ROOT)).recurse_included_files()
    }
    assert not [path for path in shipped if "_tests" in path or "conftest" in path]
    assert {
        "napari_dmqpm/napari.yaml",
        "napari_dmqpm/demo.py",
        "napari_dmqpm/__init__.py",
    } <= shipped
    weights = {
        f"napari_dmqpm/_weights/{path.relative_to(REPO_ROOT / 'weights').as_posix()}"
        for path in (REPO_ROOT / "weights").rglob("*")
        if path.is_file()
    }
    assert weights and weights <= shipped


#: The oldest torch with every API the package calls: torch.OutOfMemoryError (model.device),
#: torch.onnx.export(..., dynamo=False) (inference.backends), torch.amp.GradScaler(device).
OLDEST_TORCH = (2, 5)


def test_the_torch_lower_bound_has_the_apis_the_package_calls():
    import re

    import torch

    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    (spec,) = [dep for dep in project["dependencies"] if re.match(r"torch\b", dep)]
    low = re.search(r">=\s*(\d+)\.(\d+)", spec)
    assert low is not None and (int(low[1]), int(low[2])) >= OLDEST_TORCH, spec
    assert hasattr(torch, "OutOfMemoryError") and hasattr(torch.amp, "GradScaler")
