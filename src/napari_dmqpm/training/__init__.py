"""Training DM-QPMNet the nnU-Net way: targets, data, augmentation, losses, metrics, the loop.

Names are imported lazily, so ``from napari_dmqpm.training import evaluate_folders`` (numpy
only) does not import torch. See ``docs/training.md``.
"""

from __future__ import annotations

from napari_dmqpm._lazy import attach

_EXPORTS = {
    "targets": ("TargetConfig", "Targets", "make_targets", "boundary_mask", "normalized_distance"),
    "augment": ("AugmentConfig", "augment_patch", "augment_intensity", "crop_transformed"),
    "metrics": (
        "ImageScores",
        "Report",
        "evaluate_folders",
        "evaluate_labels",
        "format_report",
        "foreground_dice",
        "foreground_iou",
        "match_instances",
        "mean_sd",
        "score_image",
    ),
    "config": ("TrainConfig", "SimulatorData"),
    "data": ("Sample", "read_folder", "samples_from_arrays", "simulate_samples", "split_samples"),
    "patches": ("PatchDataset",),
    "losses": ("SegmentationLoss", "deep_supervision_weights", "soft_dice"),
    "loop": ("EpochReport", "iter_training"),
    # the function ``finetune`` lives in the submodule of the same name:
    # ``from napari_dmqpm.training.finetune import finetune``
    "finetune": (
        "FinetuneResult",
        "export_model",
        "finetune_config",
        "iter_finetune",
        "summarize_finetune",
    ),
    "card": ("write_model_card", "read_history"),
    "tuning": (
        "DEFAULT_GRID",
        "TuningResult",
        "store_postprocess",
        "tune_checkpoint",
        "tune_postprocess",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


__getattr__, __dir__, _ = attach(__name__, _WHERE)
