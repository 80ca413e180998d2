"""Docking the widgets imports no torch: it loads in the worker, when a run starts.

Runs in a fresh interpreter, so modules imported by other tests do not count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

# Docks every widget through the manifest, adds a layer and picks every listed model (field
# changes), then prints which heavy modules got imported and which of our frames did it.
_DOCK = textwrap.dedent(
    """
    import json, sys, traceback

    HEAVY = ("torch", "safetensors", "laptrack", "scipy.stats")
    culprits = {}

    class Probe:
        def find_spec(self, name, path=None, target=None):
            if name in HEAVY and name not in culprits:
                ours = [f"{frame.filename.split('src/')[-1]}:{frame.lineno}"
                        for frame in traceback.extract_stack() if "napari_dmqpm" in frame.filename]
                culprits[name] = ours or ["(not napari_dmqpm)"]
            return None

    sys.meta_path.insert(0, Probe())
    import numpy as np
    import napari
    from qtpy.QtWidgets import QApplication
    from napari_dmqpm._napari._widgets._form import ModelBox

    viewer = napari.Viewer(show=False)
    picked = []
    for name in ("Segment cells", "Fine-tune model", "Cell growth"):
        _, widget = viewer.window.add_plugin_dock_widget("napari-dmqpm", name)
        viewer.add_image(np.zeros((32, 32), np.float32), name=f"{name} phase")
        for box in widget.findChildren(ModelBox):
            for index in range(box.count()):
                box.setCurrentIndex(index)
                picked.append(box.currentText())
        QApplication.processEvents()
    viewer.close()
    imported = [n for n in HEAVY if n in sys.modules]
    print(json.dumps({"imported": imported, "culprits": culprits, "picked": picked}))
    """
)


def test_docking_both_widgets_imports_no_torch(models, tmp_path):
    # a user model beside the shipped ones (listing reads its config.json alone)
    (models / "my-model").mkdir()
    config = {"format": "napari-dmqpm-checkpoint", "format_version": 1, "model": {}}
    (models / "my-model" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    done = subprocess.run(  # the models fixture's folders travel in the environment
        [sys.executable, "-c", _DOCK],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=dict(os.environ),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["imported"] == [], result["culprits"]
    assert result["picked"].count("my-model") == 2, result["picked"]  # one box per widget
