"""Segment an acquisition frame by frame, or a file into a labels TIFF and a per-cell CSV.

:func:`segment_acquisition` is the one core function behind the napari widget, ``dmqpm
segment`` and the tests: a generator over frames, so memory does not grow with the number of
frames and a caller can stop between frames (or within one batch of tiles, through
``should_stop``). :func:`segment_file` drives it for one file and writes both outputs so that
they are either both complete or both absent.

:func:`segment_file` keeps its memory bounded: it opens the file lazily (a frame is read when
it is segmented), writes each frame's labels and rows as soon as they exist, and cuts frames of
more than ``STRIP_PIXELS`` pixels into horizontal strips: each strip is predicted with half a
tile of context on both sides, and post-processed with ``POSTPROCESS_HALO_PX`` of context (see
:func:`~napari_dmqpm.inference.postprocess.labels_in_strips`).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_dmqpm.io import Acquisition, DataWarning, read_acquisition
from napari_dmqpm.model import DMQPMNet
from napari_dmqpm.model.registry import LoadedModel, default_model_for, load_model

from .config import InferenceConfig, PostprocessConfig
from .measure import measure_cells
from .outputs import check_out_dir, output_paths, stream_outputs
from .postprocess import labels_in_strips, probabilities_to_labels, seed_score
from .predict import Probabilities, count_tiles, predict_probabilities, resolve_scale
from .tiling import ProgressCallback, StopCallback, plan_strips

ModelLike = DMQPMNet | LoadedModel | str | os.PathLike | None

#: Without ``keep_probabilities``, frames of more pixels than this go in strips (4096²).
STRIP_PIXELS = 2**24
#: Rows of context, at the model's scale, that the post-processing of a strip sees each side.
POSTPROCESS_HALO_PX = 128


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
    """

    frame: int
    labels: np.ndarray
    probabilities: Probabilities | None
    table: dict[str, np.ndarray]


@dataclass(frozen=True)
class SegmentFileResult:
    """What :func:`segment_file` wrote."""

    labels_path: Path
    table_path: Path
    n_frames: int
    n_cells: int
    model: str
    model_sha256: str | None


def resolve_model(model: ModelLike, *, kind: str, device: str = "auto") -> DMQPMNet | LoadedModel:
    """The model to use: a given network, a name or folder (loaded), or the default for ``kind``."""
    if isinstance(model, (DMQPMNet, LoadedModel)):
        return model
    if model is None:
        model = default_model_for(kind)
    return load_model(model, device=device)


def check_model_fits(model: DMQPMNet | LoadedModel, acquisition: Acquisition) -> None:
    """Raise a clear ``ValueError`` when the model needs inputs the acquisition lacks."""
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
    """The post-processing stored with the weights (``postprocessing`` in config.json)."""
    if not isinstance(model, LoadedModel):
        return PostprocessConfig()
    try:
        return PostprocessConfig.from_dict(model.info.postprocessing)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"the 'postprocessing' of model {model.info.name!r} ({model.info.path}) is "
            f"invalid: {err}"
        ) from err


def _repaired(name: str, array: Any, frame: int) -> np.ndarray | None:
    """The frame as float32, NaN/Inf replaced (with a DataWarning): 0 for phase, else median."""
    if array is None:
        return None
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
        Tiling, TTA, device, diameter (defaults when None).
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
    plan = _plan_frame(resolved, acquisition, config, keep_probabilities)
    per_frame = 1 + sum(plan.tiles)
    options = _Options(config, postprocess, alpha_um3_per_pg, keep_probabilities, should_stop)
    progress_over_frames = _Progress(progress, per_frame, per_frame * len(chosen))
    return _iter_frames(acquisition, resolved, chosen, plan, options, progress_over_frames)


@dataclass(frozen=True)
class _Options:
    config: InferenceConfig
    postprocess: PostprocessConfig
    alpha: float
    keep_probabilities: bool
    should_stop: StopCallback | None


@dataclass(frozen=True)
class _FramePlan:
    """Strips ``(top, bottom, low, high)`` of a frame (one: the whole frame), tiles, halo."""

    strips: tuple[tuple[int, int, int, int], ...]
    tiles: tuple[int, ...]
    postprocess_halo: int

    @property
    def whole(self) -> bool:
        return len(self.strips) == 1


def _plan_frame(
    model: DMQPMNet | LoadedModel, acquisition: Acquisition, config: InferenceConfig, keep: bool
) -> _FramePlan:
    n_rows, n_cols = acquisition.frame_shape
    scale = resolve_scale(model, config=config, pixel_size_um=acquisition.pixel_size_um)
    halo = math.ceil(config.tile_size / (2 * scale))
    limit = n_rows * n_cols if keep else STRIP_PIXELS
    strips = plan_strips(n_rows, n_cols, max_pixels=limit, halo=halo)
    size = acquisition.pixel_size_um
    tiles = [count_tiles(model, (b - a, n_cols), config=config, pixel_size_um=size)
             for _, _, a, b in strips]  # fmt: skip
    return _FramePlan(strips, tuple(tiles), math.ceil(POSTPROCESS_HALO_PX / scale))


