"""Segment an acquisition frame by frame, or a file into a labels TIFF and a per-cell CSV.

:func:`segment_acquisition` is the one core function behind the napari widget, ``dmqpm
segment`` and the tests: a generator over frames, so memory does not grow with the number of
frames and a caller can stop between frames (or within one batch of tiles, through
``should_stop``). :func:`segment_file` drives it for one file and writes its outputs (labels,
cells table, frame statuses) so that they are all complete or all absent.

:func:`segment_file` keeps its memory bounded: it opens the file lazily (a frame is read when
it is segmented), writes each frame's labels and rows as soon as they exist, and cuts frames of
more than ``STRIP_PIXELS`` pixels into horizontal strips: each strip is predicted with half a
tile of context on both sides, and post-processed with ``POSTPROCESS_HALO_PX`` of context (see
:func:`~napari_dmqpm.inference.postprocess.labels_in_strips`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_dmqpm.io import Acquisition, DataWarning, read_acquisition
from napari_dmqpm.model import DMQPMNet
from napari_dmqpm.model.registry import LoadedModel, default_model_for, load_model
from napari_dmqpm.phase import background_level

from .backends import describe
from .config import AUTO_DIAMETER, InferenceConfig, PostprocessConfig
from .diameter import (
    DIAMETER_TOLERANCE,
    DiameterEstimate,
    estimate_from_reader,
    resolve_diameter,
)
from .frames import FrameStatus, featureless_reason, frame_status
from .measure import measure_cells
from .outputs import check_out_dir, output_paths, stream_outputs
from .pipeline import FramePipeline
from .postprocess import labels_in_strips, probabilities_to_labels, seed_score
from .predict import Probabilities, count_tiles, predict_probabilities, trained_diameter
from .tiling import ProgressCallback, StopCallback, plan_strips

ModelLike = DMQPMNet | LoadedModel | str | os.PathLike | None

#: Without ``keep_probabilities``, frames of more pixels than this go in strips (4096²).
STRIP_PIXELS = 2**24
#: Rows of context, at the model's scale, that the post-processing of a strip sees each side.
POSTPROCESS_HALO_PX = 128
#: A time-lapse re-check starts from this many times the last estimate, so that it comes down
#: onto the cells' size (see :mod:`~napari_dmqpm.inference.diameter`) even if they grew.
RECHECK_START = 2.0


@dataclass(frozen=True)
class FrameResult:
    """The segmentation of one frame.

    Attributes
    ----------
    frame : int
        Index of the frame in the acquisition.
    labels : ndarray of shape (M, N), uint32
        Instance labels, 0 background, 1..n cells.
    probabilities : Probabilities or None
        The network output the labels came from (re-threshold it without re-running); None
        when :func:`segment_acquisition` was asked not to keep it.
    table : dict of str to ndarray
        Per-cell measurements (see :func:`~napari_dmqpm.inference.measure_cells`).
    diameter : DiameterEstimate or None
        The cell diameter the frame was resampled for, and whether it was estimated, given
        or implied by the pixel size.
    status : FrameStatus or None
        ``ok``, ``empty`` (no cells found) or ``featureless`` (constant inputs: the network
        was not run), with the reason (see :mod:`~napari_dmqpm.inference.frames`); set by
        :func:`segment_acquisition`.
    """

    frame: int
    labels: np.ndarray
    probabilities: Probabilities | None
    table: dict[str, np.ndarray]
    diameter: DiameterEstimate | None = None
    status: FrameStatus | None = None


@dataclass(frozen=True)
class SegmentFileResult:
    """What :func:`segment_file` wrote."""

    labels_path: Path
    table_path: Path
    n_frames: int
    n_cells: int
    model: str
    model_sha256: str | None
    frames_path: Path | None = None
    """``<stem>_frames.csv``: each frame's cell count and status (ok, empty, featureless)."""
    frames: tuple[FrameStatus, ...] = ()
    """The status of each frame written, in the labels' order."""
    cell_diameter_px: tuple[float, ...] = ()
    """The cell diameters the frames were resampled for, px (distinct, ascending; one value
    unless a time-lapse re-check changed it; empty when not resampled by size)."""
    backend: str = "torch"
    """What ran the network (``InferenceConfig.backend`` resolved; see
    :mod:`napari_dmqpm.inference.backends`)."""
    precision: str = "float32"
    """The arithmetic it ran at."""


