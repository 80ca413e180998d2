"""The typical cell diameter of an image, estimated by the segmentation model itself.

The shipped models segment cells well at the diameter they were trained at (the checkpoint's
``cell_diameter_px``) and split cells that are much larger into pieces, or merge much smaller
ones. :func:`estimate_diameter` finds the resampling that brings an image's cells to that
diameter, by a fixed-point iteration on the model's own output:

1. assume a large diameter (``START_FACTOR`` times the trained one, at most an eighth of
   the image's shorter side) and segment a window of the image (at most ``ESTIMATE_PIXELS``
   pixels at the model's scale) resampled for it;
2. take the median equivalent diameter, ``2 sqrt(area / pi)``, of the cells that do not touch
   the window's edge, in the image's pixels;
3. assume that diameter (falling by at most half per pass) and repeat until the measured and
   the assumed diameter agree within ``DIAMETER_TOLERANCE`` (at most ``MAX_PASSES`` passes),
   or until two passes ``SCALE_STEP`` apart in scale measure the same diameter where the
   next pass would look closer (a few large cells in a small field, :func:`_seen_before`).

What a pass costs (issue 17): the first pass looks at the whole window; every later one at a
central window expected to hold about ``WINDOW_CELLS`` cells at the highest density the passes
have found so far (never more than ``max_pixels``), since the median of a hundred or more
cells is as good as that of a thousand and the passes near the trained scale are the
expensive ones (150 rather than 300 cells: a third less time on a dense camera frame,
benchmarks/bench_diameter.py compares the estimates).
A pass below the model's scale (cells larger than trained) makes its labels at the model's
scale instead of resampling the probabilities back to the input's and post-processing there,
which cost more than the network at coarse scales. benchmarks/bench_scale.py
``--compare-estimates`` measures both, old against new, on the images of the scale sweep and
on camera-sized frames (docs/results_scale.md).
The last pass's probabilities are not reused for the segmentation: they are of a window, at
the assumed scale, not the measured one.

Why from above: seen at too fine a scale, a large textured cell falls into pieces that are
themselves about the trained size, so the measured diameter can agree with a wrong, small
assumed one (on a real Q-PHASE map enlarged x2, cells of 94 px: passes assuming 8-32 px
measure 15-24 px, a false fixed point). Seen at too coarse a scale, cells are merged or tiny
against the assumed size and every pass measures less than it assumed, so the iteration only
comes down, and stops at the largest size the model confirms: the cells'. Passes at a coarse
scale run on a downsampled image and cost little. The median follows the majority of the
cells, so a minority of rounded mitotic cells beside spread ones does not move it.

Which model measures: the shipped ``phase-only`` model, on the phase of the frame
(:func:`size_model`), for every model; the resampling is then the sized model's trained
diameter over the estimate. Measured on 19 resampled real and simulated cases,
``dmqpm-default`` sizing itself took merged pairs of cells for single cells on 2 real maps
at their native scale (+148 %), where ``phase-only`` was within 12 % on all 19. A
``phase-only`` fine-tuned on 12 real maps, sizing itself, took clumps of cells for cells on a
dense map of the other 3 (77.6 px for cells of 28.7 px: F1 0.10 instead of 0.79 with the
diameter given; benchmarks/finetune_kfold.py), where the shipped model measured 26.9 px.

Unlike cellpose's SizeModel (a regression on the network's style vector, trained once per
model) this needs no extra head and no retraining: it works for every checkpoint that states
its trained diameter (docs/results_scale.md measures it from 12 to 110 px).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from napari_dmqpm.model import DMQPMNet
from napari_dmqpm.model.registry import LoadedModel
from napari_dmqpm.phase import background_level

from .config import AUTO_DIAMETER, InferenceConfig, PostprocessConfig
from .postprocess import probabilities_to_labels
from .predict import (
    SCALE_RANGE,
    predict_probabilities,
    resize,
    resolve_scale,
    trained_diameter,
)
from .tiling import Cancelled, StopCallback

__all__ = [
    "DIAMETER_TOLERANCE",
    "ESTIMATE_PIXELS",
    "MAX_PASSES",
    "MIN_CELLS",
    "START_FACTOR",
    "DiameterEstimate",
    "cell_diameters",
    "estimate_diameter",
    "resolve_diameter",
]

#: Passes stop when the measured diameter is within this fraction of the one assumed.
DIAMETER_TOLERANCE = 0.1
#: At most this many estimation passes per image.
MAX_PASSES = 8
#: The first pass assumes this many times the trained diameter (capped by the image size).
START_FACTOR = 6.0
#: Pixels, at the model's scale, of the central window one estimation pass segments.
ESTIMATE_PIXELS = 1024 * 1024
#: After the first pass, a pass segments a central window expected to hold about this many
#: cells at the highest density (cells per pixel) a pass has found so far, at most
#: ``max_pixels`` and at least ``MIN_WINDOW_PIXELS`` at the model's scale.
WINDOW_CELLS = 150
MIN_WINDOW_PIXELS = 256 * 256
#: A pass at a scale below this (model pixels per input pixel) is post-processed at the
#: model's scale, not resampled back to the input's (see :func:`_labels`).
MODEL_SCALE_BELOW = 1.0
#: Fewer cells than this away from the window's edge: the edge cells are counted too.
MIN_CELLS = 5
#: A diameter is accepted only when at least this many cells confirm it.
MIN_CONFIRM = 10
#: A pass that measures this many times the diameter it assumed saw merged cells.
MERGED_FACTOR = 1.5
#: Two passes whose assumed diameters differ at least this much (ratio) and that measure the
#: same diameter, each from at least ``MIN_AGREEING`` cells, saw the same cells: resampling by
#: that factor changed nothing, so they are neither merged clumps nor fragments of one size.
SCALE_STEP = 1.5
MIN_AGREEING = 3
#: The fraction of a window cells of the measured diameter are taken to cover at least; a
#: window too small to hold ``MIN_CONFIRM`` such cells needs only as many as it can hold.
MIN_COVER = 0.25

#: A model that takes the angle images is sized by this shipped phase model (see the module doc).
SIZE_MODEL = "phase-only"

#: Reads ``(phase, angles)`` of a window of rows and columns of the image (angles may be None).
WindowReader = Callable[[slice, slice], tuple[np.ndarray | None, np.ndarray | None]]


@dataclass(frozen=True)
class DiameterEstimate:
    """The cell diameter a segmentation resamples for, and where it came from.

    Attributes
    ----------
    diameter_px : float or None
        Typical cell diameter in the input's pixels that was brought to the model's trained
        diameter; None when the model states no trained diameter (no resampling by size).
    source : {"estimated", "given", "pixel size", "model"}
        ``estimated`` by :func:`estimate_diameter`; ``given`` by the user; implied by the
        ``pixel size`` and the checkpoint's; or ``model``: no resampling, so the diameter is
        the trained one (``diameter_px=None`` and no pixel size).
    scale : float
        Model pixels per input pixel used for the segmentation.
    n_cells : int
        Cells the estimate rests on (0 unless estimated).
    passes : int
        Estimation passes run (0 unless estimated).
    converged : bool
        False when the passes did not agree within ``DIAMETER_TOLERANCE`` (the estimate is
        then the geometric mean of the last two) or found no cells (the estimate is then the
        starting diameter).
    p10_p90 : tuple of float or None
        10th and 90th percentiles of the diameters measured in the last pass, px: a wide
        spread means sizes are mixed.
    """

    diameter_px: float | None
    source: str
    scale: float
    n_cells: int = 0
    passes: int = 0
    converged: bool = True
    p10_p90: tuple[float, float] | None = None

    def describe(self) -> str:
        """One line for a status bar or a log, e.g. ``"cell diameter 48.2 px (estimated ...)"``."""
        if self.diameter_px is None:
            return "cell diameter: not resampled (the model states no trained diameter)"
        text = f"cell diameter {self.diameter_px:.1f} px"
        if self.source != "estimated":
            return f"{text} ({self.source})"
        if not self.n_cells:
            return f"{text} (no cells found to estimate it from: the starting value)"
        text += f" (estimated from {self.n_cells} cells in {self.passes} passes"
        if self.p10_p90 is not None:
            text += f"; 80 % within {self.p10_p90[0]:.0f}-{self.p10_p90[1]:.0f} px"
        return text + ("" if self.converged else "; did not converge") + ")"

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (for layer metadata and logs)."""
        return {
            "diameter_px": None if self.diameter_px is None else round(self.diameter_px, 2),
            "source": self.source,
            "scale": round(self.scale, 5),
            "n_cells": self.n_cells,
            "passes": self.passes,
            "converged": self.converged,
            "p10_p90": None if self.p10_p90 is None else [round(v, 2) for v in self.p10_p90],
        }


