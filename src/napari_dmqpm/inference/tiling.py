"""Sliding-window prediction with Gaussian importance blending (nnU-Net style).

An image is covered by tiles of ``tile_size`` pixels that overlap by ``overlap`` (by default
``DEFAULT_OVERLAP``, 25 %, the default of ``InferenceConfig`` too). Each tile's output is
weighted by a Gaussian centred on the tile (sigma = tile / 8), because a fully convolutional
network is least reliable near a tile's border, and the weighted outputs are summed into
preallocated float32 arrays and divided by the summed weights. Tiles are run in batches; only
one batch is ever in memory. Optional test-time augmentation averages the outputs of the three
mirror flips with the plain pass. An image smaller than a tile is padded by reflection (to a
multiple of the network's divisor) and cropped back.

References
----------
.. [1] F. Isensee et al., "nnU-Net: a self-configuring method for deep learning-based
   biomedical image segmentation", Nature Methods 18, 203-211 (2021); the sliding-window
   predictor of nnU-Net v2 (``nnunetv2/inference/sliding_window_prediction.py``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import torch

from napari_dmqpm.inference.config import DEFAULT_OVERLAP
from napari_dmqpm.model.device import DeviceMemoryError, ShrinkingBatch

#: ``progress(done, total)``: called with the number of tiles finished so far.
ProgressCallback = Callable[[int, int], None]
#: ``should_stop() -> bool``: polled before every batch; True cancels the run.
StopCallback = Callable[[], bool]

#: Mirror flips of test-time augmentation, as tensor dims of a (B, C, M, N) batch.
TTA_FLIPS: tuple[tuple[int, ...], ...] = ((), (3,), (2,), (2, 3))


class Cancelled(Exception):
    """The run was stopped by ``should_stop()`` (or by a progress callback raising it).

    Raised between two batches of tiles, so within one batch of the request; nothing the run
    would have returned or written exists.
    """


class OutOfDeviceMemory(RuntimeError):
    """The accelerator ran out of memory even with a batch of one tile.

    Lower ``tile_size``, or run on the CPU (``device="cpu"``).
    """


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one image go.

    Attributes
    ----------
    shape : (int, int)
        Rows and columns of the image.
    padded_shape : (int, int)
        Rows and columns after reflection padding (equal to ``shape`` along an axis at least
        one tile long).
    pad : (int, int)
        Padding rows and columns added before the image (the rest goes after it).
    tile : (int, int)
        Tile rows and columns (``tile_size``, or the padded length along a shorter axis).
    row_starts, col_starts : tuple of int
        Top-left corners of the tiles in the padded image.
    """

    shape: tuple[int, int]
    padded_shape: tuple[int, int]
    pad: tuple[int, int]
    tile: tuple[int, int]
    row_starts: tuple[int, ...]
    col_starts: tuple[int, ...]

    @property
    def n_tiles(self) -> int:
        """Number of tiles (one pass each; TTA does not change it)."""
        return len(self.row_starts) * len(self.col_starts)

    def windows(self) -> Iterator[tuple[slice, slice]]:
        """``(rows, cols)`` slices of each tile in the padded image, row by row."""
        for row in self.row_starts:
            for col in self.col_starts:
                yield slice(row, row + self.tile[0]), slice(col, col + self.tile[1])


def tile_starts(length: int, tile: int, overlap: float) -> tuple[int, ...]:
    """Evenly spaced tile starts covering ``[0, length)`` with at least ``overlap`` shared.

    Parameters
    ----------
    length, tile : int
        Axis length and tile length in pixels, ``tile <= length``.
    overlap : float
        Minimum fraction of a tile shared with its neighbour, in [0, 1).

    Returns
    -------
    tuple of int
        The first start is 0 and the last ``length - tile``.

    Examples
    --------
    >>> tile_starts(1224, 512, 0.5)
    (0, 237, 475, 712)
    >>> tile_starts(512, 512, 0.5)
    (0,)
    """
    if not 0 < tile <= length:
        raise ValueError(f"tile must be in (0, length={length}]; got tile={tile}")
    step = max(1, int(tile * (1.0 - overlap)))
    n_steps = math.ceil((length - tile) / step) + 1
    if n_steps == 1:
        return (0,)
    spacing = (length - tile) / (n_steps - 1)
    return tuple(int(round(i * spacing)) for i in range(n_steps))


