"""Per-pixel probabilities for one frame: model inputs, resampling, tiled prediction, heads.

The network normalizes its inputs itself (the statistics travel in its config), so callers
pass raw intensities and phase in radians. When the cells in the input are not the size the
model was trained at, the frame is resampled bilinearly to the trained scale first and the
probabilities are resampled back, so they always come at the input's size.

On an accelerator the tiles run in batches sized to its free memory, under bf16 (or fp16)
autocast on CUDA; a batch that runs out of memory is halved and run again, down to one tile,
and when even one tile does not fit the frame is finished on the CPU with a
:class:`DeviceFallbackWarning` (the result then equals a CPU run).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from napari_dmqpm.model import DMQPMNet, autocast_dtype
from napari_dmqpm.model.device import (
    DeviceFallbackWarning,
    DeviceMemoryError,
    ShrinkingBatch,
    choose_batch_size,
    compiled_or_eager,
    cpu_copy,
)
from napari_dmqpm.model.registry import LoadedModel
from napari_dmqpm.phase import background_level

from .backends import Engine, engine_for
from .config import AUTO_DIAMETER, InferenceConfig
from .tiling import (
    OutOfDeviceMemory,
    ProgressCallback,
    StopCallback,
    TilePlan,
    plan_tiles,
    predict_tiled,
)

#: Allowed resampling factors (model pixels per input pixel).
SCALE_RANGE = (1.0 / 16.0, 16.0)


@dataclass(frozen=True)
class Probabilities:
    """The network's per-pixel output for one frame, at the input's size.

    Attributes
    ----------
    classes : ndarray of shape (K, M, N), float32
        Class probabilities summing to 1 over ``K`` (softmax), named by ``class_names``;
        usually background, cell interior and cell boundary.
    class_names : tuple of str
        The meaning of each channel of ``classes``.
    distance : ndarray of shape (M, N), float32, or None
        Predicted normalized distance to the cell border (1 at each cell's centre, 0 outside)
        for models with a distance head.
    scale : float
        Model pixels per input pixel used for the prediction (1: no resampling);
        post-processing converts its pixel parameters with it.
    diameter_px : float or None
        The cell diameter, in input pixels, that was resampled to the model's trained one
        (estimated or given); None when not resampled by size.
    backend : {"torch", "onnxruntime", "openvino"}
        What ran the network (see :mod:`napari_dmqpm.inference.backends`).
    precision : {"float32", "bfloat16"}
        The arithmetic it ran at (CUDA autocast aside: ``InferenceConfig.amp``).
    """

    classes: np.ndarray
    class_names: tuple[str, ...]
    distance: np.ndarray | None = None
    scale: float = 1.0
    diameter_px: float | None = None
    backend: str = "torch"
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.classes.ndim != 3 or self.classes.shape[0] != len(self.class_names):
            raise ValueError(
                f"classes must have shape (K={len(self.class_names)}, M, N) for class_names="
                f"{self.class_names}; got classes.shape={self.classes.shape}"
            )
        if self.distance is not None and self.distance.shape != self.shape:
            raise ValueError(
                f"distance must have shape {self.shape}; got distance.shape={self.distance.shape}"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """``(M, N)``."""
        return (int(self.classes.shape[1]), int(self.classes.shape[2]))

    def channel(self, name: str) -> np.ndarray:
        """The probability map of the class called ``name``.

        Parameters
        ----------
        name : str
            A class name (``class_names``).
        """
        if name not in self.class_names:
            raise KeyError(f"no class {name!r}; the classes are {self.class_names}")
        return self.classes[self.class_names.index(name)]

    @property
    def foreground(self) -> np.ndarray:
        """P(cell) = 1 - P(background), shape (M, N)."""
        if "background" in self.class_names:
            return 1.0 - self.channel("background")
        return self.channel("foreground")

    @property
    def interior(self) -> np.ndarray:
        """P(cell interior), shape (M, N); the foreground where there is no interior class."""
        return self.channel("interior") if "interior" in self.class_names else self.foreground

    def stacked(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """All maps as one (C, M, N) float32 array (classes, then distance) with their names."""
        if self.distance is None:
            return self.classes, self.class_names
        return np.concatenate([self.classes, self.distance[None]]), (*self.class_names, "distance")


def _is_accelerator(device: torch.device) -> bool:
    return device.type != "cpu"


def _amp_dtype(config: InferenceConfig, device: torch.device) -> torch.dtype | None:
    if config.amp == "off" or device.type != "cuda":
        return None
    return autocast_dtype(device) if config.amp == "auto" else getattr(torch, config.amp)


def _predict_on(
    network: DMQPMNet,
    device: torch.device,
    *,
    layout: _Layout,
    inputs: list[np.ndarray | None],
    config: InferenceConfig,
    progress: ProgressCallback | None,
    should_stop: StopCallback | None,
    engine: Engine | None = None,
) -> np.ndarray:
    """Blended (n_outputs, M, N) activated outputs of ``network`` (on ``device``).

    On the CPU, ``engine`` (from :func:`~napari_dmqpm.inference.backends.engine_for`) runs the
    tiles in place of ``network`` when it is not torch.
    """
    shape = next(a for a in inputs if a is not None).shape[1:]
    divisor = network.required_divisor
    plan = _plan(shape, divisor, config)
    tile_size = config.frame_tile_size(shape, divisor)
    size = choose_batch_size(network.config, plan.tile, device=device, requested=config.batch_size)
    if engine is not None and engine.backend != "torch" and device.type == "cpu":
        runner = engine.network
    else:
        runner = compiled_or_eager(network) if config.torch_compile else network
    forward = _make_forward(runner, layout)
    return predict_tiled(
        ShrinkingBatch(forward, device, size),
        inputs,
        n_outputs=layout.n_outputs,
        tile_size=tile_size,
        overlap=config.overlap,
        divisor=divisor,
        batch_size=size,
        tta=config.tta,
        device=device,
        amp_dtype=_amp_dtype(config, device),
        channels_last=config.channels_last,
        progress=progress,
        should_stop=should_stop,
    )


def _network(model: DMQPMNet | LoadedModel) -> DMQPMNet:
    network = model.network if isinstance(model, LoadedModel) else model
    if not isinstance(network, torch.nn.Module) or not hasattr(network, "config"):
        raise TypeError(f"model must be a DMQPMNet or a LoadedModel; got {type(model).__name__}")
    return network


@dataclass(frozen=True)
class _Layout:
    """Where the class and distance outputs sit in the logits, and how to activate them."""

    classes: slice
    classes_kind: str
    class_names: tuple[str, ...]
    distance: int | None
    distance_kind: str

    @property
    def n_outputs(self) -> int:
        return len(self.class_names) + (self.distance is not None)


def _layout(network: DMQPMNet) -> _Layout:
    heads, start, where = network.config.heads, 0, {}
    for head in heads:
        where[head.name] = (slice(start, start + len(head.channels)), head)
        start += len(head.channels)
    candidates = [h for h in heads if h.name == "classes" and h.kind == "softmax"]
    candidates += [h for h in heads if h.kind == "softmax"]
    candidates += [h for h in heads if h.kind == "sigmoid" and h.channels == ("foreground",)]
    if not candidates:
        raise ValueError(
            "the model needs a softmax head (or a sigmoid 'foreground' head); got heads "
            f"{[(h.name, h.kind, h.channels) for h in heads]}"
        )
    classes = candidates[0]
    distance = where.get("distance")
    if distance is not None and len(distance[1].channels) != 1:
        raise ValueError(f"a distance head must have one channel; got {distance[1].channels}")
    return _Layout(
        classes=where[classes.name][0],
        classes_kind=classes.kind,
        class_names=classes.channels if classes.kind == "softmax" else ("background", "foreground"),
        distance=None if distance is None else distance[0].start,
        distance_kind="" if distance is None else distance[1].kind,
    )


def _make_forward(network: Callable[..., torch.Tensor], layout: _Layout):
    def forward(angles: torch.Tensor | None, phase: torch.Tensor | None) -> torch.Tensor:
        output = network(angles, phase)
        if isinstance(output, (list, tuple)):
            output = output[0]
        output = output.float()
        logits = output[:, layout.classes]
        if layout.classes_kind == "softmax":
            parts = [torch.softmax(logits, dim=1)]
        else:
            foreground = torch.sigmoid(logits)
            parts = [1.0 - foreground, foreground]
        if layout.distance is not None:
            values = output[:, layout.distance : layout.distance + 1]
            parts.append(torch.sigmoid(values) if layout.distance_kind == "sigmoid" else values)
        return torch.cat(parts, dim=1)

    return forward


def resolve_scale(
    model: DMQPMNet | LoadedModel, *, config: InferenceConfig, pixel_size_um: float | None = None
) -> float:
    """Resampling factor (model pixels per input pixel) for ``config`` and this model.

    ``config.diameter_px`` gives ``cell_diameter_px / diameter_px`` (the model's trained
    diameter); else, with ``config.use_pixel_size``, a known ``pixel_size_um`` and a checkpoint
    that states its ``pixel_size_um``, their ratio; else 1.

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
        ``diameter_px`` was given but the model states no trained cell diameter, or the factor
        is outside ``SCALE_RANGE``.
    """
    info = model.info if isinstance(model, LoadedModel) else None
    scale = 1.0
    if config.diameter_px == AUTO_DIAMETER:
        if info is not None and info.cell_diameter_px is not None:
            raise ValueError(
                "diameter_px='auto' needs an estimate first: call estimate_diameter (which "
                "predict_probabilities and segment_acquisition do), or give diameter_px"
            )
        config = config.replace(diameter_px=None)  # a model without a trained diameter
    if config.diameter_px is not None:
        if info is None or info.cell_diameter_px is None:
            name = "this model" if info is None else f"model {info.name!r}"
            raise ValueError(
                f"diameter_px={config.diameter_px} needs the cell diameter the model was trained "
                f"at, but {name} does not state one (config.json 'cell_diameter_px'); load it "
                "through the registry, or leave diameter_px unset"
            )
        scale = info.cell_diameter_px / float(config.diameter_px)  # a number here, not 'auto'
    elif config.use_pixel_size and pixel_size_um and info is not None and info.pixel_size_um:
        scale = pixel_size_um / info.pixel_size_um
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        raise ValueError(
            f"resampling by {scale:.3g} (model pixels per input pixel) is outside {SCALE_RANGE}; "
            f"check diameter_px={config.diameter_px} and pixel_size_um={pixel_size_um}"
        )
    return float(scale)


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling of a (C, M, N) array to (C, *shape), antialiased when shrinking.

    Returns a float32 array (the input itself, as float32, when the shape already matches).

    Parameters
    ----------
    image : ndarray of shape (C, M, N)
        The channels to resample.
    shape : (int, int)
        The new rows and columns.
    """
    image = np.asarray(image, dtype=np.float32)
    if tuple(image.shape[1:]) == tuple(shape):
        return image
    shrink = shape[0] < image.shape[1] or shape[1] < image.shape[2]
    tensor = torch.from_numpy(np.ascontiguousarray(image))[None]
    with torch.inference_mode():
        out = F.interpolate(
            tensor, size=tuple(shape), mode="bilinear", align_corners=False, antialias=shrink
        )
    return out[0].numpy()


def _model_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    return tuple(max(1, int(round(n * scale))) for n in shape)  # type: ignore[return-value]


def _plan(shape: tuple[int, int], divisor: int, config: InferenceConfig) -> TilePlan:
    """The tiles of a frame of ``shape`` at the model's scale."""
    tile_size = config.frame_tile_size(shape, divisor)
    return plan_tiles(shape, tile_size=tile_size, overlap=config.overlap, divisor=divisor)


def frame_plan(
    model: DMQPMNet | LoadedModel,
    shape: tuple[int, int],
    *,
    config: InferenceConfig,
    pixel_size_um: float | None = None,
) -> TilePlan:
    """The tiles the network runs on for one frame of ``shape`` (at the model's scale).

    Parameters
    ----------
    model : DMQPMNet or LoadedModel
        The network, or a registry model (which states its trained cell diameter).

    shape : (int, int)
        Rows and columns of the frame.

    config : InferenceConfig
        The inference options.

    pixel_size_um : float, optional
        The image's pixel size, µm (used with ``config.use_pixel_size``).
    """
    scale = resolve_scale(model, config=config, pixel_size_um=pixel_size_um)
    return _plan(_model_shape(shape, scale), _network(model).required_divisor, config)


def count_tiles(
    model: DMQPMNet | LoadedModel,
    shape: tuple[int, int],
    *,
    config: InferenceConfig,
    pixel_size_um: float | None = None,
) -> int:
    """Tiles one frame of ``shape`` takes (the ``total`` its progress callback reports).

    Parameters
    ----------
    model : DMQPMNet or LoadedModel
        The network, or a registry model (which states its trained cell diameter).

    shape : (int, int)
        Rows and columns of the frame.

    config : InferenceConfig
        The inference options.

    pixel_size_um : float, optional
        The image's pixel size, µm (used with ``config.use_pixel_size``).
    """
    return frame_plan(model, shape, config=config, pixel_size_um=pixel_size_um).n_tiles


def _check_input(name: str, array: np.ndarray | None, shape: tuple[int, ...]) -> None:
    if array is None:
        return
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {name}.shape={array.shape}")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(
            f"{name} has {bad} NaN or infinite pixels; replace them first (the readers of "
            "napari_dmqpm.io do, with a DataWarning)"
        )