def resolve_model(model: ModelLike, *, kind: str, device: str = "auto") -> DMQPMNet | LoadedModel:
    """The model to use: a given network, a name or folder (loaded), or the default for ``kind``.

    Parameters
    ----------
    model : DMQPMNet, LoadedModel, str, path-like or None
        A network, a model name or checkpoint folder (loaded), or None for the default.
    kind : str
        The acquisition's kind, which picks the default model.
    device : str
        Where a loaded model goes (``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``).
    """
    if isinstance(model, (DMQPMNet, LoadedModel)):
        return model
    if model is None:
        model = default_model_for(kind)
    return load_model(model, device=device)


def check_model_fits(model: DMQPMNet | LoadedModel, acquisition: Acquisition) -> None:
    """Raise a clear ``ValueError`` when the model needs inputs the acquisition lacks.

    Parameters
    ----------
    model : DMQPMNet or LoadedModel
        The network, or a registry model (which states its trained cell diameter).
    acquisition : Acquisition
        The images to segment.
    """
    network = model.network if isinstance(model, LoadedModel) else model
    needs = network.config.inputs
    if needs in ("both", "angles") and acquisition.angles is None:
        name = f"model {model.info.name!r}" if isinstance(model, LoadedModel) else "this model"
        raise ValueError(
            f"{name} needs the four angle images (inputs={needs!r}), but "
            f"{acquisition.source or 'the input'} is a {acquisition.kind} with phase only; use "
            f"a phase-only model (e.g. the shipped {default_model_for('phase-map')!r})"
        )


def default_postprocess(model: DMQPMNet | LoadedModel) -> PostprocessConfig:
    """The post-processing stored with the weights (``postprocessing`` in config.json).

    Parameters
    ----------
    model : DMQPMNet or LoadedModel
        The network, or a registry model (which states its trained cell diameter).
    """
    if not isinstance(model, LoadedModel):
        return PostprocessConfig()
    try:
        return PostprocessConfig.from_dict(model.info.postprocessing)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"the 'postprocessing' of model {model.info.name!r} ({model.info.path}) is "
            f"invalid: {err}"
        ) from err


def _repaired(name: str, array: Any, frame: int) -> np.ndarray:
    """The frame as float32, NaN/Inf replaced (with a DataWarning): 0 for phase, else median."""
    if hasattr(array, "compute"):  # a lazy frame: read it in this thread (no pool, no arenas)
        array = array.compute(scheduler="synchronous")
    array = np.asarray(array, dtype=np.float32)
    bad = ~np.isfinite(array)
    n_bad = int(np.count_nonzero(bad))
    if not n_bad:
        return array
    array = array.copy()
    planes = array if array.ndim == 3 else array[None]
    for plane, mask in zip(planes, bad if array.ndim == 3 else bad[None], strict=True):
        finite = plane[~mask]
        fill = 0.0 if name == "phase" or not finite.size else float(np.median(finite))
        plane[mask] = fill
    what = "0" if name == "phase" else "the plane median"
    warnings.warn(
        f"frame {frame}: {n_bad} NaN/Inf pixels in {name} replaced by {what}",
        DataWarning,
        stacklevel=4,
    )
    return array


def _frames(frames: Sequence[int] | None, n_frames: int) -> list[int]:
    chosen = list(range(n_frames)) if frames is None else [int(t) for t in frames]
    bad = [t for t in chosen if not 0 <= t < n_frames]
    if bad or not chosen:
        raise ValueError(f"frames must be indices in [0, {n_frames}); got frames={frames!r}")
    return chosen


