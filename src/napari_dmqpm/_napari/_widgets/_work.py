"""What the widgets run in their worker thread: thin generators around the core functions.

No Qt here: each function takes a :class:`~._jobs.Job` (for ``report`` and ``should_stop``)
and a frozen request built by the widget on the GUI thread, calls one core function and
yields its results; the widget turns them into layers on the GUI thread.

- :func:`segment_work`: :func:`napari_dmqpm.inference.segment_acquisition`, one frame at a
  time (each read alone from the layers, so a lazy time-lapse is never loaded whole);
- :func:`rethreshold_work`: :func:`napari_dmqpm.inference.probabilities_to_labels` on kept
  probabilities (no network);
- :func:`finetune_work`: :func:`napari_dmqpm.training.iter_finetune` (the core of
  ``dmqpm finetune``), then an atomic copy of the best weights into the user models folder.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._inputs import PhaseUnit, acquisition_from_layers, frames_of, phase_in_radians
from ._outputs import expand_probabilities

__all__ = [
    "FinetuneOutcome",
    "FinetuneRequest",
    "Notice",
    "SegmentRequest",
    "finetune_work",
    "rethreshold_work",
    "segment_work",
]


@dataclass(frozen=True)
class Notice:
    """A sentence for the widget's status line: what a long step without progress is doing."""

    text: str


@dataclass(frozen=True)
class SegmentRequest:
    """One segmentation run, as read from the segment widget.

    Attributes
    ----------
    phase, angles : napari Image layers
        Inputs (``angles`` None for phase only).
    model : str
        Registry name or checkpoint folder.
    config : InferenceConfig
    postprocess : PostprocessConfig
    frames : list of int or None
        Time indices of the phase layer to segment (None: all).
    phase_unit : PhaseUnit
        Unit of the phase layer's values and the wavelength (radians by default).
    pixel_size_um : float or None
        Pixel size in µm (the layer's, or the one the user typed); None: unknown.
    """

    phase: Any
    angles: Any
    model: str
    config: Any
    postprocess: Any
    frames: list[int] | None = None
    phase_unit: PhaseUnit = field(default_factory=PhaseUnit)
    pixel_size_um: float | None = None

    @property
    def chosen_frames(self) -> list[int]:
        """The time indices to segment, in order."""
        return list(range(frames_of(self.phase))) if self.frames is None else list(self.frames)


def _in_layer_frame(result: Any, frame: int) -> Any:
    """A FrameResult renumbered to the layer's time index ``frame`` (table and status too)."""
    table = dict(result.table)
    table["frame"] = np.full(table["label"].shape, frame, dtype=np.int64)
    status = result.status and dataclasses.replace(result.status, frame=frame)
    return dataclasses.replace(result, frame=frame, table=table, status=status)


def _frame_acquisition(request: SegmentRequest, frame: int) -> Any:
    """The acquisition of one time index of the request's layers (only that frame is read)."""
    frames = [frame] if request.phase.ndim == 3 else None
    return acquisition_from_layers(
        request.phase,
        request.angles,
        frames=frames,
        phase_unit=request.phase_unit,
        pixel_size_um=request.pixel_size_um,
    )


def _frame_progress(job: Any, index: int, n_frames: int) -> Callable[[int, int], None]:
    """``progress(done, total)`` of one frame as progress over the whole run."""

    def report(done: int, total: int) -> None:
        job.report(index * total + done, n_frames * total)

    return report


def _next_config(config: Any, estimate: Any, index: int) -> Any:
    """The config of the ``index``-th chosen frame (from 0).

    Frames are segmented one by one here, so an "auto" diameter is estimated on the first
    and on every ``config.recheck_every``-th frame, and the last estimate is given as a
    number in between (as :func:`~napari_dmqpm.inference.segment_acquisition` does).
    """
    every = config.recheck_every
    if config.diameter_px != "auto" or estimate is None or (every and index % every == 0):
        return config
    return config.replace(diameter_px=estimate.diameter_px)


def _prepare(model: Any, config: Any) -> Iterator[Notice]:
    """Export and check, on their first run here, the model and the one that sizes it.

    Says so first (:class:`Notice`): the export and the check take 10-30 s with no progress.
    """
    from napari_dmqpm.inference.backends import describe, first_use, resolve_backend
    from napari_dmqpm.inference.diameter import size_model

    models = [model]
    if config.diameter_px == "auto" and model.info.cell_diameter_px is not None:
        models.append(size_model(model, phase_available=True))  # the widget always has phase
    due = [m for m in models if first_use(m, config.backend) is not None]
    if not due:
        return
    names = " and ".join(m.info.name for m in due)
    them = "them" if len(due) > 1 else "it"
    backend = resolve_backend(config.backend, model.device)
    yield Notice(
        f"Preparing {backend} for {names}: the first run on this machine exports {them} to "
        f"ONNX and checks {them} against torch (10-30 s, once)"
    )
    for each in models:
        describe(each, config.backend)