def model_inputs(
    network: DMQPMNet, angles: np.ndarray | None, phase: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The ``(angles (4, M, N), phase (1, M, N))`` the network takes, None for unused ones.

    Parameters
    ----------
    network : DMQPMNet
        The network (its ``config.inputs``).
    angles : ndarray of shape (4, M, N), optional
        Angle images.
    phase : ndarray of shape (M, N) or (1, M, N), optional
        Phase in radians.

    Raises
    ------
    ValueError
        When the network needs an input that is None (e.g. a DM-QPMNet given a phase map
        only), with the shapes of what was given.
    """
    needs = network.config.inputs
    for name, value in (("angles", angles), ("phase", phase)):
        if needs in ("both", name) and value is None:
            what = "the four angle images" if name == "angles" else "a phase map"
            raise ValueError(
                f"this model (inputs={needs!r}) needs {what}, but {name} is None; use a model "
                "that fits the input (a phase-only model for phase maps)"
            )
    return (
        np.asarray(angles) if needs in ("both", "angles") else None,
        np.asarray(phase)[None] if needs in ("both", "phase") else None,
    )


def predict_probabilities(
    model: DMQPMNet | LoadedModel,
    *,
    angles: np.ndarray | None = None,
    phase: np.ndarray | None = None,
    config: InferenceConfig | None = None,
    pixel_size_um: float | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    phase_level: float | None = None,
) -> Probabilities:
    """Class probabilities (and distance) of one frame, at the frame's size.

    Parameters
    ----------
    model : DMQPMNet or LoadedModel
        Used on its own device (``config.device`` only applies when loading by name). A
        :class:`~napari_dmqpm.model.registry.LoadedModel` also knows its trained cell diameter
        and pixel size, which resampling needs.
    angles : ndarray of shape (4, M, N), optional
        Raw intensities at 0, 45, 90, 135 degrees; needed when the model takes angles.
    phase : ndarray of shape (M, N), optional
        Phase in radians; needed when the model takes phase.
    config : InferenceConfig, optional
        Tiling, TTA, mixed precision and resampling (defaults when None). With
        ``diameter_px="auto"`` the cell diameter is estimated first
        (:func:`~napari_dmqpm.inference.estimate_diameter`).
    pixel_size_um : float, optional
        The frame's pixel size, for resampling by pixel size (see :func:`resolve_scale`).
    progress, should_stop : callable, optional
        See :func:`~napari_dmqpm.inference.tiling.predict_tiled` (counted in tiles).
    phase_level : float, optional
        With ``config.phase_offset``, the background level to subtract from ``phase`` when it
        is a window of a larger frame (the frame's, measured once); None measures it on
        ``phase`` itself.

    Returns
    -------
    Probabilities
        Float32 maps of shape (M, N); inputs are not modified.

    Raises
    ------
    ValueError
        A missing input the model needs, mismatched shapes, NaN/Inf pixels, a tile size that
        is not a multiple of the model's divisor, or an impossible resampling.
    Cancelled
        When ``should_stop()`` returned True.
    OutOfDeviceMemory
        One tile does not fit in the accelerator's memory and ``config.cpu_fallback`` is off
        (or the CPU itself ran out of memory).

    Warns
    -----
    DeviceFallbackWarning
        When the frame was finished on the CPU, or ``torch.compile`` failed.

    Notes
    -----
    On CUDA the tiles run under ``torch.inference_mode``, autocast to ``config.amp``
    (bfloat16 where native, else float16), in channels-last format, in batches of
    :func:`~napari_dmqpm.model.device.choose_batch_size` tiles. Out of memory, the batch is
    halved and the same tiles run again, down to one tile; then, with ``config.cpu_fallback``,
    the whole frame is run again on a CPU copy of the network, so the result equals a CPU run.
    """
    config = config or InferenceConfig()
    network = _network(model)
    angles_in, phase_in = model_inputs(network, angles, phase)
    given = phase_in if angles_in is None else angles_in
    assert given is not None  # model_inputs returns every input the network takes
    shape = given.shape[1:]
    _check_input("angles", angles_in, (4, *shape))
    _check_input("phase", None if phase_in is None else phase_in[0], tuple(shape))
    if phase_in is not None and config.phase_offset:
        level = background_level(phase_in) if phase_level is None else float(phase_level)
        phase_in = (phase_in - np.float32(level)).astype(np.float32, copy=False)
    if config.diameter_px == AUTO_DIAMETER and trained_diameter(model) is not None:
        from .diameter import estimate_diameter  # its passes call this function at a fixed size

        estimate = estimate_diameter(  # on the phase already referenced to its background
            model, angles=angles_in, phase=None if phase_in is None else phase_in[0],
            config=config.replace(phase_offset=False), pixel_size_um=pixel_size_um,
            should_stop=should_stop,
        )  # fmt: skip
        config = config.replace(diameter_px=estimate.diameter_px)
    scale = resolve_scale(model, config=config, pixel_size_um=pixel_size_um)
    diameter = config.diameter_px if isinstance(config.diameter_px, (int, float)) else None
    target = _model_shape(shape, scale)
    layout = _layout(network)
    device = next(network.parameters()).device
    engine = engine_for(model, network, device, config.backend)
    run = functools.partial(
        _predict_on,
        layout=layout,
        inputs=[None if a is None else resize(a, target) for a in (angles_in, phase_in)],
        config=config,
        progress=progress,
        should_stop=should_stop,
    )
    try:
        blended, failure = run(network, device, engine=engine), None
    except DeviceMemoryError as error:
        if not (config.cpu_fallback and _is_accelerator(device)):
            advice = f"; lower tile_size (now {config.tile_size}) or whole_frame_px"
            advice += " or use device='cpu'" if _is_accelerator(device) else ""
            raise OutOfDeviceMemory(f"{error}{advice}") from None
        failure = str(error)
    if failure is not None:  # outside the except block, which holds the device's tensors
        warnings.warn(
            f"{failure}; finishing this frame on the CPU, which is slower (tile_size="
            f"{config.tile_size}, whole_frame_px={config.whole_frame_px}; lower them or free "
            f"accelerator memory to stay on {device}, "
            "or set cpu_fallback=False to get an error instead)",
            DeviceFallbackWarning,
            stacklevel=2,
        )
        blended = run(cpu_copy(network), torch.device("cpu"))
    blended = resize(blended, tuple(shape))
    n_classes = len(layout.class_names)
    distance = None if layout.distance is None else np.clip(blended[n_classes], 0.0, 1.0)
    if failure is None:
        backend, precision = engine.backend, engine.precision
    else:
        backend, precision = "torch", "float32"
    return Probabilities(
        blended[:n_classes], layout.class_names, distance, scale, diameter, backend, precision
    )


def trained_diameter(model: DMQPMNet | LoadedModel) -> float | None:
    """The median cell diameter (px) the model was trained at; None if it does not say.

    Parameters
    ----------
    model : DMQPMNet or LoadedModel
        The network, or a registry model (which states its trained cell diameter).
    """
    return model.info.cell_diameter_px if isinstance(model, LoadedModel) else None