def segment_acquisition(
    acquisition: Acquisition,
    model: ModelLike = None,
    *,
    config: InferenceConfig | None = None,
    postprocess: PostprocessConfig | None = None,
    frames: Sequence[int] | None = None,
    alpha_um3_per_pg: float = 0.18,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    keep_probabilities: bool = True,
) -> Iterator[FrameResult]:
    """Segment the frames of an acquisition one at a time.

    Parameters
    ----------
    acquisition : Acquisition
        Phase (T, M, N) and, for models that use them, angles (T, 4, M, N). Frames are read
        one at a time (``np.asarray(acquisition.phase[t])``), so lazy arrays work. Not modified.
    model : DMQPMNet, LoadedModel, str, path-like or None
        A network, a registry name or checkpoint folder (loaded on ``config.device``), or None
        for the shipped default of ``acquisition.kind``.
    config : InferenceConfig, optional
        Tiling, TTA, device, diameter (defaults when None). With ``diameter_px="auto"`` (the
        default) the cell diameter is estimated on the first chosen frame and re-checked
        every ``config.recheck_every`` frames; ``FrameResult.diameter`` says what was used.
    postprocess : PostprocessConfig, optional
        Watershed thresholds; None takes the ones stored with the weights.
    frames : sequence of int, optional
        Which time points, in this order (all when None).
    alpha_um3_per_pg : float
        Specific refraction increment for the dry mass.
    progress : callable, optional
        ``progress(done, total)`` over all chosen frames, counted in tiles plus one step per
        frame for post-processing and measuring.
    should_stop : callable, optional
        Polled before every batch of tiles; True raises
        :class:`~napari_dmqpm.inference.Cancelled`.
    keep_probabilities : bool
        Return each frame's probabilities (default). False drops them, and segments frames of
        more than ``STRIP_PIXELS`` pixels in horizontal strips (bounded memory; see the
        module), so that ``FrameResult.probabilities`` is None.

    Returns
    -------
    iterator of FrameResult
        One per chosen frame. The model, inputs and options are checked before this returns,
        so bad input raises here rather than at the first ``next()``.

    Raises
    ------
    ValueError
        A model that does not fit the input kind, bad frame indices, invalid thresholds.
    ModelNotFoundError, CheckpointError
        From the registry, for an unknown or corrupt model.
    """
    config = config or InferenceConfig()
    resolved = resolve_model(model, kind=acquisition.kind, device=config.device)
    check_model_fits(resolved, acquisition)
    postprocess = postprocess or default_postprocess(resolved)
    chosen = _frames(frames, acquisition.n_frames)
    auto = config.diameter_px == AUTO_DIAMETER and trained_diameter(resolved) is not None
    first = resolve_diameter(
        resolved,
        config=config.replace(diameter_px=None) if auto else _fixed(config),
        pixel_size_um=acquisition.pixel_size_um,
    )  # with "auto", the starting point of the estimate; the plan follows it
    options = _Options(config, postprocess, alpha_um3_per_pg, keep_probabilities, should_stop, auto)
    plan = _plan_frame(resolved, acquisition, options.at(first), keep_probabilities)
    progress_over_frames = _Progress(progress, plan.steps, len(chosen))
    return _iter_frames(acquisition, resolved, chosen, first, plan, options, progress_over_frames)


def _fixed(config: InferenceConfig) -> InferenceConfig:
    """``config`` for a model that cannot be resampled by size ("auto" means no resampling)."""
    return config.replace(diameter_px=None) if config.diameter_px == AUTO_DIAMETER else config


@dataclass(frozen=True)
class _Options:
    config: InferenceConfig
    postprocess: PostprocessConfig
    alpha: float
    keep_probabilities: bool
    should_stop: StopCallback | None
    auto: bool  # estimate the diameter ("auto" and a model that states its trained one)

    def at(self, diameter: DiameterEstimate) -> InferenceConfig:
        """The config that resamples for ``diameter`` (an estimate becomes a given number)."""
        if self.auto:
            return self.config.replace(diameter_px=diameter.diameter_px)
        return _fixed(self.config)

    def rechecks(self, index: int) -> bool:
        """Whether the ``index``-th chosen frame (from 0) re-estimates the diameter."""
        every = self.config.recheck_every
        return self.auto and (index == 0 or (every > 0 and index % every == 0))


@dataclass(frozen=True)
class _FramePlan:
    """Strips ``(top, bottom, low, high)`` of a frame (one: the whole frame), tiles, halo."""

    strips: tuple[tuple[int, int, int, int], ...]
    tiles: tuple[int, ...]
    postprocess_halo: int

    @property
    def whole(self) -> bool:
        return len(self.strips) == 1

    @property
    def steps(self) -> int:
        """Progress steps of one frame: its tiles and one for post-processing."""
        return 1 + sum(self.tiles)