def cell_diameters(labels: np.ndarray, *, exclude_border: bool = True) -> np.ndarray:
    """Equivalent diameters ``2 sqrt(area / pi)`` of the labelled cells, px.

    Parameters
    ----------
    labels : ndarray of shape (M, N), integer
        Instance labels, 0 background.
    exclude_border : bool
        Leave out cells that touch the image's edge (their area is cut).

    Returns
    -------
    ndarray of shape (n,), float64

    Examples
    --------
    >>> labels = np.zeros((20, 20), np.int32)
    >>> labels[5:15, 5:15] = 1
    >>> labels[0:4, 0:4] = 2
    >>> np.round(cell_diameters(labels), 2).tolist()
    [11.28]
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels.ravel().astype(np.int64))
    counts[0] = 0
    if exclude_border:
        edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        counts[np.unique(edge)] = 0
    areas = counts[counts > 0].astype(np.float64)
    return 2.0 * np.sqrt(areas / np.pi)


def resolve_diameter(
    model: DMQPMNet | LoadedModel, *, config: InferenceConfig, pixel_size_um: float | None = None
) -> DiameterEstimate:
    """The diameter a config implies without estimating (``config.diameter_px`` not "auto").

    Parameters
    ----------
    model : DMQPMNet or LoadedModel
        The network, or a registry model (which states its trained cell diameter).

    config : InferenceConfig
        The inference options.

    pixel_size_um : float, optional
        The image's pixel size, µm (used with ``config.use_pixel_size``).

    Raises
    ------
    ValueError
        For ``diameter_px="auto"`` (use :func:`estimate_diameter`), or what
        :func:`~napari_dmqpm.inference.resolve_scale` raises.
    """
    if config.diameter_px == AUTO_DIAMETER:
        raise ValueError("diameter_px='auto' is resolved by estimate_diameter, not here")
    scale = resolve_scale(model, config=config, pixel_size_um=pixel_size_um)
    if config.diameter_px is not None:
        return DiameterEstimate(float(config.diameter_px), "given", scale)
    trained = trained_diameter(model)
    if trained is None:
        return DiameterEstimate(None, "model", scale)
    return DiameterEstimate(trained / scale, "pixel size" if scale != 1.0 else "model", scale)


def size_model(model: LoadedModel, phase_available: bool) -> LoadedModel:
    """The model whose segmentations measure the cells of an image for ``model``.

    Every model is sized by the shipped ``SIZE_MODEL`` on the same device, when the phase is
    at hand and that model is installed: models that take the angle images, and fine-tuned or
    user-trained phase models too. Without the phase, or without the shipped model, a model
    sizes itself.

    Parameters
    ----------
    model : LoadedModel
        The model that will segment the image.
    phase_available : bool
        The image has a phase map (the phase-only size model can measure it).
    """
    from napari_dmqpm.model import read_checkpoint_config
    from napari_dmqpm.model.registry import load_model, shipped_model_dirs

    if not phase_available:
        return model
    for folder in shipped_model_dirs():
        if (folder / SIZE_MODEL / "config.json").is_file():
            if read_checkpoint_config(folder / SIZE_MODEL).get("sha256") == model.info.sha256:
                return model  # the size model itself
            return load_model(folder / SIZE_MODEL, device=model.device)
    return model


def _window(shape: tuple[int, int], scale: float, max_pixels: int) -> tuple[slice, slice]:
    """The central window of at most ``max_pixels`` pixels at the model's scale."""
    side = max(64, int(math.sqrt(max_pixels) / scale))
    cuts = []
    for n in shape:
        size = min(n, side)
        start = (n - size) // 2
        cuts.append(slice(start, start + size))
    return cuts[0], cuts[1]


