"""Listing models (and the napari reader) imports no torch; the model package imports lazily.

Each import check runs in a fresh interpreter, so modules imported by other tests do not count.
The checks go through the real ``napari_dmqpm/model/__init__.py`` and *call* the listing
functions: an earlier version loaded ``registry.py`` without the package ``__init__`` and only
named ``list_models``, so it missed that the package imported torch, and that listing did too
(through ``model.checkpoint``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: The heavy modules that docking a widget or listing models must not import.
HEAVY = ("torch", "safetensors")

# Prints, per heavy module, whether it got imported and which of our frames imported it first.
_PROBE = textwrap.dedent(
    """
    import json, sys, traceback

    HEAVY = HEAVY_NAMES
    culprits = {}

    class Probe:
        def find_spec(self, name, path=None, target=None):
            if name in HEAVY and name not in culprits:
                ours = [f"{frame.filename.split('src/')[-1]}:{frame.lineno}"
                        for frame in traceback.extract_stack() if "napari_dmqpm" in frame.filename]
                culprits[name] = ours or ["(not napari_dmqpm)"]
            return None

    sys.meta_path.insert(0, Probe())
    SETUP
    print(json.dumps({"imported": [n for n in HEAVY if n in sys.modules], "culprits": culprits}))
    """
)

# Lists the shipped models and the user's, the way the widgets' model boxes do.
_LIST_MODELS = """
import napari_dmqpm.model.registry as registry
infos = registry.list_models()
found = registry.find_model("phase-only")
registry.default_model_for("phase-map"), registry.user_models_dir()
shown = [(i.name, i.source, i.inputs, i.needs_angles, i.cell_diameter_px) for i in infos]
print(json.dumps(shown))
"""


def _imports(setup: str, *, env: dict[str, str] | None = None) -> dict:
    """Run ``setup`` in a fresh interpreter; what it imported of HEAVY, and the lines it printed."""
    code = _PROBE.replace("HEAVY_NAMES", repr(HEAVY)).replace("SETUP", setup.strip())
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    *printed, last = done.stdout.strip().splitlines()
    return {**json.loads(last), "printed": printed}


def test_listing_and_finding_models_imports_no_torch(tmp_path):
    from napari_dmqpm.model.registry import shipped_model_dirs

    shipped = [d for d in shipped_model_dirs() if (d / "phase-only" / "config.json").is_file()]
    if not shipped:
        pytest.skip("this installation ships no phase-only model")
    user = tmp_path / "models" / "my-model"
    user.mkdir(parents=True)  # a user model: its config is enough to be listed
    shutil.copy(shipped[0] / "phase-only" / "config.json", user / "config.json")
    result = _imports(_LIST_MODELS, env={"NAPARI_DMQPM_MODELS": str(user.parent)})
    assert result["imported"] == [], result["culprits"]
    shown = {name: rest for name, *rest in json.loads(result["printed"][-1])}
    assert shown["phase-only"][:3] == ["shipped", "phase", False]
    assert shown["phase-only"][3] is not None  # the cell size came from the config too
    assert shown["my-model"][:2] == ["user", "phase"]


def test_the_model_package_and_its_torch_free_modules_import_no_torch():
    result = _imports(
        "import napari_dmqpm.model\n"
        "from napari_dmqpm.model import ModelConfig, CheckpointError, read_checkpoint_config\n"
        "from napari_dmqpm.model.checkpoint_config import CONFIG_FILE, WEIGHTS_FILE\n"
        "from napari_dmqpm.inference import InferenceConfig, PostprocessConfig\n"
        "ModelConfig(), InferenceConfig(), PostprocessConfig()"
    )
    assert result["imported"] == [], result["culprits"]


def test_the_napari_reader_and_sample_data_import_no_torch():
    result = _imports(
        "import napari_dmqpm._napari._reader, napari_dmqpm._napari._sample_data\n"
        "import napari_dmqpm._napari._writer"
    )
    assert result["imported"] == [], result["culprits"]


@pytest.mark.parametrize(
    "package", ["napari_dmqpm.model", "napari_dmqpm.inference", "napari_dmqpm.training"]
)
def test_every_public_name_of_a_lazy_package_still_imports(package):
    pytest.importorskip("torch")
    import importlib

    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(module._WHERE)
    for name in module.__all__:
        value = getattr(module, name)
        home = importlib.import_module("." + module._WHERE[name].lstrip("."), package)
        assert value is getattr(home, name), name
        assert name in dir(module)
    with pytest.raises(AttributeError, match="attribute '?nothing"):
        module.nothing  # noqa: B018


def test_checkpoint_re_exports_the_torch_free_names():
    pytest.importorskip("torch")
    from napari_dmqpm.model import checkpoint, checkpoint_config, registry

    for name in checkpoint_config.__all__:
        assert getattr(checkpoint, name) is getattr(checkpoint_config, name), name
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        registry.find_model(Path("/nonexistent/model"))