def _plan_frame(
    model: DMQPMNet | LoadedModel, acquisition: Acquisition, config: InferenceConfig, keep: bool
) -> _FramePlan:
    n_rows, n_cols = acquisition.frame_shape
    scale = resolve_diameter(model, config=config, pixel_size_um=acquisition.pixel_size_um).scale
    halo = math.ceil(config.tile_size / (2 * scale))
    limit = n_rows * n_cols if keep else STRIP_PIXELS
    strips = plan_strips(n_rows, n_cols, max_pixels=limit, halo=halo)
    size = acquisition.pixel_size_um
    tiles = [count_tiles(model, (b - a, n_cols), config=config, pixel_size_um=size)
             for _, _, a, b in strips]  # fmt: skip
    return _FramePlan(strips, tuple(tiles), math.ceil(POSTPROCESS_HALO_PX / scale))


class _Progress:
    """Turns per-frame tile progress into progress over all frames.

    A new cell-diameter estimate changes the tiles per frame (:meth:`replan`); the total then
    counts the finished frames as they were and the frames left at the new count.
    """

    def __init__(self, callback: ProgressCallback | None, per_frame: int, n_frames: int) -> None:
        self.callback, self.per_frame, self.frames_left = callback, per_frame, n_frames
        self.finished = 0  # steps done: the tiles of the predicted frames, 1 per finished one
        self.done_in_frame = 0  # tiles of the strips already finished in this frame
        self.to_finish = 0  # frames predicted but not yet post-processed (overlapped frames)

    def replan(self, per_frame: int) -> None:
        self.per_frame = per_frame

    def tiles(self, done: int, _total: int) -> None:
        if self.callback is not None:
            total = self.finished + self.frames_left * self.per_frame + self.to_finish
            self.callback(self.finished + self.done_in_frame + done, total)

    def strip_done(self, n_tiles: int) -> None:
        self.done_in_frame += n_tiles

    def predicted(self) -> None:
        """The frame's network is done (at its plan's tiles); its post-processing step is not."""
        self.finished += self.per_frame - 1
        self.frames_left, self.done_in_frame = self.frames_left - 1, 0
        self.to_finish += 1

    def post_done(self) -> None:
        """The oldest predicted frame is post-processed and measured."""
        self.finished, self.to_finish = self.finished + 1, self.to_finish - 1
        self.tiles(0, 0)


def _iter_frames(
    acquisition: Acquisition,
    model: DMQPMNet | LoadedModel,
    chosen: list[int],
    diameter: DiameterEstimate,
    plan: _FramePlan,
    options: _Options,
    progress: _Progress,
) -> Iterator[FrameResult]:
    """The frames' results: one after the other, or overlapped (:mod:`.pipeline`)."""
    if not options.config.overlap_frames or len(chosen) < 2:
        first = _FirstStage(acquisition, model, diameter, plan, options, progress)
        for index, frame in enumerate(chosen):
            finish = first(index, frame)
            result = finish()
            del finish  # the maps go before the next frame's network
            progress.post_done()
            yield result
        return
    pipeline: FramePipeline[FrameResult] = FramePipeline()
    user_stop = options.should_stop

    def should_stop() -> bool:  # a failed post-processing stops the next network at once
        return pipeline.failed() or (user_stop is not None and bool(user_stop()))

    options = dataclasses.replace(options, should_stop=should_stop)
    first = _FirstStage(acquisition, model, diameter, plan, options, progress, pipeline.settle)
    results = pipeline.run(first(index, frame) for index, frame in enumerate(chosen))
    try:
        for result in results:
            progress.post_done()
            yield result
    finally:
        results.close()  # joins the worker