def _window_pixels(density: float | None, scale: float, max_pixels: int) -> int:
    """Pixels, at the model's scale, of a window that holds about ``WINDOW_CELLS`` cells.

    ``density`` is the cells per input pixel the previous pass found (None before the first
    pass: the whole ``max_pixels``). A coarse pass that sees merged cells counts too few, so
    the window errs on the large side.
    """
    if not density:
        return max_pixels
    pixels = WINDOW_CELLS / density * scale**2
    return int(np.clip(pixels, min(MIN_WINDOW_PIXELS, max_pixels), max_pixels))


def _area(rows: slice, cols: slice) -> int:
    return (rows.stop - rows.start) * (cols.stop - cols.start)


def _needed(area: int, found: float) -> int:
    """How many cells must confirm a diameter: ``MIN_CONFIRM``, or fewer in a small window.

    ``area`` is the pass's window, in input pixels. A 96 x 96 px image holds about six cells
    of 20 px at a sparse cover; asking it for ten made every pass halve the assumed diameter
    (and upsample the image) until ``MAX_PASSES``.
    """
    holds = int(MIN_COVER * area / (math.pi / 4.0 * found**2))
    return int(np.clip(holds, MIN_CELLS, MIN_CONFIRM))


def _clamp(diameter: float, trained: float) -> float:
    """Keep the resampling ``trained / diameter`` inside ``SCALE_RANGE``."""
    return float(np.clip(diameter, trained / SCALE_RANGE[1], trained / SCALE_RANGE[0]))


