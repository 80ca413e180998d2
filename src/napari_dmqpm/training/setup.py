"""Building a run: its data (training stream and validation set) and its model.

A model trained from scratch gets its input normalization (angle mean/std per channel, phase
quantile window) estimated on the training data before epoch 0; a fine-tuned model keeps the
normalization of its base checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from napari_dmqpm.inference.diameter import cell_diameters as label_diameters
from napari_dmqpm.model import DMQPMNet, ModelConfig, estimate_normalization, load_checkpoint
from napari_dmqpm.training.augment import diameter_distribution
from napari_dmqpm.training.config import TrainConfig
from napari_dmqpm.training.data import (
    Sample,
    read_folder,
    simulate_samples,
    split_samples,
    validation_fields,
)
from napari_dmqpm.training.patches import SimulatorFactory

# keys of a base checkpoint not copied into a fine-tuned one (the scale is measured anew; the
# thresholds are kept, but the scores of their tuning were those of the base's weights)
_RESERVED = (
    "postprocessing_tuning",
    "format",
    "format_version",
    "model",
    "sha256",
    "training",
    "cell_diameter_px",
    "pixel_size_um",
)


@dataclass
class TrainingData:
    """Training stream, validation set and a description of both.

    Attributes
    ----------
    train : list of Sample, or callable
        Fixed images, or a ``PatchDataset`` factory (simulator plus any fixed images).
    fixed : list of Sample
        The fixed training images (folders and in-memory arrays).
    val : list of Sample
        Validation images, predicted whole.
    description : dict
        JSON-native summary for the checkpoint and the model card.
    """

    train: list[Sample] | Callable
    fixed: list[Sample]
    val: list[Sample]
    description: dict[str, Any] = field(default_factory=dict)


def build_data(
    config: TrainConfig,
    *,
    samples: Sequence[Sample] | None = None,
    val_samples: Sequence[Sample] | None = None,
) -> TrainingData:
    """Read folders, split off validation, and set up the simulator stream.

    Parameters
    ----------
    config : TrainConfig
        The run's config.
    samples : sequence of Sample, optional
        Training images given in memory (instead of, or with, ``config.folders``).
    val_samples : sequence of Sample, optional
        Validation images given in memory (else split off the training images).

    Raises
    ------
    ValueError
        When there is no training data at all, or no validation data.
    """
    options = config.read_options
    fixed = [s for folder in config.folders for s in read_folder(folder, **options)]
    fixed += list(samples or [])
    val = list(val_samples or [])
    if not val:
        val = [s for folder in config.val_folders for s in read_folder(folder, **options)]
    explicit_val = bool(val)
    if fixed and not explicit_val:
        fixed, val = split_samples(fixed, val_fraction=config.val_fraction, rng=config.seed)
    spec = config.simulator
    if spec is not None and not explicit_val:
        val += validation_fields(spec, seed=config.seed)
    if not fixed and spec is None:
        raise ValueError("no training data: set TrainConfig.simulator or folders, or pass samples")
    if not val:
        raise ValueError("no validation data: pass val_samples or set val_folders")
    train: list[Sample] | Callable = fixed
    if spec is not None:
        train = SimulatorFactory(spec, n_fields=spec.fields_per_epoch, fixed=fixed)
    description = {
        "simulator": None if spec is None else config.to_dict()["simulator"],
        "folders": list(config.folders),
        "n_fixed_images": len(fixed),
        "fixed_images": [s.name for s in fixed[:50]],
        "n_val_images": len(val),
        "val_images": [s.name for s in val[:50]],
    }
    return TrainingData(train, fixed, val, description)


def statistics_samples(config: TrainConfig, data: TrainingData) -> list[Sample]:
    """Images the normalization is estimated on: the fixed ones and some simulated fields.

    Parameters
    ----------
    config : TrainConfig
        The run's config.
    data : TrainingData
        The run's data (:func:`build_data`).
    """
    images = list(data.fixed)
    spec = config.simulator
    if spec is not None:
        rng = np.random.default_rng([config.seed, 7_919])
        images += simulate_samples(spec, n=spec.fields_per_epoch, rng=rng)
    return images


def cell_diameters(
    samples: Sequence[Sample], *, per_image: Sequence[np.ndarray] | None = None
) -> tuple[float, float, float]:
    """10th percentile, median and 90th percentile of the cells' equivalent diameters, px.

    ``per_image``: the samples' cell diameters when the caller has them already.

    Parameters
    ----------
    samples : sequence of Sample
        The training images with their labels.
    per_image : sequence of ndarray, optional
        Equivalent diameters of each image's cells, px, when already measured.
    """
    if per_image is None:
        per_image = [label_diameters(s.labels, exclude_border=False) for s in samples]
    diameters = np.concatenate(per_image) if len(per_image) else np.zeros(0)
    if diameters.size == 0:
        return (float("nan"),) * 3
    low, mid, high = np.percentile(diameters, [10, 50, 90])
    return float(low), float(mid), float(high)


def describe_diameters(config: TrainConfig, samples: Sequence[Sample]) -> dict[str, Any]:
    """The cell diameters of the training images, and those the patches show after zooming.

    ``native`` are the images' own (10th, 50th, 90th percentile); ``seen`` the percentiles of
    the diameters in training patches under the run's spatial augmentation
    (``augment.diameter_distribution``), which is what the network was trained on.

    Parameters
    ----------
    config : TrainConfig
        The run's config.

    samples : sequence of Sample
        The training images with their labels.
    """
    per_image = [label_diameters(sample.labels, exclude_border=False) for sample in samples]
    seen = diameter_distribution(per_image, config.augment, rng=config.seed)
    return {"native": cell_diameters(samples, per_image=per_image), "seen": seen}


def _check_inputs(model_config: ModelConfig, samples: Sequence[Sample]) -> None:
    if model_config.inputs in ("both", "angles"):
        missing = [s.name for s in samples if s.angles is None]
        if missing:
            raise ValueError(
                f"the model takes angle images (inputs={model_config.inputs!r}) but these "
                f"training images are phase only: {', '.join(missing[:5])}; use a phase-only "
                "model (ModelConfig(inputs='phase', fusion='early'))"
            )


def build_model(
    config: TrainConfig, data: TrainingData, *, device: torch.device
) -> tuple[DMQPMNet, dict[str, Any]]:
    """The network of a new run: the base checkpoint, or a fresh one with estimated normalization.

    Parameters
    ----------
    config : TrainConfig
        The run's config.
    data : TrainingData
        The run's data (:func:`build_data`), for the normalization statistics.
    device : torch.device
        Where the network is built.

    Returns
    -------
    model : DMQPMNet
    base_content : dict
        The base checkpoint's ``config.json`` (empty for a fresh model).
    """
    if config.base_checkpoint is not None:
        model, content = load_checkpoint(resolve_checkpoint(config.base_checkpoint), device=device)
    else:
        model_config = config.model or ModelConfig()
        images = statistics_samples(config, data)
        _check_inputs(model_config, images)
        # _check_inputs has made sure that every image has the angles the model takes
        angles = (
            [s.angles for s in images if s.angles is not None]
            if model_config.inputs != "phase"
            else None
        )
        phases = [s.phase for s in images] if model_config.inputs != "angles" else None
        norm = estimate_normalization(angles, phases, rng=config.seed)
        data.description["diameters"] = describe_diameters(config, images)
        model_config = dataclasses.replace(model_config, normalization=norm)
        torch.manual_seed(config.seed)
        model, content = DMQPMNet(model_config), {}
    _check_inputs(model.config, list(data.fixed) + list(data.val))
    divisor = model.required_divisor
    if any(size % divisor for size in config.patch_size):
        raise ValueError(
            f"patch_size must be multiples of the model's required_divisor={divisor}; "
            f"got patch_size={config.patch_size}"
        )
    return model, content


def checkpoint_extra(
    config: TrainConfig,
    data: TrainingData,
    base_content: dict[str, Any],
    state,
    device: torch.device,
) -> dict[str, Any]:
    """``config.json`` keys of a saved model: the base's keys, plus a ``training`` record.

    Parameters
    ----------
    config : TrainConfig
        The run's config.
    data : TrainingData
        The run's data.
    base_content : dict
        The base checkpoint's ``config.json`` (empty for a fresh model).
    state : RunState
        The run's progress (epochs, best epoch, history).
    device : torch.device
        The device trained on.
    """
    extra = {k: v for k, v in base_content.items() if k not in _RESERVED}
    extra.setdefault("postprocessing", {})
    if "diameters" not in data.description:  # a resumed or fine-tuned run
        images = statistics_samples(config, data) if config.simulator else data.fixed
        data.description["diameters"] = describe_diameters(config, list(images) or data.val)
    low, mid, high = data.description["diameters"]["native"]
    shown = config.cell_diameter_px  # the samples were resampled to it (fine-tuning)
    extra["training"] = {
        "config": config.to_dict(),
        "base_checkpoint": config.base_checkpoint,
        "base_sha256": base_content.get("sha256"),
        "data": {k: v for k, v in data.description.items() if k != "diameters"},
        "cell_diameter_px": shown if shown else None if not np.isfinite(mid) else round(mid, 2),
        "cell_diameter_px_p10_p90": None
        if not np.isfinite(mid)
        else [round(low, 2), round(high, 2)],
        "cell_diameter_px_seen": data.description["diameters"]["seen"],
        "pixel_size_um": config.pixel_size_um,
        "epoch": state.epoch,
        "iterations": state.iteration,
        "elapsed_s": round(state.elapsed, 1),
        "best_val_dice": state.best_val_dice,
        "best_epoch": state.best_epoch,
        "history": state.history[-1:],
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    return extra


#: Bytes per parameter while training: weights, gradients, SGD momentum, an autocast copy.
TRAIN_BYTES_PER_PARAMETER = 16


def check_trainable(config: TrainConfig) -> None:
    """ValueError, before any work, when a new model's parameters do not fit in memory.

    Counts the parameters of ``config.model`` without allocating them
    (:func:`~napari_dmqpm.model.checkpoint.count_values`): a few bytes of JSON can ask for a
    network of a hundred GB.

    Parameters
    ----------
    config : TrainConfig
        The run's config.
    """
    from napari_dmqpm.io.limits import format_bytes, memory_budget
    from napari_dmqpm.model.checkpoint import count_values

    if config.base_checkpoint is not None or config.model is None:
        return  # a base checkpoint's size is checked against its weights when it loads
    n_values = count_values(config.model)
    needed = TRAIN_BYTES_PER_PARAMETER * n_values
    budget, why = memory_budget()
    if needed > budget:
        raise ValueError(
            f"model features={list(config.model.features)} make a network of {n_values:,} "
            f"parameters; training it needs about {format_bytes(needed)} (weights, gradients, "
            f"optimizer state), more than {why}"
        )


def resolve_checkpoint(base: str | os.PathLike) -> str:
    """The checkpoint folder of a folder path or a registered model name (shipped or user).

    Parameters
    ----------
    base : str or path-like
        A checkpoint folder or the name of a shipped or user model.

    Raises
    ------
    FileNotFoundError
        For an unknown name (the message lists the available models).
    """
    from napari_dmqpm.model.registry import find_model

    return str(find_model(base).path)
