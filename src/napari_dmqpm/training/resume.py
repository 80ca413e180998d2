"""Whether a run folder may be resumed: the stored run must be the one asked for.

A run folder (``TrainConfig.checkpoint_dir``) holds ``train_config.json``, ``train_data.json``
(a digest of the images passed in memory, e.g. by fine-tuning) and ``last/``, ``best/``.
Calling :func:`~napari_dmqpm.training.iter_training` again on it resumes ``last/``, which is
right only when the request is the stored run: the same model, base checkpoint, data and
recipe. Only the budget (``minutes``, ``epochs``), the device and the data loading may change.
Anything else is refused (:func:`check_resume`) before any work, or, with ``overwrite``, the
earlier run's files are removed (:func:`clear_run`) and the run starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_dmqpm.training.config import TrainConfig

__all__ = ["RESUMABLE", "RUN_FILES", "check_resume", "clear_run", "data_digest", "save_digest"]

#: ``TrainConfig`` fields a resumed run may change.
RESUMABLE = frozenset(
    {"minutes", "epochs", "device", "checkpoint_dir", "num_workers", "validate_every"}
)

#: What a run writes into its folder (removed by :func:`clear_run`, nothing else).
RUN_FILES = ("last", "last.old", "best", "train_config.json", "train_data.json")

_CONFIG, _DATA = "train_config.json", "train_data.json"


def data_digest(samples: Sequence[Any]) -> str:
    """SHA-256 of the arrays of ``samples`` (phase, labels, angles; shapes and dtypes too).

    Parameters
    ----------
    samples : sequence of Sample
        Images with their labels.
    """
    digest = hashlib.sha256()
    for sample in samples:
        for array in (sample.phase, sample.labels, sample.angles):
            if array is None:
                digest.update(b"none")
                continue
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.data)
    return digest.hexdigest()


def _has_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in ("last", "last.old", "best"))


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_resume(config: TrainConfig, *, digest: str | None = None) -> bool:
    """Refuse to resume a run folder that holds a run other than the one asked for.

    Parameters
    ----------
    config : TrainConfig
        The run asked for; its ``checkpoint_dir`` is the folder.
    digest : str, optional
        :func:`data_digest` of the images passed in memory (None: none passed).

    Returns
    -------
    bool
        True when the folder holds this run (it will be resumed), False when it holds none.

    Raises
    ------
    FileExistsError
        The folder holds a run whose stored settings or data differ from ``config`` and
        ``digest`` (outside :data:`RESUMABLE`), or whose settings are not stored or not
        readable; the message names the folder and each difference.
    """
    folder = Path(config.checkpoint_dir)
    if not _has_run(folder):
        return False
    advice = "choose another folder, or start afresh with overwrite=True"
    try:
        stored = json.loads((folder / _CONFIG).read_text(encoding="utf-8"))
        data = {"sha256": None}  # runs from before train_data.json: no images in memory
        if (folder / _DATA).exists():
            data = json.loads((folder / _DATA).read_text(encoding="utf-8"))
        if not isinstance(stored, dict) or not isinstance(data, dict):
            raise ValueError("not a JSON object")
        stored = TrainConfig.from_dict(stored).to_dict()  # fields added since: their defaults
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise FileExistsError(
            f"{folder} holds an earlier run whose settings cannot be read ({error}); {advice}"
        ) from None
    stored, asked = (json.loads(json.dumps(c)) for c in (stored, config.to_dict()))
    differences = [
        f"{key}: stored {_short(stored.get(key))}, asked {_short(asked.get(key))}"
        for key in sorted(set(stored) | set(asked))
        if key not in RESUMABLE and stored.get(key) != asked.get(key)
    ]
    if data.get("sha256") != digest:
        differences.append(
            "the training images differ" if data.get("sha256") else "other training images"
        )
    if differences:
        raise FileExistsError(
            f"{folder} holds an earlier run with other settings ({'; '.join(differences)}); "
            f"resuming it would not train what was asked: {advice}"
        )
    return True


def save_digest(folder: str | Path, digest: str | None) -> Path:
    """Write ``train_data.json`` (the in-memory images' digest) into the run folder.

    Parameters
    ----------
    folder : str or Path
        The run folder (``checkpoint_dir``).
    digest : str or None
        The digest of :func:`data_digest` (None: no in-memory images).
    """
    path = Path(folder) / _DATA
    path.write_text(json.dumps({"sha256": digest}) + "\n", encoding="utf-8")
    return path


def clear_run(folder: str | Path) -> None:
    """Remove an earlier run's files (:data:`RUN_FILES`) from ``folder``; nothing else.

    Parameters
    ----------
    folder : str or Path
        The run folder (``checkpoint_dir``).
    """
    folder = Path(folder)
    for name in RUN_FILES:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