@dataclass(frozen=True)
class _Pass:
    """What one pass measured: diameters (input px) and the window's area (input px)."""

    diameters: np.ndarray
    area: int

    @property
    def density(self) -> float:
        """Cells per input pixel (those away from the edge, or all when too few)."""
        return self.diameters.size / max(self.area, 1)


def _labels(
    model: DMQPMNet | LoadedModel,
    phase: np.ndarray | None,
    angles: np.ndarray | None,
    config: InferenceConfig,
    postprocess: PostprocessConfig,
    pixel_size_um: float | None,
    scale: float,
) -> tuple[np.ndarray, float]:
    """One pass's labels and their pixels per input pixel.

    Below the model's scale (``scale < 1``, cells larger than trained) the labels come at the
    model's scale: the network sees the same downsampled window as
    :func:`predict_probabilities` would give it, but its maps are not resampled back up and
    post-processed at the input's size, which cost more than the network at coarse scales.
    """
    if scale >= MODEL_SCALE_BELOW:
        probabilities = predict_probabilities(
            model, angles=angles, phase=phase, config=config, pixel_size_um=pixel_size_um
        )
        return probabilities_to_labels(probabilities, config=postprocess), 1.0
    source = phase if angles is None else angles
    assert source is not None  # the callers pass angles, phase or both
    rows, cols = np.shape(source)[-2:]
    target = (max(1, int(round(rows * scale))), max(1, int(round(cols * scale))))
    if phase is not None and config.phase_offset:  # referenced before resampling, as there
        phase = (phase - np.float32(background_level(phase))).astype(np.float32, copy=False)
    phase = None if phase is None else resize(phase[None], target)[0]
    angles = None if angles is None else resize(angles, target)
    at_model = config.replace(diameter_px=trained_diameter(model), phase_offset=False)
    probabilities = predict_probabilities(model, angles=angles, phase=phase, config=at_model)
    labels = probabilities_to_labels(probabilities, config=postprocess)
    return labels, math.sqrt(target[0] * target[1] / (rows * cols))


def _measure(
    model: DMQPMNet | LoadedModel,
    read: WindowReader,
    shape: tuple[int, int],
    config: InferenceConfig,
    postprocess: PostprocessConfig,
    pixel_size_um: float | None,
    max_pixels: int,
) -> _Pass:
    """Diameters (input px) of the cells one pass finds in the central window."""
    scale = resolve_scale(model, config=config, pixel_size_um=pixel_size_um)
    rows, cols = _window(shape, scale, max_pixels)
    phase, angles = read(rows, cols)
    inputs = model.network.config.inputs if isinstance(model, LoadedModel) else model.config.inputs
    phase = phase if inputs in ("both", "phase") else None
    angles = angles if inputs in ("both", "angles") else None
    labels, factor = _labels(model, phase, angles, config, postprocess, pixel_size_um, scale)
    inner = cell_diameters(labels)
    diameters = inner if inner.size >= MIN_CELLS else cell_diameters(labels, exclude_border=False)
    return _Pass(diameters / factor, _area(rows, cols))


