"""Parameters of inference: how the network is run, and how its output becomes labels.

Both configs are frozen, keyword-only dataclasses that round-trip through JSON
(``InferenceConfig.from_dict(c.to_dict()) == c``) and check their values in ``__post_init__``.
:class:`InferenceConfig` is chosen by the user (tile size, TTA, device, cell diameter);
:class:`PostprocessConfig` is tuned on validation data and travels with the weights: it is read
from the ``postprocessing`` dict of a checkpoint's ``config.json``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from napari_dmqpm._config import config_from_dict, config_to_dict

AMP_CHOICES = ("auto", "off", "bfloat16", "float16")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
#: Engines that can run the network (``InferenceConfig.backend``).
BACKEND_CHOICES = ("auto", "torch", "onnxruntime", "openvino")
SEED_SOURCES = ("auto", "interior", "distance", "mean")
#: ``InferenceConfig.diameter_px`` value that asks for the estimated cell diameter.
AUTO_DIAMETER = "auto"
#: The one default tile overlap, of ``InferenceConfig`` and of the tiler
#: (:func:`~napari_dmqpm.inference.tiling.plan_tiles`, ``predict_tiled``).
DEFAULT_OVERLAP = 0.25


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {name}={value!r}")


def _check_number(name: str, value: Any, low: float, high: float, *, open_high=False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and low <= value and (value < high if open_high else value <= high)
    if not ok:
        bracket = ")" if open_high else "]"
        raise ValueError(
            f"{name} must be a number in [{low}, {high}{bracket}; got {name}={value!r}"
        )


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {name}={value!r}")


@dataclass(frozen=True, kw_only=True)
class InferenceConfig:
    """How the network is run over an image.

    Parameters
    ----------
    tile_size : int
        Side of the square tiles in pixels (at the model's scale, after any resampling). Must
        be a multiple of the model's ``required_divisor`` (checked at prediction time). An
        image smaller than a tile is padded by reflection to the next multiple of the divisor.
    overlap : float
        Fraction of a tile shared with its neighbour, in [0, 1). The default 0.25 (nnU-Net
        uses 0.5) halves the network work of a tiled frame: on three simulated 2048² fields
        (medium, dense, confluent) it gave the same Dice and F1 within 0.001 as 0.5 for both
        shipped models, in 0.53x the time for ``dmqpm-default`` (docs/inference.md).
    whole_frame_px : int
        A frame of at most this many pixels (at the model's scale) is run as one tile padded
        to the divisor, whatever ``tile_size``: a 1224 x 1024 camera frame then costs 1.3 MP
        of network work instead of the 2.4 MP of nine overlapping 512² tiles, for the same
        accuracy (docs/inference.md). Larger frames are tiled, so memory stays bounded; 0
        always tiles.
    batch_size : int or None
        Tiles per forward pass. None (default): on CUDA and MPS as many as fit in the free
        accelerator memory, at most 32; 1 on the CPU (see
        :func:`napari_dmqpm.model.device.choose_batch_size`). A number is used as given on
        the CPU and as an upper bound on an accelerator. A batch that runs out of memory is
        halved and the same tiles are run again, down to one tile.
    tta : bool
        Test-time augmentation: average over the identity and the three mirror flips
        (rows, columns, both); 4x the compute.
    device : {"auto", "cpu", "cuda", "mps"} or "cuda:<index>"
        Where to load a model given by name or path (``auto``: CUDA, then MPS, then CPU). A
        model object passed in is used on its own device.
    diameter_px : "auto", float or None
        Typical cell diameter in the input, in pixels. The input is resampled so that cells
        have the diameter the model was trained at. ``"auto"`` (default): estimated on each
        image by the model itself (:func:`~napari_dmqpm.inference.estimate_diameter`; on the
        first frame of a time-lapse, re-checked every ``recheck_every`` frames). A number is
        used as given. None: no resampling by size (only by pixel size, see
        ``use_pixel_size``). A model that states no trained diameter is never resampled by
        size.
    recheck_every : int
        With ``diameter_px="auto"``, frames between re-estimates in a time-lapse (the
        estimate changes only when a re-check differs by more than 10 %); 0 estimates on the
        first frame only.
    use_pixel_size : bool
        When the input's pixel size is known and the checkpoint states the pixel size it was
        trained at (``pixel_size_um``), resample by their ratio: the final scale when
        ``diameter_px`` is None, the starting one of the estimate when it is "auto".
    amp : {"auto", "off", "bfloat16", "float16"}
        Mixed precision on CUDA (``auto``: bfloat16 where native, else float16; full precision
        on CPU and MPS).
    channels_last : bool
        Use the channels-last memory format on CUDA (faster convolutions on tensor cores).
    torch_compile : bool
        Run the network through ``torch.compile`` (off by default: the first call of each
        tile shape compiles for tens of seconds; it pays off for long time-lapses on a GPU).
        Where compiling fails the network runs eagerly, with a ``DeviceFallbackWarning``.
    cpu_fallback : bool
        When even one tile does not fit in the accelerator's memory, finish the frame on the
        CPU (with a ``DeviceFallbackWarning``) instead of raising ``OutOfDeviceMemory``.
    phase_offset : bool
        Subtract the frame's background level (the lowest significant peak of its phase
        histogram, :func:`napari_dmqpm.phase.background_level`) from the phase the network
        sees, so a map whose background another instrument left a few tenths of a radian off
        zero, or a featureless frame at any constant phase, is segmented as if it sat at 0.
        The measurements use the phase as given.
    backend : {"auto", "torch", "onnxruntime", "openvino"}
        The engine that runs the network (:mod:`napari_dmqpm.inference.backends`). ``auto``
        (default): on a CPU, OpenVINO when it is installed, else ONNX Runtime, else torch, for
        a model loaded from a checkpoint (a network only in memory runs on torch); on CUDA and
        MPS, torch. The runtimes come with ``pip install 'napari-dmqpm[fast]'``; naming one
        that is not installed is an error that gives the pip command. A checkpoint is exported
        to ONNX once (cached in the user models folder under its weights' sha256) and checked
        against torch on a simulated reference field before its first use; where its labels
        differ, the model runs on torch with a ``BackendWarning``. OpenVINO's bfloat16 is used
        only where the CPU has it and it passes the same check. What ran is recorded in
        ``Probabilities.backend`` and ``.precision``.
    overlap_frames : bool
        In a time-lapse, post-process and measure frame t on a worker thread while the
        network runs on frame t+1 (its reading and phase retrieval included), at most two
        frames in flight (:mod:`napari_dmqpm.inference.pipeline`). The results are the same
        as with False, which segments the frames strictly one after the other. A single
        frame, and frames cut into strips, never overlap.

    Examples
    --------
    >>> config = InferenceConfig(tile_size=256, tta=True)
    >>> InferenceConfig.from_dict(config.to_dict()) == config
    True
    """

    tile_size: int = 512
    overlap: float = DEFAULT_OVERLAP
    whole_frame_px: int = 1_600_000
    batch_size: int | None = None
    tta: bool = False
    device: str = "auto"
    diameter_px: float | str | None = AUTO_DIAMETER
    recheck_every: int = 10
    use_pixel_size: bool = True
    amp: str = "auto"
    channels_last: bool = True
    torch_compile: bool = False
    cpu_fallback: bool = True
    phase_offset: bool = True
    backend: str = "auto"
    overlap_frames: bool = True

    def __post_init__(self) -> None:
        _check_int("tile_size", self.tile_size, 16)
        _check_number("overlap", self.overlap, 0.0, 1.0, open_high=True)
        _check_int("whole_frame_px", self.whole_frame_px, 0)
        if self.batch_size is not None:
            _check_int("batch_size", self.batch_size, 1)
        for name in (
            "tta",
            "use_pixel_size",
            "channels_last",
            "torch_compile",
            "cpu_fallback",
            "overlap_frames",
        ):
            _check_bool(name, getattr(self, name))
        device = self.device.strip().lower() if isinstance(self.device, str) else None
        kind, _, index = (device or "").partition(":")
        if kind not in DEVICE_CHOICES or (index and (kind != "cuda" or not index.isdigit())):
            raise ValueError(
                f"device must be one of {DEVICE_CHOICES} or 'cuda:<index>'; got {self.device!r}"
            )
        _check_int("recheck_every", self.recheck_every, 0)
        if isinstance(self.diameter_px, str):
            if self.diameter_px != AUTO_DIAMETER:
                raise ValueError(
                    f"diameter_px must be 'auto', a number of pixels or None; "
                    f"got diameter_px={self.diameter_px!r}"
                )
        elif self.diameter_px is not None:
            _check_number("diameter_px", self.diameter_px, 1.0, 10_000.0)
        if self.amp not in AMP_CHOICES:
            raise ValueError(f"amp must be one of {AMP_CHOICES}; got amp={self.amp!r}")
        if self.backend not in BACKEND_CHOICES:
            raise ValueError(
                f"backend must be one of {BACKEND_CHOICES}; got backend={self.backend!r}"
            )

    def frame_tile_size(self, shape: tuple[int, int], divisor: int = 1) -> int:
        """The tile side used for a frame of ``shape`` (rows, cols) at the model's scale.

        Parameters
        ----------
        shape : (int, int)
            Rows and columns of the frame.
        divisor : int
            The network's ``required_divisor``.

        Examples
        --------
        >>> config = InferenceConfig()
        >>> config.frame_tile_size((1024, 1224), 16), config.frame_tile_size((4096, 4096), 16)
        (1232, 512)
        """
        if self.tile_size % divisor:
            raise ValueError(
                f"tile_size must be a multiple of the model's divisor {divisor}; "
                f"got tile_size={self.tile_size}"
            )
        rows, cols = shape
        if rows * cols > self.whole_frame_px:
            return self.tile_size
        return max(self.tile_size, -(-max(rows, cols) // divisor) * divisor)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; inverse of :meth:`from_dict`."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceConfig:
        """Build a config from :meth:`to_dict` output; unknown keys raise ``ValueError``.

        Parameters
        ----------
        data : dict
            Field name -> JSON value, as :meth:`to_dict` writes.
        """
        return config_from_dict(cls, data)

    def replace(self, **changes: Any) -> InferenceConfig:
        """A copy with some fields changed (validated again).

        Parameters
        ----------
        **changes
            New values of fields, by name.
        """
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class PostprocessConfig:
    """How per-pixel probabilities become one label per cell (a seeded watershed).

    Pixel quantities are at the model's trained scale: when the input was resampled by a
    factor ``s`` (model pixels per input pixel), lengths are divided by ``s`` and areas by
    ``s**2`` before use (see :func:`~napari_dmqpm.inference.probabilities_to_labels`).

    Parameters
    ----------
    foreground_threshold : float
        A pixel is a cell pixel when ``1 - p(background)`` exceeds this, in (0, 1).
    seed_source : {"auto", "interior", "distance", "mean"}
        The seed score: the interior probability, the predicted normalized distance (1 at
        each cell's centre), or their mean. ``auto`` is ``mean`` when the model has a
        distance head and ``interior`` otherwise.
    seed_threshold : float
        Seeds are connected regions where the (smoothed) seed score exceeds this, in (0, 1).
    seed_h : float
        h-maxima height in [0, 1): when > 0, the seeds are the regional maxima of the seed
        score, inside the thresholded regions, whose dynamic is at least ``seed_h``; this
        separates cells whose seed regions touch but whose score dips by ``seed_h`` between
        them. 0 uses the thresholded regions themselves.
    smooth_sigma_px : float
        Gaussian smoothing of the seed score before seeding, in pixels (0: none).
    min_seed_area_px : int
        Seed regions smaller than this are dropped.
    min_cell_area_px : int
        Cells smaller than this are removed (set to background).
    fill_holes : bool
        Fill background regions enclosed by a single cell with that cell (gaps enclosed by
        several cells, as in confluent layers, are kept).
    keep_unseeded : bool
        A foreground region that no seed reaches becomes a cell of its own (if large enough)
        instead of background.

    Examples
    --------
    >>> config = PostprocessConfig(seed_threshold=0.6)
    >>> PostprocessConfig.from_dict(config.to_dict()) == config
    True
    """

    foreground_threshold: float = 0.5
    seed_source: str = "auto"
    seed_threshold: float = 0.5
    seed_h: float = 0.1
    smooth_sigma_px: float = 1.0
    min_seed_area_px: int = 4
    min_cell_area_px: int = 30
    fill_holes: bool = True
    keep_unseeded: bool = True

    def __post_init__(self) -> None:
        for name in ("foreground_threshold", "seed_threshold"):
            _check_number(name, getattr(self, name), 0.0, 1.0, open_high=True)
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be in (0, 1); got {name}={getattr(self, name)!r}")
        if self.seed_source not in SEED_SOURCES:
            raise ValueError(
                f"seed_source must be one of {SEED_SOURCES}; got seed_source={self.seed_source!r}"
            )
        _check_number("seed_h", self.seed_h, 0.0, 1.0, open_high=True)
        _check_number("smooth_sigma_px", self.smooth_sigma_px, 0.0, 100.0)
        _check_int("min_seed_area_px", self.min_seed_area_px, 0)
        _check_int("min_cell_area_px", self.min_cell_area_px, 0)
        _check_bool("fill_holes", self.fill_holes)
        _check_bool("keep_unseeded", self.keep_unseeded)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; inverse of :meth:`from_dict`."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PostprocessConfig:
        """Build a config from a dict (e.g. a checkpoint's ``postprocessing``).

        Missing keys take their defaults; unknown keys raise ``ValueError``.

        Parameters
        ----------
        data : dict
            Field name -> JSON value.
        """
        return config_from_dict(cls, data)

    def replace(self, **changes: Any) -> PostprocessConfig:
        """A copy with some fields changed (validated again).

        Parameters
        ----------
        **changes
            New values of fields, by name.
        """
        return dataclasses.replace(self, **changes)