class _Progress:
    """Turns per-frame tile progress into progress over all frames."""

    def __init__(self, callback: ProgressCallback | None, per_frame: int, total: int) -> None:
        self.callback, self.per_frame, self.total, self.done_frames = callback, per_frame, total, 0
        self.done_in_frame = 0  # tiles of the strips already finished in this frame

    def tiles(self, done: int, _total: int) -> None:
        if self.callback is not None:
            start = self.done_frames * self.per_frame + self.done_in_frame
            self.callback(start + done, self.total)

    def strip_done(self, n_tiles: int) -> None:
        self.done_in_frame += n_tiles

    def frame_done(self) -> None:
        self.done_frames, self.done_in_frame = self.done_frames + 1, 0
        self.tiles(0, 0)


def _iter_frames(
    acquisition: Acquisition,
    model: DMQPMNet | LoadedModel,
    chosen: list[int],
    plan: _FramePlan,
    options: _Options,
    progress: _Progress,
) -> Iterator[FrameResult]:
    network = model.network if isinstance(model, LoadedModel) else model
    uses = network.config.inputs
    for frame in chosen:
        if plan.whole:
            phase, angles = _inputs(acquisition, frame, uses, slice(None))
            probabilities = _predict(model, acquisition, phase, angles, options, progress)
            labels = probabilities_to_labels(probabilities, config=options.postprocess)
            if not options.keep_probabilities:
                probabilities = None
        else:
            labels = _labels_in_strips(acquisition, frame, model, uses, plan, options, progress)
            probabilities, phase = None, _repaired("phase", acquisition.phase[frame], frame)
        table = measure_cells(
            labels,
            phase,
            pixel_size_um=acquisition.pixel_size_um,
            wavelength_um=acquisition.wavelength_um,
            alpha_um3_per_pg=options.alpha,
            frame=frame,
        )
        progress.frame_done()
        yield FrameResult(frame, labels, probabilities, table)


def _inputs(
    acquisition: Acquisition, frame: int, uses: str, rows: slice
) -> tuple[np.ndarray, np.ndarray | None]:
    """Phase (always: it is measured) and, when the model takes them, angles of some rows."""
    phase = _repaired("phase", acquisition.phase[frame, rows], frame)
    angles = None
    if uses in ("both", "angles"):
        angles = _repaired("angles", acquisition.angles[frame, :, rows], frame)
    return phase, angles


def _predict(
    model: DMQPMNet | LoadedModel,
    acquisition: Acquisition,
    phase: np.ndarray,
    angles: np.ndarray | None,
    options: _Options,
    progress: _Progress,
) -> Probabilities:
    network = model.network if isinstance(model, LoadedModel) else model
    return predict_probabilities(
        model,
        angles=angles,
        phase=phase if network.config.inputs in ("both", "phase") else None,
        config=options.config,
        pixel_size_um=acquisition.pixel_size_um,
        progress=progress.tiles,
        should_stop=options.should_stop,
    )


def _labels_in_strips(
    acquisition: Acquisition,
    frame: int,
    model: DMQPMNet | LoadedModel,
    uses: str,
    plan: _FramePlan,
    options: _Options,
    progress: _Progress,
) -> np.ndarray:
    """Predict strip by strip into a seed score and a foreground mask, then post-process."""
    score = np.empty(acquisition.frame_shape, dtype=np.float32)
    foreground = np.empty(acquisition.frame_shape, dtype=bool)
    threshold, scale = options.postprocess.foreground_threshold, 1.0
    for (top, bottom, low, high), n_tiles in zip(plan.strips, plan.tiles, strict=True):
        phase, angles = _inputs(acquisition, frame, uses, slice(low, high))
        probabilities = _predict(model, acquisition, phase, angles, options, progress)
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
) -> SegmentFileResult:
    """Segment one file into ``<stem>_labels.tif`` and ``<stem>_cells.csv`` in ``out_dir``.

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

    Returns
    -------
    SegmentFileResult
        Labels are (M, N) for a single frame, (T, M, N) for a time-lapse, with the pixel size;
        the CSV has one row per cell and frame.

    Notes
    -----
    Both files are written to temporary names in ``out_dir``, frame by frame, and moved into
    place only when both are complete; on any error, or Ctrl+C, neither is left behind. The
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
        keep_probabilities=False,
    )  # fmt: skip
    stack = acquisition.is_timelapse or acquisition.n_frames > 1
    shape = (acquisition.n_frames, *acquisition.frame_shape) if stack else acquisition.frame_shape
    with stream_outputs(
        targets, shape=shape, pixel_size_um=acquisition.pixel_size_um, overwrite=overwrite
    ) as outputs:
        for result in results:
            outputs.add(result.frame if stack else 0, result.labels, result.table)
    info = resolved.info if isinstance(resolved, LoadedModel) else None
    return SegmentFileResult(
        labels_path=targets[0],
        table_path=targets[1],
        n_frames=acquisition.n_frames,
        n_cells=outputs.n_rows,
        model="(in memory)" if info is None else info.name,
        model_sha256=None if info is None else info.sha256,
    )
