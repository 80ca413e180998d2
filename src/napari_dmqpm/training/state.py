"""The resumable state of a run in ``<checkpoint_dir>/last/``, written atomically every epoch.

``last/`` holds ``model/`` (a checkpoint folder, see :mod:`napari_dmqpm.model.checkpoint`),
``state.pt`` (optimizer, grad scaler, counters and torch RNG states: tensors and plain numbers
only, read back with ``torch.load(weights_only=True)``) and ``history.json`` (the epoch reports).
The folder is staged under a temporary name and swapped in, so a crash leaves either the
previous ``last/`` or the new one (or ``last.old/``, which :func:`find_last` also accepts).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from napari_dmqpm.model import DMQPMNet
from napari_dmqpm.model.checkpoint import load_checkpoint, save_checkpoint, write_error

LAST, BEST = "last", "best"
_OLD = "last.old"


@dataclass
class RunState:
    """Counters of a run besides the weights and the optimizer.

    Attributes
    ----------
    epoch : int
        Last completed epoch (0 before training).
    iteration : int
        Optimizer steps done.
    elapsed : float
        Seconds spent training and validating, summed over resumes.
    best_val_dice : float
        Validation foreground Dice of the best epoch (-1 before any validation); the best
        Dice so far when ``TrainConfig.select_by`` is ``"dice"``.
    best_score : float
        The ``select_by`` score of the best epoch (-1 before any validation).
    best_epoch : int
        The best epoch (-1 before any).
    history : list of dict
        One ``EpochReport.to_dict()`` per yielded report.
    """

    epoch: int = 0
    iteration: int = 0
    elapsed: float = 0.0
    best_val_dice: float = -1.0
    best_score: float = -1.0
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)


def find_last(folder: str | Path) -> Path | None:
    """``<folder>/last`` if complete, else a ``last.old`` left by a crash, else None.

    Parameters
    ----------
    folder : str or Path
        The run folder (``checkpoint_dir``).
    """
    for name in (LAST, _OLD):
        candidate = Path(folder) / name
        if (candidate / "state.pt").is_file() and (candidate / "model").is_dir():
            return candidate
    return None


def save_last(
    folder: str | Path,
    model: DMQPMNet,
    optimizer: torch.optim.Optimizer,
    state: RunState,
    *,
    scaler: torch.amp.GradScaler | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``<folder>/last`` atomically (stage, swap, delete the old one).

    Parameters
    ----------
    folder : str or Path
        The run folder (``checkpoint_dir``).
    model : DMQPMNet
        The network being trained.
    optimizer : torch.optim.Optimizer
        Its optimizer (the state is saved for resuming).
    state : RunState
        The run's progress.
    scaler : torch.amp.GradScaler, optional
        The mixed-precision scaler, when one is used.
    extra : dict, optional
        More ``config.json`` keys of the saved model (its training record).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".last.", suffix=".tmp", dir=folder))
    try:
        save_checkpoint(staging / "model", model, extra=extra)
        payload = {
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else {},
            "epoch": state.epoch,
            "iteration": state.iteration,
            "elapsed": state.elapsed,
            "best_val_dice": state.best_val_dice,
            "best_score": state.best_score,
            "best_epoch": state.best_epoch,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        try:
            torch.save(payload, staging / "state.pt")
        except RuntimeError as err:  # torch's writer on a full disk: "[enforce fail at ...]"
            if "enforce fail" not in str(err):
                raise
            raise write_error(folder / LAST / "state.pt", err, staging) from err
        (staging / "history.json").write_text(json.dumps(state.history, indent=1) + "\n")
        _swap_in(staging, folder / LAST, folder / _OLD)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder / LAST


def _swap_in(staging: Path, target: Path, old: Path) -> None:
    if old.exists() and target.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def load_last(
    last: str | Path, *, device: torch.device
) -> tuple[DMQPMNet, dict[str, Any], RunState, dict[str, Any]]:
    """Read a ``last/`` folder.

    Parameters
    ----------
    last : str or Path
        The ``last/`` folder.
    device : torch.device
        Where the network is loaded.

    Returns
    -------
    model : DMQPMNet
        On ``device`` (eval mode).
    payload : dict
        ``state.pt``: ``optimizer`` and ``scaler`` state dicts and the RNG states.
    state : RunState
    content : dict
        The model checkpoint's ``config.json``.
    """
    last = Path(last)
    model, content = load_checkpoint(last / "model", device=device)
    payload = _load_state(last / "state.pt")
    history_path = last / "history.json"
    history = json.loads(history_path.read_text()) if history_path.is_file() else []
    try:
        state = RunState(
            epoch=int(payload["epoch"]),
            iteration=int(payload["iteration"]),
            elapsed=float(payload["elapsed"]),
            best_val_dice=float(payload["best_val_dice"]),
            best_score=float(payload.get("best_score", payload["best_val_dice"])),  # older runs
            best_epoch=int(payload["best_epoch"]),
            history=list(history),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{last / 'state.pt'}: not a run state of napari-dmqpm ({error})"
        ) from None
    return model, payload, state, content


def _load_state(path: Path) -> dict[str, Any]:
    """``state.pt`` read without running pickled code; ValueError for anything else.

    torch's own message for a pickle that would run code suggests ``weights_only=False``,
    which would run it: the message here says the file is not trusted instead.
    """
    import pickle

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError) as error:
        raise ValueError(
            f"{path}: not a trusted checkpoint: it holds more than tensors and numbers, or is "
            f"damaged ({type(error).__name__}); it is not loaded and no code in it is run. "
            "Remove the run folder's last/, or start afresh with overwrite=True"
        ) from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: not a trusted checkpoint: not a run state (a dict)")
    return payload


def restore_rng(payload: dict[str, Any]) -> None:
    """Put back the torch RNG states saved by :func:`save_last`.

    Parameters
    ----------
    payload : dict
        The ``state.pt`` content read by :func:`load_last`.
    """
    torch.set_rng_state(payload["torch_rng"])
    if payload.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
