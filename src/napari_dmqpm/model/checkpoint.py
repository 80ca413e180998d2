"""Checkpoints as folders: ``config.json``, ``model.safetensors``, ``SHA256SUMS``, ``README.md``.

``config.json`` holds::

    {"format": "napari-dmqpm-checkpoint", "format_version": 1,
     "model": {...ModelConfig.to_dict(), normalization included...},
     "postprocessing": {...free-form thresholds...}, "training": {...metadata...},
     "sha256": "<sha256 of model.safetensors>", ...any other JSON keys from ``extra``...}

Weights are safetensors, so loading never executes pickled code, and the file's sha256 is
checked before it is parsed. Saving is atomic: the folder is written under a temporary name
next to its destination and renamed into place, so a crash never leaves half a checkpoint.

The file names, :class:`CheckpointError` and :func:`read_checkpoint_config` live in the
torch-free :mod:`napari_dmqpm.model.checkpoint_config` (so listing models needs no torch)
and are re-exported here.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from .checkpoint_config import (
    CARD_FILE,
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    SUMS_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    read_checkpoint_config,
)
from .config import ModelConfig
from .device import resolve_device
from .network import DMQPMNet

__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "SUMS_FILE",
    "WEIGHTS_FILE",
    "CheckpointError",
    "load_checkpoint",
    "read_checkpoint_config",
    "save_checkpoint",
]

_RESERVED = ("format", "format_version", "model", "sha256")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def save_checkpoint(
    folder: str | Path,
    model: DMQPMNet,
    *,
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
    model_card: str | None = None,
) -> Path:
    """Write ``model`` as a checkpoint folder, atomically.

    Parameters
    ----------
    folder : str or Path
        Destination folder; its parent is created if needed.
    model : DMQPMNet
        The network; its ``config`` and ``state_dict`` are saved (tensors moved to the CPU).
    extra : dict, optional
        JSON-serialisable keys added to ``config.json``, typically ``postprocessing`` and
        ``training``; the keys ``format``, ``format_version``, ``model`` and ``sha256`` are
        reserved.
    overwrite : bool
        Replace an existing folder (atomically). Without it an existing folder is an error.
    model_card : str, optional
        Markdown written to ``README.md``.

    Returns
    -------
    Path
        The checkpoint folder.
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(
            f"checkpoint folder {folder} exists; pass overwrite=True to replace it"
        )
    if not isinstance(model, DMQPMNet):
        raise TypeError(f"model must be a DMQPMNet; got {type(model).__name__}")
    extra = dict(extra or {})
    clashes = sorted(set(extra) & set(_RESERVED))
    if clashes:
        raise ValueError(f"extra must not set the reserved keys {clashes}")
    try:
        json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"extra must be JSON-serialisable: {err}") from err
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        try:
            weights = str(staging / WEIGHTS_FILE)
            safetensors.torch.save_file(tensors, weights, metadata={"format": "pt"})
        except safetensors.SafetensorError as err:  # its I/O errors are not OSErrors
            raise write_error(folder / WEIGHTS_FILE, err, staging) from err
        digest = _sha256((staging / WEIGHTS_FILE).read_bytes())
        content = {"format": FORMAT, "format_version": FORMAT_VERSION}
        content.update({"model": model.config.to_dict(), "postprocessing": {}, "training": {}})
        content.update(extra, sha256=digest)
        (staging / CONFIG_FILE).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        (staging / SUMS_FILE).write_text(f"{digest}  {WEIGHTS_FILE}\n", encoding="utf-8")
        if model_card is not None:
            (staging / CARD_FILE).write_text(model_card, encoding="utf-8")
        _move_into_place(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


_OS_ERROR = re.compile(r"\(os error (\d+)\)")
#: Less room than this left after a library's failed write counts as a full disk.
FULL_DISK_BYTES = 2**20


def write_error(path: Path, error: BaseException, folder: Path) -> OSError:
    """An OSError naming ``path`` for a library's failed write that is not one.

    safetensors says ``"... (os error 28)"``, torch's writer ``"[enforce fail at
    inline_container.cc:...] . unexpected pos 576 vs 534"``: the errno is taken from the
    former; otherwise ``ENOSPC`` when ``folder`` has less than :data:`FULL_DISK_BYTES` left,
    else ``EIO`` with the library's words. The command line then shows one line naming the
    file, as for any full disk.

    Parameters
    ----------
    path : Path
        The file that was being written.
    error : BaseException
        What the library raised.
    folder : Path
        The folder written to, whose free space is checked.
    """
    found = _OS_ERROR.search(str(error))
    if found is not None:
        number = int(found.group(1))
        return OSError(number, os.strerror(number), str(path))
    try:
        status = os.statvfs(folder)
        full = status.f_bavail * status.f_frsize < FULL_DISK_BYTES
    except (OSError, AttributeError):  # no statvfs (Windows), or the folder is gone
        full = False
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return OSError(errno.EIO, f"the write failed ({type(error).__name__}: {error})", str(path))


def load_checkpoint(
    folder: str | Path,
    *,
    device: str | torch.device = "cpu",
    expected_sha256: str | None = None,
) -> tuple[DMQPMNet, dict[str, Any]]:
    """Load a checkpoint folder, verifying its hash; never executes pickled code.

    Parameters
    ----------
    folder : str or Path
        A folder written by :func:`save_checkpoint`.
    device : str or torch.device
        Where to put the model (see :func:`~napari_dmqpm.model.device.resolve_device`).
    expected_sha256 : str, optional
        Hex sha256 of ``model.safetensors`` (e.g. from a registry). Every hash recorded in
        ``config.json`` and ``SHA256SUMS`` is checked too; at least one must exist.

    Returns
    -------
    model : DMQPMNet
        In eval mode on ``device``.
    config : dict
        The parsed ``config.json`` (model config, postprocessing, training metadata).

    Raises
    ------
    CheckpointError
        For a missing folder or file, a hash mismatch, a corrupt or truncated weights file, or
        a config that does not match the weights; the message names the folder.
    """
    folder = Path(folder)
    content = read_checkpoint_config(folder)
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"checkpoint {folder} is missing {WEIGHTS_FILE}")
    data = weights_path.read_bytes()
    _verify_sha256(folder, _sha256(data), expected_sha256, content)
    try:
        state = safetensors.torch.load(data)
    except Exception as err:  # safetensors raises its own SafetensorError, or others on junk
        raise CheckpointError(
            f"{WEIGHTS_FILE} in {folder} is corrupt or truncated ({type(err).__name__}: {err})"
        ) from err
    try:
        config = ModelConfig.from_dict(content.get("model"))
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"{CONFIG_FILE} in {folder} has an invalid model config: {err}"
        ) from err
    _check_size(folder, config, state)  # before allocating what the config asks for
    model = DMQPMNet(config)
    _check_state_matches(folder, model, state)
    model.load_state_dict(state, strict=True)
    return model.to(resolve_device(device)).eval(), content