def segment_work(job: Any, request: SegmentRequest) -> Iterator[Any]:
    """Load the model, then segment frame by frame, reading each frame alone.

    Yields
    ------
    LoadedModel, then Notice, then FrameResult
        The model first (so the widget can show the device in use); a :class:`Notice` when
        the model or the one that sizes it runs on OpenVINO or ONNX Runtime for the first
        time on this machine (it is then exported and checked, which shows no progress);
        then one result per frame, numbered by the phase layer's time index.
    """
    from napari_dmqpm.inference import segment_acquisition
    from napari_dmqpm.model.registry import load_model

    frames = request.chosen_frames
    acquisition = _frame_acquisition(request, frames[0])  # bad input fails before loading
    model = load_model(request.model, device=request.config.device)
    yield model
    yield from _prepare(model, request.config)
    config, estimate = request.config, None
    for index, frame in enumerate(frames):
        if job.should_stop():
            return
        if index:
            acquisition = _frame_acquisition(request, frame)
        results = segment_acquisition(
            acquisition,
            model,
            config=config,
            postprocess=request.postprocess,
            alpha_um3_per_pg=request.phase_unit.alpha_um3_per_pg,
            progress=_frame_progress(job, index, len(frames)),
            should_stop=job.should_stop,
        )
        for result in results:
            if result.diameter is not None and result.diameter.source == "estimated":
                estimate = result.diameter
            elif estimate is not None:  # given the estimate of an earlier frame
                result = dataclasses.replace(result, diameter=estimate)
            yield _in_layer_frame(result, frame)
        config = _next_config(request.config, estimate, index + 1)


def rethreshold_work(
    job: Any,
    probabilities: Mapping[int, Any],
    phase: Any,
    *,
    postprocess: Any,
    pixel_size_um: float | None,
    phase_unit: PhaseUnit,
) -> Iterator[Any]:
    """New labels and tables from kept probabilities, one frame at a time.

    Parameters
    ----------
    probabilities : mapping of int to Probabilities
        Time index -> the probabilities kept from a run (float16 is fine).
    phase : napari Image layer
        Read one frame at a time for the measurements.
    phase_unit : PhaseUnit
        Unit of the phase values and the wavelength, as in the run.

    Yields
    ------
    FrameResult
        One per frame of ``probabilities``.
    """
    from napari_dmqpm.inference import FrameResult, measure_cells, probabilities_to_labels

    total = len(probabilities)
    for done, (frame, probs) in enumerate(probabilities.items()):
        if job.should_stop():
            return
        job.report(done, total)
        labels = probabilities_to_labels(expand_probabilities(probs), config=postprocess)
        table = measure_cells(
            labels,
            phase_in_radians(phase, frame, phase_unit),
            pixel_size_um=pixel_size_um,
            wavelength_um=phase_unit.wavelength_um,
            alpha_um3_per_pg=phase_unit.alpha_um3_per_pg,
            frame=frame,
            cell_diameter_px=probs.diameter_px,
        )
        yield FrameResult(frame, labels, probs, table)
    job.report(total, total)


@dataclass(frozen=True)
class FinetuneRequest:
    """One fine-tuning run, as read from the fine-tune widget.

    Attributes
    ----------
    phase : ndarray of shape (T, M, N)
        Phase in radians of the frames to train on.
    labels : ndarray of shape (T, M, N)
        Their corrected labels.
    angles : ndarray of shape (T, 4, M, N) or None
        Their angle images, for models that take them.
    base, name : str
        Model to start from; name of the new user model.
    options : dict
        ``epochs``, ``minutes``, ``learning_rate``, ``iterations_per_epoch``, ``patch_size``,
        ``device``: passed to :func:`napari_dmqpm.training.iter_finetune`.
    phase_unit : PhaseUnit
        The unit the phase layer's values were in (``phase`` is already converted).
    """

    phase: np.ndarray
    labels: np.ndarray
    angles: np.ndarray | None
    base: str
    name: str
    options: dict[str, Any]
    phase_unit: PhaseUnit = field(default_factory=PhaseUnit)


@dataclass(frozen=True)
class FinetuneOutcome:
    """A fine-tuning run: the new model's name and folder, and the validation before and after.

    ``improved`` is False when no epoch beat the base model: then nothing was saved (``path``
    is None). ``epochs``, ``iterations`` and ``minutes`` are what the run did.
    """

    name: str
    path: Path | None
    dice_before: float
    dice_after: float
    f1_before: float
    f1_after: float
    best_epoch: int
    stopped: bool
    improved: bool = True
    epochs: int = 0
    iterations: int = 0
    minutes: float = 0.0


def finetune_work(job: Any, request: FinetuneRequest) -> Iterator[Any]:
    """Fine-tune, yielding every :class:`~napari_dmqpm.training.EpochReport`; save the best.

    The run folder is a hidden folder in the user models folder, removed at the end; the
    best weights are copied atomically to ``<user models>/<name>``, unless no epoch beat the
    base model (then nothing is saved). Stop (``job.should_stop``) ends training and still
    saves. A time budget too short for one epoch raises
    :class:`~napari_dmqpm.training.budget.BudgetTooShortError` before any training.

    Returns
    -------
    FinetuneOutcome
    """
    from napari_dmqpm.model.registry import user_model_path
    from napari_dmqpm.training.finetune import export_model, iter_finetune, summarize_finetune

    destination = user_model_path(request.name)
    if destination.exists():
        raise FileExistsError(f"a model named {request.name!r} exists; choose another name")
    destination.parent.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f".run-{request.name}-", dir=destination.parent))
    reports = []
    try:
        for report in iter_finetune(
            request.phase,
            request.labels,
            angles=request.angles,
            base=request.base,
            out=run_dir,
            should_stop=job.should_stop,
            **request.options,
        ):
            reports.append(report)
            yield report
        if not reports:
            raise RuntimeError("stopped before the base model was scored: nothing was saved")
        result = summarize_finetune(run_dir, reports)
        if result.improved:
            export_model(run_dir, destination)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return FinetuneOutcome(
        name=request.name,
        path=destination if result.improved else None,
        dice_before=result.dice_before,
        dice_after=result.dice_after,
        f1_before=result.f1_before,
        f1_after=result.f1_after,
        best_epoch=result.best_epoch,
        stopped=job.should_stop(),
        improved=result.improved,
        epochs=result.epochs,
        iterations=result.iterations,
        minutes=result.minutes,
    )