def estimate_diameter(
    model: DMQPMNet | LoadedModel,
    *,
    angles: np.ndarray | None = None,
    phase: np.ndarray | None = None,
    config: InferenceConfig | None = None,
    postprocess: PostprocessConfig | None = None,
    pixel_size_um: float | None = None,
    start_diameter_px: float | None = None,
    should_stop: StopCallback | None = None,
    max_pixels: int = ESTIMATE_PIXELS,
) -> DiameterEstimate:
    """Estimate the typical cell diameter of one frame with the model itself.

    Parameters
    ----------
    model : LoadedModel or DMQPMNet
        A model that states its trained ``cell_diameter_px`` (every shipped one); a bare
        network cannot be rescaled by size, so the result says "model" and is not resampled.
    angles : ndarray of shape (4, M, N), optional
        Raw intensities, when the model takes them.
    phase : ndarray of shape (M, N), optional
        Phase in radians, when the model takes it.
    config : InferenceConfig, optional
        Tiling, device and mixed precision of the passes (``diameter_px`` and ``tta`` are
        ignored: passes run without test-time augmentation).
    postprocess : PostprocessConfig, optional
        Thresholds that turn a pass into cells (the checkpoint's, from
        :func:`~napari_dmqpm.inference.default_postprocess`, when None).
    pixel_size_um : float, optional
        The frame's pixel size (passed on to the passes; the estimate does not need it).
    start_diameter_px : float, optional
        Start the iteration here (e.g. the previous frame's estimate) instead of at
        ``START_FACTOR`` times the trained diameter.
    should_stop : callable, optional
        Polled between passes; True raises :class:`~napari_dmqpm.inference.Cancelled`.
    max_pixels : int
        Pixels, at the model's scale, of the central window each pass segments.

    Returns
    -------
    DiameterEstimate
        ``source="estimated"``. With no cells found, the starting diameter with
        ``n_cells=0`` and ``converged=False``.

    Examples
    --------
    >>> from napari_dmqpm.model.registry import load_model
    >>> from napari_dmqpm.simulation import SimulationConfig, simulate_field
    >>> field = simulate_field(SimulationConfig(shape=(256, 256), density="dense"), rng=1)
    >>> estimate = estimate_diameter(load_model("phase-only", device="cpu"), phase=field.phase)
    >>> 20 < estimate.diameter_px < 36, estimate.converged
    (True, True)
    """
    from .segment import default_postprocess  # segment builds on this module

    config = (config or InferenceConfig()).replace(tta=False)
    postprocess = postprocess or default_postprocess(model)
    trained = trained_diameter(model)
    if trained is None or not isinstance(model, LoadedModel):  # (a bare network states none)
        return resolve_diameter(model, config=config.replace(diameter_px=None))
    source = phase if angles is None else angles
    if source is None:
        raise ValueError("estimate_diameter needs angles or phase; got neither")
    shape = tuple(np.shape(source)[-2:])

    def read(rows: slice, cols: slice) -> tuple[np.ndarray | None, np.ndarray | None]:
        cut_phase = None if phase is None else np.asarray(phase)[rows, cols]
        return cut_phase, None if angles is None else np.asarray(angles)[:, rows, cols]

    return estimate_from_reader(
        model, read, shape, config=config, postprocess=postprocess, pixel_size_um=pixel_size_um,
        start_diameter_px=start_diameter_px, should_stop=should_stop, max_pixels=max_pixels,
    )  # fmt: skip


