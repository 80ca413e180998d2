"""Tune the post-processing thresholds of a model on labelled images, and store them with it.

The network is run once per image; only the watershed of
:func:`~napari_dmqpm.inference.probabilities_to_labels` is repeated, over a small grid, by
coordinate ascent on the mean instance F1 at IoU 0.5 (ties broken by foreground Dice). The
thresholds then travel with the weights in the checkpoint's ``config.json``
(``"postprocessing"``, provenance in ``"postprocessing_tuning"``), where
:func:`~napari_dmqpm.inference.default_postprocess` finds them.

Tune on data the model will not be scored on: simulated fields of their own seed namespace
after training (``scripts/tune_postprocess.py``), or the held-out tiles of the user's own
corrected images after fine-tuning.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_dmqpm.inference.config import PostprocessConfig
from napari_dmqpm.inference.postprocess import probabilities_to_labels
from napari_dmqpm.inference.predict import Probabilities
from napari_dmqpm.training.metrics import score_image

#: Values tried for each threshold, in the order the coordinate ascent visits them.
DEFAULT_GRID: dict[str, tuple] = {
    "smooth_sigma_px": (0.0, 1.0, 2.0, 3.0),
    "seed_h": (0.0, 0.05, 0.1, 0.2, 0.3),
    "seed_threshold": (0.3, 0.4, 0.5, 0.6, 0.7),
    "seed_source": ("mean", "distance", "interior"),
    "foreground_threshold": (0.3, 0.4, 0.5, 0.6, 0.7),
}


@dataclass(frozen=True)
class TuningResult:
    """The best thresholds, their scores, and every setting tried.

    ``trials`` holds ``(changes, f1, dice)`` with ``changes`` the fields that differ from the
    starting config; ``before`` and ``after`` are ``(f1, dice)`` means over the images.
    """

    config: PostprocessConfig
    before: tuple[float, float]
    after: tuple[float, float]
    trials: tuple[tuple[dict[str, Any], float, float], ...]
    n_images: int

    def summary(self) -> dict[str, Any]:
        """JSON-native provenance stored beside the thresholds."""
        return {
            "n_images": self.n_images,
            "f1_before": round(self.before[0], 4),
            "f1_after": round(self.after[0], 4),
            "dice_before": round(self.before[1], 4),
            "dice_after": round(self.after[1], 4),
            "n_trials": len(self.trials),
        }


def _scores(
    probabilities: Sequence[Probabilities],
    truths: Sequence[np.ndarray],
    config: PostprocessConfig,
    cache: MutableMapping | None = None,
) -> tuple[float, float]:
    records = []
    for p, t in zip(probabilities, truths, strict=True):
        key = (config, id(p))
        record = None if cache is None else cache.get(key)
        if record is None:
            record = score_image(probabilities_to_labels(p, config=config), t)
            if cache is not None:
                cache[key] = record
        records.append(record)
    return float(np.mean([r.f1 for r in records])), float(np.mean([r.dice for r in records]))


def tune_postprocess(
    probabilities: Sequence[Probabilities],
    truths: Sequence[np.ndarray],
    *,
    start: PostprocessConfig | None = None,
    grid: Mapping[str, Sequence] | None = None,
    passes: int = 2,
    should_stop: Callable[[], bool] | None = None,
    cache: MutableMapping | None = None,
) -> TuningResult:
    """Coordinate ascent of the post-processing thresholds on mean F1 (then Dice).

    Parameters
    ----------
    probabilities : sequence of Probabilities
        The network's output for each image
        (:func:`~napari_dmqpm.inference.predict_probabilities`).
    truths : sequence of ndarray (M, N), integer
        Instance labels of the same images (0 = background).
    start : PostprocessConfig, optional
        Where the ascent starts (defaults when None); kept unless a change scores better.
    grid : mapping, optional
        ``{field: values}`` of :class:`PostprocessConfig` fields to try (:data:`DEFAULT_GRID`).
    passes : int
        Sweeps over the fields; the ascent stops early when a sweep changes nothing.
    should_stop : callable, optional
        Polled between settings; True ends the ascent with the best found so far.
    cache : dict, optional
        Per-image scores keyed by ``(config, id(probability map))``. Pass the same dict to
        calls on overlapping sets of the same map objects (leave-one-out folds) and each map
        is post-processed once per setting.

    Returns
    -------
    TuningResult
        The config never scores below ``start`` on these images.

    Raises
    ------
    ValueError
        No images, a count mismatch, or a grid field :class:`PostprocessConfig` lacks.
    """
    if not probabilities or len(probabilities) != len(truths):
        raise ValueError(
            f"need as many label images as probability maps (at least one); got "
            f"{len(probabilities)} and {len(truths)}"
        )
    grid = dict(DEFAULT_GRID if grid is None else grid)
    fields = {f.name for f in dataclasses.fields(PostprocessConfig)}
    unknown = sorted(set(grid) - fields)
    if unknown:
        raise ValueError(f"grid fields {unknown} are not PostprocessConfig fields {sorted(fields)}")
    start = start or PostprocessConfig()
    if any(p.distance is None for p in probabilities):  # no distance head: interior only
        grid["seed_source"] = ("interior",)
        start = dataclasses.replace(start, seed_source="interior")
    best, best_score = start, _scores(probabilities, truths, start, cache)
    before, trials = best_score, []
    for _ in range(passes):
        changed = False
        for name, values in grid.items():
            for value in values:
                if getattr(best, name) == value or (should_stop and should_stop()):
                    continue
                candidate = dataclasses.replace(best, **{name: value})
                score = _scores(probabilities, truths, candidate, cache)
                trials.append((_changes(start, candidate), *score))
                if score > best_score:
                    best, best_score, changed = candidate, score, True
        if not changed:
            break
    return TuningResult(best, before, best_score, tuple(trials), len(truths))


def _changes(start: PostprocessConfig, config: PostprocessConfig) -> dict[str, Any]:
    a, b = start.to_dict(), config.to_dict()
    return {k: v for k, v in b.items() if a[k] != v}


def store_postprocess(
    folder: str | os.PathLike, result: TuningResult, *, tuned_on: str
) -> dict[str, Any]:
    """Write the tuned thresholds into a checkpoint's ``config.json``, atomically.

    The weights and their sha256 are untouched (the hash covers ``model.safetensors`` only).

    Parameters
    ----------
    folder : path-like
        A checkpoint folder (``config.json`` + ``model.safetensors``).
    result : TuningResult
        From :func:`tune_postprocess`.
    tuned_on : str
        What the thresholds were tuned on, recorded as provenance.

    Returns
    -------
    dict
        The new ``"postprocessing"`` entry; the provenance goes to
        ``"postprocessing_tuning"``.
    """
    from napari_dmqpm.io.write import atomic_write

    path = Path(folder) / "config.json"
    content = json.loads(path.read_text("utf-8"))
    entry = result.config.to_dict()
    content["postprocessing"] = entry
    content["postprocessing_tuning"] = {"tuned_on": tuned_on, **result.summary()}
    text = json.dumps(content, indent=1) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), overwrite=True)
    return entry


def tune_checkpoint(
    folder: str | os.PathLike,
    images: Sequence[Any],
    *,
    tuned_on: str,
    device: str = "cpu",
    from_stored: bool = False,
    store: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> TuningResult:
    """Run a checkpoint once on labelled images, tune its thresholds and store them.

    Parameters
    ----------
    folder : path-like
        A checkpoint folder.
    images : sequence
        Objects with ``phase`` (M, N), ``angles`` (4, M, N) or None, ``labels`` (M, N) and
        optionally ``pixel_size_um`` (training ``Sample``s, benchmark cases).
    tuned_on : str
        Provenance recorded with the thresholds.
    device : str
        Where the network runs.
    from_stored : bool
        Start from the checkpoint's stored thresholds (else from the defaults).
    store : bool
        Write the result into ``config.json`` (:func:`store_postprocess`).
    should_stop : callable, optional
        See :func:`tune_postprocess`.
    """
    from napari_dmqpm.inference import InferenceConfig, default_postprocess, predict_probabilities
    from napari_dmqpm.model.registry import load_model

    model = load_model(folder, device=device)
    inputs = model.network.config.inputs
    # the images the model was just trained on, at the scale it saw them: no resampling by size
    config = InferenceConfig(device=device, diameter_px=None)
    probabilities = [
        predict_probabilities(
            model,
            angles=image.angles if inputs in ("both", "angles") else None,
            phase=image.phase if inputs in ("both", "phase") else None,
            config=config,
            pixel_size_um=getattr(image, "pixel_size_um", None),
        )
        for image in images
    ]
    result = tune_postprocess(
        probabilities,
        [image.labels for image in images],
        start=default_postprocess(model) if from_stored else None,
        should_stop=should_stop,
    )
    if store:
        store_postprocess(folder, result, tuned_on=tuned_on)
    return result