class _FirstStage:
    """The first stage of each frame, in frame order: read, estimate, predict.

    Calling it for a frame runs what must run in order in the caller's thread (reading the
    inputs, the diameter re-checks, which change the plan, the network) and returns the
    second stage: post-processing and measuring (:func:`_second_stage`), which may run on a
    worker thread. Nothing of a frame is kept here once its second stage is returned.
    """

    def __init__(
        self,
        acquisition: Acquisition,
        model: DMQPMNet | LoadedModel,
        diameter: DiameterEstimate,
        plan: _FramePlan,
        options: _Options,
        progress: _Progress,
        settle: Callable[[], None] | None = None,
    ) -> None:
        self.acquisition, self.model, self.options, self.progress = (
            acquisition, model, options, progress
        )  # fmt: skip
        self.diameter, self.plan, self.estimated = diameter, plan, False
        self.settle = settle  # waits for the previous frame's second stage (strips: memory)
        network = model.network if isinstance(model, LoadedModel) else model
        self.uses = network.config.inputs

    def __call__(self, index: int, frame: int) -> Callable[[], FrameResult]:
        acquisition, model, uses, options = self.acquisition, self.model, self.uses, self.options
        progress = self.progress
        size, wavelength = acquisition.pixel_size_um, acquisition.wavelength_um
        sample = _phase_sample(acquisition, frame)  # read once: the two tests below share it
        featureless = _featureless(acquisition, frame, uses, sample)
        if featureless is not None:  # no cells to find: no prediction
            empty = np.zeros(acquisition.frame_shape, np.int32)
            phase = _repaired("phase", acquisition.phase[frame], frame)
            progress.predicted()
            return functools.partial(
                _second_stage, frame, None, empty, phase, size, wavelength, options,
                self.diameter, None, featureless,
            )  # fmt: skip
        level = None  # the frame's background level, measured once for all its predictions
        if options.config.phase_offset and (uses != "angles" or options.rechecks(index)):
            level = background_level(sample)
        if options.rechecks(index):
            # options.auto: a registry model that states its diameter, which sizes every pass
            diameter = self.diameter
            assert isinstance(model, LoadedModel) and diameter.diameter_px is not None
            start = RECHECK_START * diameter.diameter_px if self.estimated else None
            new = _estimate(acquisition, frame, model, uses, options, start, level)
            assert new.diameter_px is not None  # an estimate always gives a diameter
            change = abs(new.diameter_px / diameter.diameter_px - 1.0)
            if not self.estimated or (new.n_cells and change > DIAMETER_TOLERANCE):
                self.diameter, self.estimated = new, True
                config = options.at(new)
                self.plan = _plan_frame(model, acquisition, config, options.keep_probabilities)
                progress.replan(self.plan.steps)
        config = options.at(self.diameter)
        predicted: Probabilities | None = None
        labels = None
        if self.plan.whole:
            phase, angles = _inputs(acquisition, frame, uses, slice(None))
            predicted = _predict(
                model, acquisition, phase, angles, config, options, progress, phase_level=level
            )
            del angles
        else:
            if self.settle is not None:  # a frame in strips needs the memory: no overlap
                self.settle()
            labels = _labels_in_strips(
                acquisition, frame, model, uses, self.plan, config, options, progress, level
            )
            phase = _repaired("phase", acquisition.phase[frame], frame)
        backend = describe(model, config.backend)  # what ran: the CSV says (#17)
        progress.predicted()
        return functools.partial(
            _second_stage, frame, predicted, labels, phase, size, wavelength, options,
            self.diameter, backend, None,
        )  # fmt: skip


def _second_stage(
    frame: int,
    predicted: Probabilities | None,
    labels: np.ndarray | None,
    phase: np.ndarray,
    pixel_size_um: float | None,
    wavelength_um: float | None,
    options: _Options,
    diameter: DiameterEstimate,
    backend: tuple[str, str] | None,
    featureless: str | None,
) -> FrameResult:
    """Post-process (unless ``labels`` are given) and measure a frame: no reading, no network.

    ``backend``: what ran the network and at what precision (None for a featureless frame).
    """
    if labels is None:
        assert predicted is not None
        labels = probabilities_to_labels(predicted, config=options.postprocess)
    engine, precision = ("", "") if backend is None else backend  # measure_cells' defaults
    table = measure_cells(
        labels,
        phase,
        pixel_size_um=pixel_size_um,
        wavelength_um=wavelength_um,
        alpha_um3_per_pg=options.alpha,
        frame=frame,
        cell_diameter_px=diameter.diameter_px,
        backend=engine,
        precision=precision,
    )
    if featureless is not None:
        status = frame_status(frame, labels, featureless=featureless)
        return FrameResult(frame, labels, None, table, diameter, status)
    probabilities = predicted if options.keep_probabilities else None
    return FrameResult(frame, labels, probabilities, table, diameter, frame_status(frame, labels))


def _estimate(
    acquisition: Acquisition,
    frame: int,
    model: LoadedModel,
    uses: str,
    options: _Options,
    start_diameter_px: float | None,
    phase_level: float | None,
) -> DiameterEstimate:
    """Estimate the cell diameter on one frame, reading only the windows the passes need.

    With a ``phase_level``, every window's phase is referenced to it (the frame's background),
    not to a level of its own.
    """
    config = options.config

    def read(rows: slice, cols: slice) -> tuple[np.ndarray | None, np.ndarray | None]:
        phase, angles = _inputs(acquisition, frame, uses, rows, cols)  # the phase too: it sizes
        if phase_level is not None:
            phase = phase - np.float32(phase_level)
        return phase, angles

    if phase_level is not None:
        config = config.replace(phase_offset=False)
    return estimate_from_reader(
        model, read, acquisition.frame_shape, config=config,
        postprocess=options.postprocess, pixel_size_um=acquisition.pixel_size_um,
        start_diameter_px=start_diameter_px, should_stop=options.should_stop,
    )  # fmt: skip


