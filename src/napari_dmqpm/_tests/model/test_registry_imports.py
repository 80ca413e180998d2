"""Importing the model registry (and the napari reader) must not import torch.

Each check runs in a fresh interpreter, so modules imported by other tests do not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Prints which modules of ours were executing when torch was first imported (or null).
_PROBE = textwrap.dedent(
    """
    import json, sys, traceback

    class Probe:
        culprit = None

        def find_spec(self, name, path=None, target=None):
            if name == "torch" and Probe.culprit is None:
                ours = [f"{frame.filename.split('src/')[-1]}:{frame.lineno}"
                        for frame in traceback.extract_stack() if "napari_dmqpm" in frame.filename]
                Probe.culprit = ours or ["(not napari_dmqpm)"]
            return None

    sys.meta_path.insert(0, Probe())
    SETUP
    print(json.dumps({"torch": "torch" in sys.modules, "culprit": Probe.culprit}))
    """
)

# Loads napari_dmqpm.model.registry without running napari_dmqpm/model/__init__.py.
_REGISTRY_ALONE = """
import importlib.util, pathlib, types, napari_dmqpm
folder = pathlib.Path(napari_dmqpm.__file__).parent / "model"
package = types.ModuleType("napari_dmqpm.model")
package.__path__ = [str(folder)]
sys.modules["napari_dmqpm.model"] = package
import napari_dmqpm.model.registry as registry
registry.list_models, registry.default_model_for("phase-map"), registry.user_models_dir()
"""


def _imports_torch(setup: str) -> dict:
    code = _PROBE.replace("SETUP", setup.strip())
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_registry_module_itself_imports_no_torch():
    result = _imports_torch(_REGISTRY_ALONE)
    assert not result["torch"], result["culprit"]


def test_the_napari_reader_and_sample_data_import_no_torch():
    result = _imports_torch(
        "import napari_dmqpm._napari._reader, napari_dmqpm._napari._sample_data\n"
        "import napari_dmqpm._napari._writer"
    )
    assert not result["torch"], result["culprit"]


def test_importing_napari_dmqpm_model_registry_gets_no_torch_from_the_registry():
    # napari_dmqpm/model/__init__.py still imports blocks, checkpoint, network (torch) eagerly;
    # wherever torch comes from, the registry module is not on the way
    result = _imports_torch("import napari_dmqpm.model.registry")
    if result["torch"]:
        assert not any("model/registry.py" in frame for frame in result["culprit"]), result
        assert any("model/__init__.py" in frame for frame in result["culprit"]), result
