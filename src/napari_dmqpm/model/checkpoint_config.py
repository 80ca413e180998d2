"""A checkpoint folder's file names and its ``config.json``, read with the json module alone.

The registry lists models (names, inputs, sizes, thresholds) from these files only, so listing
them, and docking the widgets that show the list, never imports torch or safetensors.
:mod:`napari_dmqpm.model.checkpoint` re-exports everything here and adds saving and loading
the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "SUMS_FILE",
    "WEIGHTS_FILE",
    "CheckpointError",
    "read_checkpoint_config",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SUMS_FILE = "SHA256SUMS"
CARD_FILE = "README.md"
FORMAT = "napari-dmqpm-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete, corrupt, or does not match its config."""


def read_checkpoint_config(folder: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint folder, without touching the weights.

    Parameters
    ----------
    folder : str or Path
        The checkpoint folder.

    Raises
    ------
    CheckpointError
        When the folder or its ``config.json`` is missing, or it is not a checkpoint config.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist or is not a folder")
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"checkpoint {folder} is missing {CONFIG_FILE}")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{CONFIG_FILE} in {folder} is not valid JSON: {err}") from err
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise CheckpointError(f"{CONFIG_FILE} in {folder} is not a {FORMAT} config")
    version = content.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{CONFIG_FILE} in {folder} has format_version={version!r}; this napari-dmqpm "
            f"reads versions <= {FORMAT_VERSION} (upgrade the package)"
        )
    _check_types(content, where=f"{CONFIG_FILE} in {folder}")
    return content


#: Keys of a checkpoint config whose values are JSON objects when present.
_OBJECTS = ("model", "postprocessing", "training", "postprocessing_tuning")


def _check_types(content: dict[str, Any], *, where: str) -> None:
    """CheckpointError for top-level values of the wrong JSON type (``"model": "big"``)."""
    for key in _OBJECTS:
        if content.get(key) is not None and not isinstance(content[key], dict):
            raise CheckpointError(
                f"{where}: {key!r} must be a JSON object; got {json.dumps(content[key])[:60]}"
            )
    digest = content.get("sha256")
    if digest is not None and not (
        isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest.lower())
    ):
        raise CheckpointError(
            f"{where}: 'sha256' must be 64 hexadecimal digits; got {json.dumps(digest)[:80]}"
        )