def _inputs(
    acquisition: Acquisition, frame: int, uses: str, rows: slice, cols: slice = slice(None)
) -> tuple[np.ndarray, np.ndarray | None]:
    """Phase (always: it is measured) and, when the model takes them, angles of a window."""
    phase = _repaired("phase", acquisition.phase[frame, rows, cols], frame)
    angles = None
    if uses in ("both", "angles"):
        assert acquisition.angles is not None  # checked against the model's inputs
        angles = _repaired("angles", acquisition.angles[frame, :, rows, cols], frame)
    return phase, angles


def _sample_step(acquisition: Acquisition) -> int:
    """The stride of a regular subsample of a frame of at most ~1 MP."""
    rows, cols = acquisition.frame_shape
    return max(1, int(np.ceil(np.sqrt(rows * cols / (1 << 20)))))


def _phase_sample(acquisition: Acquisition, frame: int) -> np.ndarray:
    """A frame's phase on a regular subsample of at most ~1 MP, read once per frame.

    It decides whether the frame is featureless, and gives the frame's background level,
    subtracted from the phase of every prediction of that frame: the whole frame, each strip,
    each window of the diameter estimate.
    """
    step = _sample_step(acquisition)
    return _repaired("phase", acquisition.phase[frame, ::step, ::step], frame)


def _featureless(
    acquisition: Acquisition, frame: int, uses: str, phase_sample: np.ndarray | None = None
) -> str | None:
    """Why the frame's inputs hold nothing to segment (an all-zero stack, a flat camera frame).

    :func:`~napari_dmqpm.inference.frames.featureless_reason` on the subsample of
    :func:`_phase_sample` (the angles read only when the phase is constant and the model
    takes them); None when the frame may hold cells. A network given a flat frame can invent
    cells (issue 18).
    """
    if phase_sample is None:
        phase_sample = _phase_sample(acquisition, frame)
    if featureless_reason(phase_sample) is None:
        return None
    if uses in ("both", "angles") and acquisition.angles is not None:
        step = _sample_step(acquisition)
        angles = _repaired("angles", acquisition.angles[frame, :, ::step, ::step], frame)
        return featureless_reason(phase_sample, angles)
    return featureless_reason(phase_sample)


def _predict(
    model: DMQPMNet | LoadedModel,
    acquisition: Acquisition,
    phase: np.ndarray,
    angles: np.ndarray | None,
    config: InferenceConfig,
    options: _Options,
    progress: _Progress,
    phase_level: float | None = None,
) -> Probabilities:
    network = model.network if isinstance(model, LoadedModel) else model
    return predict_probabilities(
        model,
        angles=angles,
        phase=phase if network.config.inputs in ("both", "phase") else None,
        config=config,
        pixel_size_um=acquisition.pixel_size_um,
        progress=progress.tiles,
        should_stop=options.should_stop,
        phase_level=phase_level,
    )


def _labels_in_strips(
    acquisition: Acquisition,
    frame: int,
    model: DMQPMNet | LoadedModel,
    uses: str,
    plan: _FramePlan,
    config: InferenceConfig,
    options: _Options,
    progress: _Progress,
    level: float | None,
) -> np.ndarray:
    """Predict strip by strip into a seed score and a foreground mask, then post-process.

    Every strip's phase is referenced to ``level``, the whole frame's background level, so a
    strip full of cells is not referenced to a cell plateau.
    """
    score = np.empty(acquisition.frame_shape, dtype=np.float32)
    foreground = np.empty(acquisition.frame_shape, dtype=bool)
    threshold, scale = options.postprocess.foreground_threshold, 1.0
    for (top, bottom, low, high), n_tiles in zip(plan.strips, plan.tiles, strict=True):
        phase, angles = _inputs(acquisition, frame, uses, slice(low, high))
        probabilities = _predict(
            model, acquisition, phase, angles, config, options, progress, phase_level=level
        )
        del phase, angles
        inner = slice(top - low, bottom - low)
        score[top:bottom] = seed_score(probabilities, config=options.postprocess)[inner]
        foreground[top:bottom] = probabilities.foreground[inner] > threshold
        scale = probabilities.scale
        del probabilities
        progress.strip_done(n_tiles)
    top, bottom, _, _ = plan.strips[0]
    return labels_in_strips(
        score, foreground, config=options.postprocess, scale=scale,
        strip_rows=bottom - top, halo_rows=plan.postprocess_halo,
    )  # fmt: skip