def plan_tiles(
    shape: tuple[int, int], *, tile_size: int, overlap: float = DEFAULT_OVERLAP, divisor: int = 1
) -> TilePlan:
    """Tile layout of an image of ``shape`` (see :class:`TilePlan`).

    Parameters
    ----------
    shape : (int, int)
        Rows and columns.
    tile_size : int
        Tile side; must be a multiple of ``divisor``.
    overlap : float
        Fraction shared by neighbouring tiles, in [0, 1); default ``DEFAULT_OVERLAP`` (0.25),
        the default of :class:`~napari_dmqpm.inference.InferenceConfig` too.
    divisor : int
        The network's ``required_divisor``: tile sides and padded lengths are multiples of it.

    Examples
    --------
    >>> plan = plan_tiles((100, 1000), tile_size=256, divisor=16)
    >>> plan.padded_shape, plan.tile, plan.n_tiles
    ((112, 1000), (112, 256), 5)
    """
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (rows, cols) >= 1; got shape={tuple(shape)}")
    if tile_size < 1 or tile_size % divisor:
        raise ValueError(
            f"tile_size must be a multiple of the model's divisor {divisor}; "
            f"got tile_size={tile_size}"
        )
    padded, pad, tile, starts = [], [], [], []
    for length in shape:
        if length >= tile_size:
            padded.append(int(length))
            tile.append(tile_size)
        else:
            # at least two pixels at the deepest stage: instance norm needs more than one
            at_least = min(2 * divisor, tile_size)
            padded.append(max(-(-int(length) // divisor) * divisor, at_least))
            tile.append(padded[-1])
        pad.append((padded[-1] - length) // 2)
        starts.append(tile_starts(padded[-1], tile[-1], overlap))
    rows, cols = shape
    return TilePlan(
        (int(rows), int(cols)),
        (padded[0], padded[1]),
        (pad[0], pad[1]),
        (tile[0], tile[1]),
        *starts,
    )


def plan_strips(
    n_rows: int, n_cols: int, *, max_pixels: int, halo: int
) -> tuple[tuple[int, int, int, int], ...]:
    """Horizontal strips that cover a frame, each read with ``halo`` rows of context.

    Parameters
    ----------
    n_rows, n_cols : int
        Frame rows and columns.
    max_pixels : int
        Pixels of one strip without its context; strips have ``max_pixels // n_cols`` rows
        (at least one).
    halo : int
        Rows of context above and below each strip (clipped at the frame's edges).

    Returns
    -------
    tuple of (top, bottom, low, high)
        Strip ``k`` owns rows ``[top, bottom)`` and is read as rows ``[low, high)``. A frame
        of at most ``max_pixels`` pixels is one strip, ``(0, n_rows, 0, n_rows)``.

    Examples
    --------
    >>> plan_strips(10, 4, max_pixels=16, halo=1)
    ((0, 4, 0, 5), (4, 8, 3, 9), (8, 10, 7, 10))
    """
    if min(n_rows, n_cols, max_pixels) < 1 or halo < 0:
        raise ValueError(
            f"n_rows, n_cols and max_pixels must be >= 1 and halo >= 0; got {n_rows}, "
            f"{n_cols}, {max_pixels}, {halo}"
        )
    rows = max(1, max_pixels // n_cols)
    return tuple(
        (top, min(top + rows, n_rows), max(0, top - halo), min(n_rows, top + rows + halo))
        for top in range(0, n_rows, rows)
    )


@lru_cache(maxsize=8)
def _gaussian(shape: tuple[int, int], sigma_scale: float) -> np.ndarray:
    axes = []
    for length in shape:
        centre = (length - 1) / 2.0
        sigma = max(length * sigma_scale, 1e-6)
        axes.append(np.exp(-0.5 * ((np.arange(length) - centre) / sigma) ** 2))
    weights = np.outer(axes[0], axes[1]).astype(np.float32)
    weights /= weights.max()
    positive = weights[weights > 0]
    weights[weights == 0] = positive.min() if positive.size else 1.0
    weights.setflags(write=False)
    return weights


def gaussian_weights(shape: tuple[int, int], *, sigma_scale: float = 1.0 / 8.0) -> np.ndarray:
    """Importance weights of a tile: a Gaussian centred on it, sigma = ``sigma_scale`` x side.

    Parameters
    ----------
    shape : (int, int)
        Tile rows and columns.
    sigma_scale : float
        Sigma as a fraction of the tile side (nnU-Net: 1/8).

    Returns
    -------
    ndarray of shape ``shape``, float32, read-only
        1 at the centre, never 0 (zeros are raised to the smallest positive value, as in
        nnU-Net, so every pixel has weight).

    Examples
    --------
    >>> weights = gaussian_weights((64, 64))
    >>> float(weights.max()), bool(weights.min() > 0)
    (1.0, True)
    """
    return _gaussian(tuple(int(n) for n in shape), float(sigma_scale))


def _pad(array: np.ndarray, plan: TilePlan) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if plan.padded_shape == plan.shape:
        return array
    widths: list[tuple[int, int]] = [(0, 0)] * (array.ndim - 2)
    for length, padded, before in zip(plan.shape, plan.padded_shape, plan.pad, strict=True):
        widths.append((before, padded - length - before))
    mode: Literal["reflect", "edge"] = "reflect" if min(plan.shape) > 1 else "edge"
    return np.pad(array, widths, mode=mode)


def _forward_split(
    forward: Callable[..., torch.Tensor], tensors: list[torch.Tensor | None]
) -> torch.Tensor:
    """``forward(*tensors)``; out of accelerator memory, in halved batches.

    The halving is :class:`~napari_dmqpm.model.device.ShrinkingBatch`'s, the one of
    :func:`~napari_dmqpm.inference.predict_probabilities`, whose ``forward`` is one already and
    is called as it is. A single tile that does not fit raises :class:`OutOfDeviceMemory`.
    """
    if isinstance(forward, ShrinkingBatch):
        return forward(*tensors)
    present = next(t for t in tensors if t is not None)
    try:
        return ShrinkingBatch(forward, present.device, present.shape[0])(*tensors)
    except DeviceMemoryError as error:
        raise OutOfDeviceMemory(f"{error}; lower tile_size or use device='cpu'") from None


def _predict_batch(
    forward: Callable[..., torch.Tensor],
    tensors: list[torch.Tensor | None],
    *,
    tta: bool,
    amp_dtype: torch.dtype | None,
) -> np.ndarray:
    device = next(t.device for t in tensors if t is not None)
    autocast = (
        torch.autocast(device.type, dtype=amp_dtype)
        if amp_dtype is not None
        else contextlib.nullcontext()
    )
    total = None
    with autocast:
        for dims in TTA_FLIPS if tta else ((),):
            inputs = [t.flip(dims) if t is not None and dims else t for t in tensors]
            output = _forward_split(forward, inputs).float()
            output = output.flip(dims) if dims else output
            total = output if total is None else total + output
    assert total is not None
    return (total / (len(TTA_FLIPS) if tta else 1)).cpu().numpy()


def _to_device(
    pieces: list[np.ndarray] | None, device: torch.device, channels_last: bool
) -> torch.Tensor | None:
    if pieces is None:
        return None
    tensor = torch.from_numpy(np.stack(pieces)).to(device, non_blocking=True)
    if channels_last and device.type == "cuda":
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return tensor


@torch.inference_mode()
def predict_tiled(
    forward: Callable[..., torch.Tensor],
    inputs: Sequence[np.ndarray | None],
    *,
    n_outputs: int,
    tile_size: int,
    overlap: float = DEFAULT_OVERLAP,
    divisor: int = 1,
    batch_size: int = 1,
    tta: bool = False,
    device: str | torch.device = "cpu",
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> np.ndarray:
    """Run ``forward`` over an image tile by tile and blend the outputs.

    Parameters
    ----------
    forward : callable
        ``forward(*tensors) -> Tensor of shape (B, n_outputs, h, w)`` for input tensors of shape
        (B, C_i, h, w) (None passed through). It should return activated outputs
        (probabilities), which are then averaged. Called under ``torch.inference_mode``.
    inputs : sequence of (ndarray of shape (C_i, M, N) or None)
        The image channels, each any real dtype (converted to float32); all share (M, N).
        Not modified.
    n_outputs : int
        Channels of the output.
    tile_size, overlap, divisor
        See :func:`plan_tiles`.
    batch_size : int
        Tiles per call of ``forward``. Out of accelerator memory, a batch is halved until it fits.
    tta : bool
        Average the plain pass and the three mirror flips (rows, columns, both).
    device : str or torch.device
        Where the input tensors go (the device of ``forward``'s model).
    amp_dtype : torch.dtype or None
        Autocast dtype (e.g. from :func:`napari_dmqpm.model.autocast_dtype`); None: float32.
    channels_last : bool
        Send inputs in channels-last memory format (CUDA only).
    progress : callable, optional
        ``progress(done, total)`` in tiles: once with ``done=0`` and after every batch. It may
        raise (e.g. :class:`Cancelled`) to stop the run.
    should_stop : callable, optional
        Polled before every batch; when it returns True, :class:`Cancelled` is raised.

    Returns
    -------
    ndarray of shape (n_outputs, M, N), float32
        The Gaussian-weighted mean of the tile outputs.

    Raises
    ------
    Cancelled
        When ``should_stop()`` returned True.
    OutOfDeviceMemory
        When even one tile does not fit on the accelerator.
    """
    arrays = [None if a is None else np.asarray(a) for a in inputs]
    present = [a for a in arrays if a is not None]
    if not present or any(a.ndim != 3 or a.shape[1:] != present[0].shape[1:] for a in present):
        shapes = [None if a is None else a.shape for a in arrays]
        raise ValueError(f"inputs must be (C, M, N) arrays sharing (M, N); got shapes {shapes}")
    plan = plan_tiles(present[0].shape[1:], tile_size=tile_size, overlap=overlap, divisor=divisor)
    padded = [None if a is None else _pad(a, plan) for a in arrays]
    device = torch.device(device)
    weights = gaussian_weights(plan.tile)
    result = np.zeros((n_outputs, *plan.padded_shape), dtype=np.float32)
    weight_sum = np.zeros(plan.padded_shape, dtype=np.float32)
    windows = list(plan.windows())
    if progress is not None:
        progress(0, len(windows))
    for first in range(0, len(windows), batch_size):
        if should_stop is not None and should_stop():
            raise Cancelled("prediction was cancelled")
        batch = windows[first : first + batch_size]
        tensors = [
            None if a is None else _to_device([a[:, r, c] for r, c in batch], device, channels_last)
            for a in padded
        ]
        outputs = _predict_batch(forward, tensors, tta=tta, amp_dtype=amp_dtype)
        if outputs.shape != (len(batch), n_outputs, *plan.tile):
            raise ValueError(
                f"forward must return shape (B, n_outputs, h, w)="
                f"{(len(batch), n_outputs, *plan.tile)}; got {outputs.shape}"
            )
        for (rows, cols), output in zip(batch, outputs, strict=True):
            result[:, rows, cols] += output * weights
            weight_sum[rows, cols] += weights
        if progress is not None:
            progress(first + len(batch), len(windows))
    result /= weight_sum
    (top, left), (n_rows, n_cols) = plan.pad, plan.shape
    if plan.padded_shape == plan.shape:
        return result
    return np.ascontiguousarray(result[:, top : top + n_rows, left : left + n_cols])
