"""Validation during training: whole-image prediction, loss, foreground Dice and instance F1.

Validation images are predicted whole (padded by reflection to a multiple of the network's
divisor, in non-overlapping tiles when large), so the scores are those of full images rather
than of patches. Instance labels for F1 come from the inference post-processing
(:func:`napari_dmqpm.inference.labels_from_probabilities`) with the checkpoint's thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from napari_dmqpm.model import DMQPMNet
from napari_dmqpm.training.data import Sample
from napari_dmqpm.training.losses import SegmentationLoss
from napari_dmqpm.training.metrics import foreground_dice, score_image
from napari_dmqpm.training.targets import TargetConfig, make_targets


@dataclass(frozen=True)
class ValidationResult:
    """Scores of the validation set: mean loss, mean foreground Dice and mean F1 over images."""

    loss: float
    dice: float
    f1: float
    dices: tuple[float, ...]


def model_inputs(
    model: DMQPMNet, angles, phase, *, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The ``(angles, phase)`` tensors the model takes (None for an input it does not use).

    ``angles`` (B, 4, M, N) and ``phase`` (B, 1, M, N) may be numpy arrays or tensors.

    Parameters
    ----------
    model : DMQPMNet
        The network (its ``config.inputs`` says which inputs it takes).
    angles : ndarray or Tensor of shape (B, 4, M, N), optional
        Angle images (normalized by the network itself).
    phase : ndarray or Tensor of shape (B, 1, M, N), optional
        Phase in radians.
    device : torch.device
        Where the tensors go.
    """
    inputs = model.config.inputs
    out: list[torch.Tensor | None] = []
    for name, value in (("angles", angles), ("phase", phase)):
        if inputs not in ("both", name):
            out.append(None)
            continue
        if value is None:
            raise ValueError(f"this model (inputs={inputs!r}) needs {name}; the data have none")
        tensor = torch.as_tensor(value).to(device, dtype=torch.float32, non_blocking=True)
        if device.type == "cuda":
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        out.append(tensor)
    return out[0], out[1]


def _pad_to(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    pads = [(0, 0)] * (array.ndim - 2) + [
        (0, t - s) for s, t in zip(array.shape[-2:], shape, strict=True)
    ]
    return np.pad(array, pads, mode="symmetric")


@torch.inference_mode()
def predict_logits(
    model: DMQPMNet,
    sample: Sample,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    tile: int = 512,
) -> torch.Tensor:
    """Logits (C, M, N), float32 on the CPU, for a whole sample in eval mode.

    The image is padded by reflection to a multiple of ``model.required_divisor`` and cut into
    non-overlapping tiles of at most ``tile`` pixels a side.

    Parameters
    ----------
    model : DMQPMNet
        The network (its ``config.inputs`` says which inputs it takes).
    sample : Sample
        The whole image.
    device : torch.device
        Where the network runs.
    amp_dtype : torch.dtype, optional
        Autocast dtype (None: full precision).
    tile : int
        Largest tile side, px.
    """
    divisor = model.required_divisor
    rows, cols = sample.shape
    padded = (-(-rows // divisor) * divisor, -(-cols // divisor) * divisor)
    tile = max(divisor, tile // divisor * divisor)
    phase = _pad_to(sample.phase[None], padded)
    angles = None if sample.angles is None else _pad_to(sample.angles, padded)
    logits = torch.zeros((model.config.n_outputs, *padded), dtype=torch.float32)
    for r in range(0, padded[0], tile):
        for c in range(0, padded[1], tile):
            window = (slice(r, r + tile), slice(c, c + tile))
            piece_angles = None if angles is None else angles[None, :, window[0], window[1]]
            inputs = model_inputs(
                model, piece_angles, phase[None, :, window[0], window[1]], device=device
            )
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                output = model(*inputs)
            if isinstance(output, (list, tuple)):
                output = output[0]
            logits[:, window[0], window[1]] = output[0].float().cpu()
    return logits[:, :rows, :cols]


def _instances(
    probabilities: np.ndarray, distance: np.ndarray | None, postprocessing
) -> np.ndarray:
    """Instance labels by the inference post-processing (the checkpoint's thresholds)."""
    from napari_dmqpm.inference import PostprocessConfig, labels_from_probabilities

    config = PostprocessConfig.from_dict(postprocessing) if postprocessing else None
    return labels_from_probabilities(probabilities, distance=distance, config=config)


def _distance_map(logits: torch.Tensor, loss_fn: SegmentationLoss) -> np.ndarray | None:
    head = loss_fn.slices.get("distance")
    if head is None:
        return None
    values = logits[head.start]
    values = torch.sigmoid(values) if head.kind == "sigmoid" else values.clamp(0.0, 1.0)
    return values.numpy()


def validate(
    model: DMQPMNet,
    samples: Sequence[Sample],
    *,
    loss_fn: SegmentationLoss,
    device: torch.device,
    targets: TargetConfig,
    amp_dtype: torch.dtype | None = None,
    postprocessing: dict | None = None,
) -> ValidationResult:
    """Loss, foreground Dice and F1@0.5 of ``model`` on whole validation samples.

    ``postprocessing`` is a ``PostprocessConfig`` dict (a checkpoint's thresholds); default
    thresholds when None or empty.

    Parameters
    ----------
    model : DMQPMNet
        The network (its ``config.inputs`` says which inputs it takes).
    samples : sequence of Sample
        The validation images.
    loss_fn : SegmentationLoss
        The training loss.
    device : torch.device
        Where the network runs.
    targets : TargetConfig
        How the label images become training targets.
    amp_dtype : torch.dtype, optional
        Autocast dtype (None: full precision).
    postprocessing : dict, optional
        The checkpoint's post-processing thresholds (default: the defaults).
    """
    was_training = model.training
    model.eval()
    head = loss_fn.slices["classes"]
    losses, dices, f1s = [], [], []
    try:
        for sample in samples:
            logits = predict_logits(model, sample, device=device, amp_dtype=amp_dtype)
            target = make_targets(sample.labels, config=targets)
            classes = torch.from_numpy(target.classes.astype(np.int64))[None]
            distance = None if target.distance is None else torch.from_numpy(target.distance)[None]
            losses.append(float(loss_fn.single(logits[None], classes, distance)))
            probabilities = torch.softmax(logits[head.start : head.stop], dim=0).numpy()
            dices.append(foreground_dice(np.argmax(probabilities, axis=0), sample.labels))
            instances = _instances(probabilities, _distance_map(logits, loss_fn), postprocessing)
            f1s.append(score_image(instances, sample.labels).f1)
    finally:
        model.train(was_training)
    return ValidationResult(
        float(np.mean(losses)), float(np.mean(dices)), float(np.mean(f1s)), tuple(dices)
    )