def segment_file(
    path: str | os.PathLike,
    *,
    out_dir: str | os.PathLike,
    model: ModelLike = None,
    config: InferenceConfig | None = None,
    postprocess: PostprocessConfig | None = None,
    read_options: dict[str, Any] | None = None,
    alpha_um3_per_pg: float = 0.18,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    frames: Sequence[int] | None = None,
) -> SegmentFileResult:
    """Segment one file into ``<stem>_labels.tif``, ``<stem>_cells.csv`` and ``<stem>_frames.csv``.

    Parameters
    ----------
    path : str or path-like
        Any input of docs/formats.md (read with :func:`napari_dmqpm.io.read_acquisition`).
    out_dir : str or path-like
        Existing, writable folder.
    model, config, postprocess, alpha_um3_per_pg, progress, should_stop
        See :func:`segment_acquisition`.
    read_options : dict, optional
        Keyword arguments for ``read_acquisition`` (``kind``, ``pixel_size_um``, ...).
    overwrite : bool
        Replace existing outputs (default: ``FileExistsError`` before any work).
    frames : sequence of int, optional
        Time points to segment, in this order (all when None). The labels image then holds
        only these, in this order; the CSV's ``frame`` column keeps the input's indices.

    Returns
    -------
    SegmentFileResult
        Labels are (M, N) for a single frame, (T, M, N) for a time-lapse (T the number of
        chosen frames), with the pixel size; the cells CSV has one row per cell and frame, the
        frames CSV one row per frame: its cell count and status (``ok``, ``empty``,
        ``featureless``) and why it has no cells (:mod:`~napari_dmqpm.inference.frames`).

    Notes
    -----
    The three files are written to temporary names in ``out_dir``, frame by frame, and moved into
    place only when all are complete; on any error, or Ctrl+C, none is left behind. The
    file is opened lazily (``read_options`` may set ``lazy=False``), so memory does not grow
    with the number of frames; frames of more than ``STRIP_PIXELS`` pixels are segmented in
    strips (see the module).
    """
    config = config or InferenceConfig()
    out_dir = Path(out_dir)
    targets = output_paths(path, out_dir)
    check_out_dir(out_dir, targets, overwrite)
    acquisition = read_acquisition(path, **{"lazy": True, **(read_options or {})})
    resolved = resolve_model(model, kind=acquisition.kind, device=config.device)
    results = segment_acquisition(
        acquisition, resolved, config=config, postprocess=postprocess,
        alpha_um3_per_pg=alpha_um3_per_pg, progress=progress, should_stop=should_stop,
        keep_probabilities=False, frames=frames,
    )  # fmt: skip
    n_out = acquisition.n_frames if frames is None else len(frames)
    stack = acquisition.is_timelapse or acquisition.n_frames > 1
    shape = (n_out, *acquisition.frame_shape) if stack else acquisition.frame_shape
    with stream_outputs(
        targets, shape=shape, pixel_size_um=acquisition.pixel_size_um, overwrite=overwrite
    ) as outputs:
        try:
            for position, result in enumerate(results):  # the chosen frames, in their order
                outputs.add(position if stack else 0, result.labels, result.table, result.status)
        finally:  # an error in the writing joins the overlap's worker thread at once
            getattr(results, "close", lambda: None)()
    info = resolved.info if isinstance(resolved, LoadedModel) else None
    backend, precision = describe(resolved, config.backend)
    return SegmentFileResult(
        labels_path=targets[0],
        table_path=targets[1],
        n_frames=n_out,
        n_cells=outputs.n_rows,
        model="(in memory)" if info is None else info.name,
        model_sha256=None if info is None else info.sha256,
        frames_path=targets[2],
        frames=tuple(outputs.statuses),
        cell_diameter_px=tuple(sorted(outputs.diameters)),
        backend=backend,
        precision=precision,
    )