def estimate_from_reader(
    model: LoadedModel,
    read: WindowReader,
    shape: tuple[int, int],
    *,
    config: InferenceConfig,
    postprocess: PostprocessConfig,
    pixel_size_um: float | None,
    start_diameter_px: float | None = None,
    should_stop: StopCallback | None = None,
    max_pixels: int = ESTIMATE_PIXELS,
) -> DiameterEstimate:
    """:func:`estimate_diameter` on a frame read window by window (lazy, huge frames).

    ``read`` returns the phase whenever the frame has one, whatever ``model`` takes: a model
    that takes the angle images is sized by :func:`size_model`.

    Parameters
    ----------
    model : LoadedModel
        The model that will segment the frame.
    read : callable
        ``read(rows, cols)`` returns the ``(phase, angles)`` of a window (either may be None).

    shape : (int, int)
        Rows and columns of the frame.

    config : InferenceConfig
        The inference options.
    postprocess : PostprocessConfig
        The post-processing of the passes.
    pixel_size_um : float or None
        The frame's pixel size, µm.
    start_diameter_px : float, optional
        Start the iteration here (default: from the trained diameter).
    should_stop : callable returning bool, optional
        Polled between passes.
    max_pixels : int
        Pixels, at the model's scale, of the window each pass segments.
    """
    probe_phase, _ = read(slice(0, 1), slice(0, 1))
    sizer = size_model(model, probe_phase is not None)
    if sizer is not model:  # its post-processing, not the sized model's
        from .segment import default_postprocess

        postprocess = default_postprocess(sizer)
    target = model.info.cell_diameter_px
    trained = sizer.info.cell_diameter_px
    # estimate_diameter asks models that state their diameter; so does size_model's
    assert target is not None and trained is not None
    model = sizer
    if start_diameter_px is None:
        start_diameter_px = max(trained, min(START_FACTOR * trained, min(shape) / 8.0))
    assumed = _clamp(float(start_diameter_px), trained)
    few: tuple[float, np.ndarray] | None = None  # a fixed point with too few cells
    history: list[tuple[float, float, np.ndarray]] = []  # (assumed, found, diameters) per pass
    density = None  # cells per input pixel the last pass found: sizes the next window
    for passes in range(1, MAX_PASSES + 1):
        if should_stop is not None and should_stop():
            raise Cancelled("stopped while estimating the cell diameter")
        pass_config = config.replace(diameter_px=assumed)
        window = _window_pixels(density, trained / assumed, max_pixels)
        seen = _measure(model, read, shape, pass_config, postprocess, pixel_size_um, window)
        diameters = seen.diameters
        if diameters.size == 0:  # cells too small to see at this scale: look closer
            assumed = _clamp(assumed / 2.0, trained)
            continue
        density = max(density or 0.0, seen.density)
        found = _clamp(float(np.median(diameters)), trained)
        same = _seen_before(history, assumed, found, diameters)
        history.append((assumed, found, diameters))
        agrees = abs(found / assumed - 1.0) <= DIAMETER_TOLERANCE
        if few is not None and abs(found / few[0] - 1.0) <= DIAMETER_TOLERANCE:
            # looking closer found the same cells, not smaller ones: the few were right
            return _estimate(few[0], target, few[1], passes, converged=True)
        needed = _needed(seen.area, found)
        if found > MERGED_FACTOR * assumed or diameters.size < needed:
            if same is not None:  # a few large cells (a small field), seen at two scales
                return _estimate(same[0], target, same[1], passes, converged=True)
            few = (found, diameters) if agrees and diameters.size < needed else None
            assumed = _clamp(assumed / 2.0, trained)  # merged clumps, or too few to trust
            continue
        if agrees:
            return _estimate(found, target, diameters, passes, converged=True)
        assumed = _clamp(max(found, assumed / 2.0), trained)
    if not history:
        start = _clamp(float(start_diameter_px), trained)
        return DiameterEstimate(start, "estimated", target / start, 0, MAX_PASSES, False)
    last_two = [entry[1] for entry in history[-2:]]  # the last two passes' diameters
    final = math.sqrt(last_two[0] * last_two[-1])
    return _estimate(final, target, history[-1][2], MAX_PASSES, converged=False)


def _seen_before(
    history: list[tuple[float, float, np.ndarray]],
    assumed: float,
    found: float,
    diameters: np.ndarray,
) -> tuple[float, np.ndarray] | None:
    """The diameter (and cells) two passes at scales ``SCALE_STEP`` apart both measured.

    Before this rule, a small field of a few large cells (5 cells of 39 px in 192 x 192) was
    taken for merged clumps at every pass, looked at ever closer, and sized by one speck of
    1.4 px; the passes at 24 and 12 px had both measured 40 px from the same 5 cells.
    """
    if diameters.size < MIN_AGREEING:
        return None
    for earlier_assumed, earlier_found, earlier in history:
        apart = max(assumed, earlier_assumed) / min(assumed, earlier_assumed) >= SCALE_STEP
        same = abs(found / earlier_found - 1.0) <= DIAMETER_TOLERANCE
        if apart and same and earlier.size >= MIN_AGREEING:
            cells = earlier if earlier.size >= diameters.size else diameters
            return math.sqrt(found * earlier_found), cells
    return None


def _estimate(
    diameter: float, trained: float, diameters: np.ndarray, passes: int, *, converged: bool
) -> DiameterEstimate:
    low, high = np.percentile(diameters, [10, 90])
    diameter = _clamp(diameter, trained)  # the sized model's range may differ a little
    return DiameterEstimate(
        diameter_px=float(diameter),
        source="estimated",
        scale=trained / diameter,
        n_cells=int(diameters.size),
        passes=passes,
        converged=converged,
        p10_p90=(float(low), float(high)),
    )
