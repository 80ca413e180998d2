"""Model cards: ``README.md`` of a checkpoint folder, written from its ``config.json``.

A card states what the weights were trained on, with which recipe, on what machine for how
long, how well they did on validation, any further metrics, and the sha256 of the weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from napari_dmqpm.model import DMQPMNet, ModelConfig, save_checkpoint
from napari_dmqpm.model.checkpoint import CARD_FILE, WEIGHTS_FILE, read_checkpoint_config
from napari_dmqpm.training.state import BEST


def _model_lines(model: dict[str, Any]) -> list[str]:
    config = ModelConfig.from_dict(model)
    n_parameters = DMQPMNet(config).n_parameters
    fusion = (
        "early fusion (one encoder)"
        if not config.is_dual
        else (
            f"{config.fusion} fusion at stage {config.fusion_stage} ({config.attention} attention)"
        )
    )
    norm = config.normalization
    return [
        f"- inputs: **{config.inputs}**; {fusion}",
        f"- features {list(config.features)}, strides {list(config.strides)}, "
        f"heads {[h.name for h in config.heads]}, deep supervision {config.deep_supervision}",
        f"- parameters: {n_parameters:,}",
        f"- normalization: angle mean {[round(v, 2) for v in norm.angle_mean]}, "
        f"std {[round(v, 2) for v in norm.angle_std]}; phase clipped to "
        f"[{norm.phase_low:.3f}, {norm.phase_high:.3f}] rad "
        f"(percentiles {norm.low_percentile}-{norm.high_percentile}), "
        f"mean {norm.phase_mean:.3f}, std {norm.phase_std:.3f}",
    ]


def _data_lines(training: dict[str, Any]) -> list[str]:
    data, config = training.get("data", {}), training.get("config", {})
    lines = []
    if data.get("simulator"):
        sim = data["simulator"]
        lines.append(
            f"- simulated on the fly (napari_dmqpm.simulation): densities {sim['densities']}, "
            f"fields {sim['field_shape']} px, pixel size {sim['pixel_size_um']} µm drawn per "
            f"field, {sim['fields_per_epoch']} new fields per epoch, overrides {sim['overrides']}"
        )
    if data.get("n_fixed_images"):
        lines.append(
            f"- {data['n_fixed_images']} fixed image(s) from folders {data.get('folders') or '-'} "
            f"or memory: {', '.join(data.get('fixed_images', [])[:10])}"
        )
    lines.append(
        f"- validation: {data.get('n_val_images', 0)} image(s): "
        f"{', '.join(data.get('val_images', [])[:10])}"
    )
    if training.get("cell_diameter_px"):
        p10, p90 = training.get("cell_diameter_px_p10_p90") or (None, None)
        lines.append(
            f"- cell diameter at training: median **{training['cell_diameter_px']} px** "
            f"(10-90 %: {p10}-{p90} px, equivalent-area diameter of the labelled cells); "
            f"pixel size {training.get('pixel_size_um') or 'not fixed'} µm"
        )
    seen = training.get("cell_diameter_px_seen")
    if seen:
        augment = config.get("augment", {})
        how = (
            f"{augment.get('p_diameter')} of the patches zoomed to a diameter drawn "
            f"log-uniformly from {augment.get('diameter_px')} px"
            if augment.get("p_diameter")
            else "nnU-Net's zoom only"
        )
        spread = ", ".join(f"{key} {value}" for key, value in seen.items())
        lines.append(
            f"- cell diameters seen in training patches ({how}): {spread} px; the model "
            f"resamples images to the median above (`cell_diameter_px`)"
        )
    if training.get("base_checkpoint"):
        lines.append(
            f"- fine-tuned from `{training['base_checkpoint']}` "
            f"(sha256 {training.get('base_sha256')})"
        )
    lines.append(
        f"- patch {config.get('patch_size')}, batch {config.get('batch_size')}, "
        f"targets: 3 classes, boundary width {config.get('targets', {}).get('boundary_width')} px"
    )
    return lines


def _recipe_lines(config: dict[str, Any]) -> list[str]:
    return [
        "- nnU-Net recipe: Dice + cross-entropy (batch soft Dice, smooth 1e-5), deep "
        "supervision weights 1/2^i (lowest output 0), nnU-Net's augmentations",
        f"- SGD Nesterov, momentum {config.get('momentum')}, lr {config.get('learning_rate')}, "
        f"weight decay {config.get('weight_decay')}, poly {config.get('poly_exponent')}, "
        f"grad clip {config.get('grad_clip')}",
        f"- planned {config.get('epochs')} epochs x {config.get('iterations_per_epoch')} "
        f"iterations, budget {config.get('minutes') or 'none'} min, seed {config.get('seed')}",
    ]


#: How ``TrainConfig.select_by`` picks ``best/``, in words.
_SELECTION = {"dice": "foreground Dice", "dice_f1": "the mean of foreground Dice and F1@0.5"}


def _scores(entry: dict) -> str:
    dice, f1 = entry.get("val_dice"), entry.get("val_f1")
    return f"validation Dice {_number(dice)}, F1@0.5 {_number(f1)}"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _budget_lines(training: dict[str, Any]) -> list[str]:
    lines, run = [], training.get("run")
    if run:
        ended = {"budget": "the time budget", "epochs": "the planned epochs"}
        lines.append(
            f"- run: {run.get('epochs')} epochs, {run.get('iterations')} optimizer steps, "
            f"{run.get('wall_s', 0) / 60:.1f} min wall time (ended by "
            f"{ended.get(run.get('ended'), run.get('ended'))})"
        )
    lines.append(
        f"- {'up to these weights' if run else 'when these weights were saved'}: "
        f"{training.get('epoch')} epochs, {training.get('iterations')} optimizer steps, "
        f"{training.get('elapsed_s', 0) / 60:.1f} min wall time"
    )
    return lines


def _validation_lines(training: dict, config: dict, last: dict) -> list[str]:
    best_epoch = training.get("best_epoch")
    history = training.get("history", [])
    best: dict[str, Any] = next((h for h in history if h.get("epoch") == best_epoch), {})
    select_by = config.get("select_by", "dice")
    f1 = best.get("val_f1")
    base = training.get("base_validation")
    lines = [] if base is None else [f"- base model, before fine-tuning: {_scores(base)}"]
    saved = training.get("epoch")
    if saved is not None and best_epoch is not None and saved != best_epoch:  # last/, not best/
        lines.append(
            f"- these weights: the last epoch, {saved} (validation Dice "
            f"{last.get('val_dice', float('nan')):.4f}, F1@0.5 "
            f"{last.get('val_f1', float('nan')):.4f}), not the best by "
            f"{_SELECTION.get(select_by, select_by)}, which was epoch {best_epoch} (Dice "
            f"{training.get('best_val_dice', float('nan')):.4f}"
            + (f", F1@0.5 {f1:.4f})" if f1 is not None else ")")
        )
        return lines
    lines.append(
        f"- these weights: epoch {best_epoch}, the best by "
        f"{_SELECTION.get(select_by, select_by)}: validation Dice "
        f"{training.get('best_val_dice', float('nan')):.4f}"
        + (f", F1@0.5 {f1:.4f}" if f1 is not None else "")
    )
    if base is not None and best_epoch == 0:
        lines.append("- no epoch improved on the base model: these are its weights")
    if last and last.get("epoch") != best_epoch:
        lines.append(
            f"- last report (epoch {last.get('epoch')}): validation Dice "
            f"{last.get('val_dice', float('nan')):.4f}, F1@0.5 "
            f"{last.get('val_f1', float('nan')):.4f}"
        )
    return lines


def render_model_card(
    content: dict[str, Any], *, title: str, metrics: str | None = None, notes: str | None = None
) -> str:
    """Markdown of a model card from a checkpoint's parsed ``config.json``.

    Parameters
    ----------
    content : dict
        The checkpoint's parsed ``config.json``.
    title : str
        The card's title.
    metrics : str, optional
        Markdown of measured scores to include.
    notes : str, optional
        More markdown to include.
    """
    training = content.get("training", {})
    config = training.get("config", {})
    last = (training.get("history") or [{}])[-1]
    lines = [f"# {title}", "", "A napari-dmqpm DM-QPMNet checkpoint.", "", "## Model", ""]
    lines += _model_lines(content["model"]) + ["", "## Training data", ""]
    lines += _data_lines(training) + ["", "## Recipe", ""] + _recipe_lines(config)
    lines += ["", "## Budget", ""] + _budget_lines(training)
    lines.append(
        f"- device {training.get('device')}, {training.get('cpu_count')} CPU cores, "
        f"{training.get('torch_threads')} torch threads, torch {training.get('torch')}, "
        f"Python {training.get('python')}"
    )
    lines += ["", "## Validation", ""] + _validation_lines(training, config, last)
    if metrics:
        lines += ["", "## Metrics", "", metrics.strip()]
    if notes:
        lines += ["", "## Notes", "", notes.strip()]
    lines += ["", "## Files", "", f"- `{WEIGHTS_FILE}` sha256 `{content.get('sha256')}`", ""]
    return "\n".join(lines)


def write_model_card(
    folder: str | Path,
    *,
    title: str | None = None,
    metrics: str | None = None,
    notes: str | None = None,
) -> Path:
    """Write ``<folder>/README.md`` (atomically) from the checkpoint's ``config.json``.

    Parameters
    ----------
    folder : str or Path
        A checkpoint folder (``config.json`` with a ``training`` record, as the loop saves).
    title : str, optional
        Heading; default the folder name.
    metrics : str, optional
        Markdown with further scores (e.g. ``format_report`` of a test set).
    notes : str, optional
        Free markdown (limitations, what the data were).

    Returns
    -------
    Path
        The card.
    """
    folder = Path(folder)
    content = read_checkpoint_config(folder)
    text = render_model_card(content, title=title or folder.name, metrics=metrics, notes=notes)
    path = folder / CARD_FILE
    staging = folder / f".{CARD_FILE}.tmp"
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)
    return path


def save_best(checkpoint_dir: str | Path, model: DMQPMNet, *, extra: dict[str, Any], state) -> Path:
    """Write ``<checkpoint_dir>/best`` (a clean checkpoint, atomically) with its model card.

    Parameters
    ----------
    checkpoint_dir : str or Path
        The run folder.
    model : DMQPMNet
        The network of the best epoch.
    extra : dict
        ``config.json`` keys (the training record).
    state : RunState
        The run's progress, for the card.
    """
    folder = save_checkpoint(Path(checkpoint_dir) / BEST, model, extra=extra, overwrite=True)
    write_model_card(folder, title=f"{Path(checkpoint_dir).name} (best epoch {state.best_epoch})")
    return folder


def record_run(checkpoint_dir: str | Path, run: dict[str, Any]) -> Path | None:
    """Store what the whole run did with ``<checkpoint_dir>/best`` and rewrite its card.

    Parameters
    ----------
    checkpoint_dir : str or Path
        The run folder.
    run : dict
        JSON-native: ``epochs`` (run), ``iterations`` (optimizer steps), ``wall_s`` (seconds)
        and ``ended`` (``"budget"``, ``"epochs"`` or ``"stop"``); stored as
        ``training.run`` in ``config.json`` (the weights and their sha256 are untouched).

    Returns
    -------
    Path or None
        The card, or None when the run has no ``best/`` yet.
    """
    from napari_dmqpm.io.write import atomic_write

    folder = Path(checkpoint_dir) / BEST
    if not (folder / "config.json").is_file():
        return None
    content = read_checkpoint_config(folder)
    content.setdefault("training", {})["run"] = run
    text = json.dumps(content, indent=2) + "\n"
    atomic_write(folder / "config.json", lambda f: f.write(text.encode("utf-8")), overwrite=True)
    title = f"{Path(checkpoint_dir).name} (best epoch {content['training'].get('best_epoch')})"
    return write_model_card(folder, title=title)


def read_history(checkpoint_dir: str | Path) -> list[dict[str, Any]]:
    """The epoch reports saved in ``<checkpoint_dir>/last/history.json`` (empty if none).

    Parameters
    ----------
    checkpoint_dir : str or Path
        The run folder.
    """
    path = Path(checkpoint_dir) / "last" / "history.json"
    return json.loads(path.read_text()) if path.is_file() else []