def count_values(config: ModelConfig) -> int:
    """Numbers in the state dict of ``DMQPMNet(config)``, counted without allocating them.

    The network is built on torch's ``meta`` device, so a config that asks for a network
    larger than the memory costs nothing here.

    Parameters
    ----------
    config : ModelConfig
        The network's config.
    """
    with torch.device("meta"):
        network = DMQPMNet(config)
    return sum(tensor.numel() for tensor in network.state_dict().values())


def _check_size(folder: Path, config: ModelConfig, state: dict[str, torch.Tensor]) -> None:
    """CheckpointError when the config describes more numbers than the weights file holds."""
    stored = sum(tensor.numel() for tensor in state.values())
    asked = count_values(config)
    if asked != stored:
        raise CheckpointError(
            f"{CONFIG_FILE} in {folder} does not match {WEIGHTS_FILE}: the config describes a "
            f"network of {asked:,} numbers ({asked * 4 / 2**30:.2f} GiB as float32), the "
            f"weights hold {stored:,} (their shapes differ); not loaded"
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _recorded_hashes(folder: Path, content: dict[str, Any]) -> list[tuple[str, str]]:
    recorded = []
    if content.get("sha256") is not None:
        recorded.append((f"{CONFIG_FILE} 'sha256'", str(content["sha256"]).lower()))
    sums = folder / SUMS_FILE
    if sums.is_file():
        for line in sums.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") == WEIGHTS_FILE:
                recorded.append((SUMS_FILE, parts[0].lower()))
    return recorded


def _verify_sha256(
    folder: Path, digest: str, expected: str | None, content: dict[str, Any]
) -> None:
    checks = _recorded_hashes(folder, content)
    if expected is not None:
        if not isinstance(expected, str) or not _SHA256.match(expected.lower()):
            raise ValueError(
                f"expected_sha256 must be 64 hex digits; got expected_sha256={expected!r}"
            )
        checks.insert(0, ("expected_sha256", expected.lower()))
    if not checks:
        raise CheckpointError(
            f"no sha256 is recorded for {WEIGHTS_FILE} in {folder} ({CONFIG_FILE} 'sha256' or "
            f"{SUMS_FILE}); pass expected_sha256 to load it"
        )
    for source, value in checks:
        if value != digest:
            raise CheckpointError(
                f"{WEIGHTS_FILE} in {folder} has sha256 {digest} but {source} says {value}: "
                "the file is corrupt, truncated or was replaced"
            )


def _check_state_matches(folder: Path, model: torch.nn.Module, state: dict) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = [
        f"{len(found)} {what} (e.g. {', '.join(found[:3])})"
        for what, found in (
            ("missing tensors", missing),
            ("unexpected tensors", unexpected),
            ("shape mismatches", wrong),
        )
        if found
    ]
    if problems:
        raise CheckpointError(
            f"{CONFIG_FILE} in {folder} does not match {WEIGHTS_FILE}: " + "; ".join(problems)
        )


def _move_into_place(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder``; an existing ``folder`` is swapped out, then deleted."""
    if not folder.exists():
        staging.rename(folder)
        return
    backup = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
    folder.rename(backup)
    try:
        staging.rename(folder)
    except BaseException:
        backup.rename(folder)
        raise
    shutil.rmtree(backup, ignore_errors=True)
