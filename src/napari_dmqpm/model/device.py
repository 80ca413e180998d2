"""Choosing the torch device and the mixed-precision dtype; accelerator memory and batch sizes."""

from __future__ import annotations

import copy
import gc
import math
import warnings
from collections.abc import Callable
from typing import TypeVar

import torch

from .config import ModelConfig
from .network import DMQPMNet

ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device name into an available ``torch.device``.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "mps"}, "cuda:<index>" or torch.device
        ``auto`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For a name that is not a device choice.
    DeviceUnavailableError
        A ``RuntimeError``: the requested device is not available in this torch installation.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        name = str(device)
    elif isinstance(device, str):
        name = device.strip().lower()
    else:
        raise ValueError(
            f"device must be one of {DEVICE_CHOICES} or a torch.device; got {device!r}"
        )
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    kind, _, index = name.partition(":")
    if kind not in DEVICE_CHOICES[1:] or (index and not index.isdigit()):
        raise ValueError(
            f"device must be one of {DEVICE_CHOICES} or 'cuda:<index>'; got {device!r}"
        )
    if kind == "cuda":
        if not torch.cuda.is_available():
            built = (
                "without CUDA" if torch.version.cuda is None else f"with CUDA {torch.version.cuda}"
            )
            raise DeviceUnavailableError(
                f"device={device!r} was requested but no CUDA GPU is available (torch "
                f"{torch.__version__} built {built}); use device='cpu' or 'auto'"
            )
        if index and int(index) >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} CUDA "
                "device(s) exist"
            )
    if kind == "mps" and not _mps_available():
        raise DeviceUnavailableError(
            f"device={device!r} was requested but Apple MPS is not available; use 'cpu' or 'auto'"
        )
    return torch.device(name)


def autocast_dtype(device: str | torch.device) -> torch.dtype | None:
    """The mixed-precision dtype to autocast to on ``device``, or None for full precision.

    bfloat16 on CUDA GPUs that support it natively (compute capability >= 8.0), float16 on
    other CUDA GPUs, None on CPU and MPS (float32 is both safest and, for these small
    convolutions, not slower there).

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``.

    Examples
    --------
    >>> autocast_dtype("cpu") is None
    True
    """
    device = torch.device(device)
    if device.type != "cuda":
        return None
    with torch.cuda.device(device):
        # emulated bf16 (pre-Ampere GPUs) is slow: only native support counts
        try:
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch < 2.3 has no emulation argument
            native = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if native else torch.float16


# --- accelerator memory: free bytes, an estimate per tile, batch sizing, out-of-memory ---------

#: Bytes per activation element. Under CUDA autocast the convolutions run in bf16/fp16 but
#: instance normalization (and everything after it up to the next convolution) stays float32,
#: so the skips the decoder keeps are float32.
ACTIVATION_BYTES = 4
#: Full-resolution maps of ``features[0]`` channels alive at once while the last decoder stage
#: runs: the upsampled map, the concatenation (two maps), the convolution output, its
#: normalization and the previous map (the in-place activation adds none).
WORKING_MAPS = 6
#: Margin over the estimate for allocator fragmentation, cuDNN workspaces and kernels that
#: keep temporaries (the attention of the fusion stage).
MEMORY_SAFETY = 1.5
#: Share of the free accelerator memory a batch may use.
MEMORY_FRACTION = 0.8
#: Bytes kept free on top (CUDA context growth, cuDNN/cuBLAS handles).
RESERVE_BYTES = 512 * 2**20


def estimate_tile_bytes(config: ModelConfig, tile_shape: tuple[int, int]) -> int:
    """Accelerator bytes one tile of ``tile_shape`` needs in an inference forward pass.

    Computed from the architecture (no gradients are kept under ``torch.inference_mode``)::

        bytes = MEMORY_SAFETY * ACTIVATION_BYTES * M * N * (
            sum_s c_s * features[s] / r_s**2      # the skips the decoder keeps
            + WORKING_MAPS * features[0] / r_0**2 # the last decoder stage at work
            + n_input_channels + 2 * n_outputs    # inputs, logits and probabilities
        )

    where ``r_s`` is the downsampling of stage ``s`` (``r_0 = 2`` with a strided stem) and
    ``c_s = 3`` for the stages a dual encoder runs twice (angle map, phase map and their merged
    skip, up to and including ``fusion_stage``), 1 otherwise. Weights are not included (they
    are already on the device).

    Parameters
    ----------
    config : ModelConfig
        The network's architecture.
    tile_shape : (int, int)
        Tile rows and columns, pixels.

    Returns
    -------
    int
        Bytes per tile; a batch of ``B`` tiles needs about ``B`` times as much.

    Examples
    --------
    >>> from napari_dmqpm.model import ModelConfig
    >>> round(estimate_tile_bytes(ModelConfig(), (512, 512)) / 2**20)
    428
    """
    rows, cols = (int(n) for n in tile_shape)
    if rows < 1 or cols < 1:
        raise ValueError(f"tile_shape must be two positive sizes; got tile_shape={tile_shape}")
    dual_until = config.fusion_stage if config.is_dual else -1
    skips = sum(
        (3 if stage <= dual_until else 1) * width / resolution**2
        for stage, (width, resolution) in enumerate(
            zip(config.features, config.stage_resolutions(), strict=True)
        )
    )
    maps = skips + WORKING_MAPS * config.features[0] / config.strides[0] ** 2
    maps += config.n_input_channels + 2 * config.n_outputs
    return int(math.ceil(MEMORY_SAFETY * ACTIVATION_BYTES * rows * cols * maps))


def batch_size_for_memory(
    tile_bytes: int,
    free_bytes: int,
    *,
    limit: int,
    fraction: float = MEMORY_FRACTION,
    reserve_bytes: int = RESERVE_BYTES,
) -> int:
    """Tiles per batch that fit in ``free_bytes``: ``(fraction * free - reserve) // tile``.

    Parameters
    ----------
    tile_bytes : int
        Bytes per tile, e.g. from :func:`estimate_tile_bytes`; > 0.
    free_bytes : int
        Free accelerator memory, e.g. from :func:`free_memory_bytes`.
    limit : int
        The largest batch wanted (>= 1).
    fraction, reserve_bytes
        Share of the free memory to use and bytes to keep free on top.

    Returns
    -------
    int
        In ``[1, limit]``: at least one tile is always tried (out-of-memory errors are then
        handled by halving the batch during prediction).

    Examples
    --------
    >>> batch_size_for_memory(2**30, 10 * 2**30, limit=32)
    7
    >>> batch_size_for_memory(2**30, 0, limit=32)
    1
    """
    if tile_bytes < 1 or limit < 1:
        raise ValueError(f"need tile_bytes >= 1 and limit >= 1; got {tile_bytes}, {limit}")
    usable = fraction * free_bytes - reserve_bytes
    return int(min(limit, max(1, usable // tile_bytes)))


def free_memory_bytes(device: str | torch.device) -> int | None:
    """Memory still available for tensors on ``device``, bytes; None on the CPU.

    CUDA: the driver's free memory (``torch.cuda.mem_get_info``) plus what torch's caching
    allocator holds but does not use (``memory_reserved - memory_allocated``). MPS: the
    recommended working set minus what the driver has allocated (None when this torch cannot
    tell).

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(cached, 0))
    if device.type == "mps":
        try:
            return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
        except (AttributeError, RuntimeError):
            return None
    return None


#: The exception torch raises when a CUDA allocation fails (a RuntimeError subclass).
_OOM_TYPES = tuple(
    t
    for t in (
        getattr(torch, "OutOfMemoryError", None),
        getattr(torch.cuda, "OutOfMemoryError", None),
    )
    if t is not None
)
#: Messages of the RuntimeErrors other backends raise: MPS, the CPU allocator, cuDNN/cuBLAS.
_OOM_MESSAGES = (
    "out of memory",
    "can't allocate memory",
    "not enough memory",
    "cudnn_status_alloc_failed",
    "cublas_status_alloc_failed",
)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure (CUDA, MPS, CPU), worth a smaller batch.

    Parameters
    ----------
    error : BaseException
        The exception raised by a forward pass or an allocation.

    Examples
    --------
    >>> is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"))
    True
    >>> is_out_of_memory(ValueError("phase must have shape (M, N)"))
    False

    A :class:`DeviceMemoryError` is not one: it says that a batch of one already failed, so
    a caller that halves batches must pass it on, not halve again.
    """
    if isinstance(error, DeviceMemoryError):
        return False
    if isinstance(error, _OOM_TYPES) or isinstance(error, MemoryError):
        return True
    return isinstance(error, RuntimeError) and any(
        text in str(error).lower() for text in _OOM_MESSAGES
    )


def empty_cache(device: str | torch.device) -> None:
    """Return the cached blocks of torch's allocator on ``device`` (no-op on the CPU).

    Call it after the exception that held the failed batch's tensors is gone (outside the
    ``except`` block), or the memory stays referenced by its traceback.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``.
    """
    device = torch.device(device)
    gc.collect()
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


# --- running a network on an accelerator: batch size, out-of-memory halving, compile, copies ---

#: Largest batch :func:`choose_batch_size` picks on an accelerator by itself.
MAX_AUTO_BATCH = 32
#: Batch :func:`choose_batch_size` picks on the CPU: one tile at a time was the fastest there
#: (a 2048² frame in 512² tiles: batch 1 took 0.8x the time of batch 4 for both shipped
#: models, docs/inference.md), and it holds the least memory.
CPU_BATCH_SIZE = 1


class DeviceFallbackWarning(UserWarning):
    """Prediction left its fast path; the message says why and what was tried.

    Emitted when even one tile did not fit in the accelerator's memory and the work was
    finished on the CPU, or when ``torch.compile`` failed and the network ran eagerly.
    """


class DeviceUnavailableError(RuntimeError):
    """The device asked for does not exist on this machine (no CUDA GPU, no MPS, no index)."""


class DeviceMemoryError(RuntimeError):
    """A batch of one sample ran out of the device's memory (see :class:`ShrinkingBatch`)."""


def choose_batch_size(
    config: ModelConfig,
    tile_shape: tuple[int, int],
    *,
    device: str | torch.device,
    requested: int | None = None,
) -> int:
    """Tiles per forward pass on ``device``.

    Parameters
    ----------
    config : ModelConfig
        The network's architecture (for :func:`estimate_tile_bytes`).
    tile_shape : (int, int)
        Tile rows and columns, pixels.
    device : str or torch.device
        Where the network runs.
    requested : int or None
        The user's batch size (``InferenceConfig.batch_size``); None picks it from the memory.

    Returns
    -------
    int
        On the CPU (or where the free memory is unknown) ``requested``, or
        :data:`CPU_BATCH_SIZE` when None. On an accelerator
        ``(free * MEMORY_FRACTION - RESERVE_BYTES) // estimate_tile_bytes(config, tile_shape)``
        clipped to ``[1, requested]`` (``[1, MAX_AUTO_BATCH]`` when None).

    Examples
    --------
    >>> from napari_dmqpm.model import ModelConfig
    >>> choose_batch_size(ModelConfig(), (512, 512), device="cpu")
    1
    """
    free = free_memory_bytes(device)
    if free is None:
        return requested or CPU_BATCH_SIZE
    limit = requested or MAX_AUTO_BATCH
    return batch_size_for_memory(estimate_tile_bytes(config, tile_shape), free, limit=limit)


class ShrinkingBatch:
    """Call ``forward`` on chunks of at most ``batch_size`` samples, halving on out-of-memory.

    Parameters
    ----------
    forward : callable
        ``forward(*tensors) -> Tensor`` of shape (B, ...) for tensors of shape (B, ...) (None
        passed through).
    device : torch.device
        Where ``forward`` runs (its cache is emptied after a failure).
    batch_size : int
        The first chunk size tried.

    Attributes
    ----------
    batch_size : int
        The chunk size that works so far; kept for later calls.
    failed : list of int
        The chunk sizes that ran out of memory, in order.

    Notes
    -----
    A chunk that raises an allocation failure (:func:`is_out_of_memory`) is run again with half
    as many samples; chunks already done are kept. When one sample fails,
    :class:`DeviceMemoryError` is raised, naming the device, the sample shape and the sizes tried.
    """

    def __init__(
        self, forward: Callable[..., torch.Tensor], device: torch.device, batch_size: int
    ) -> None:
        self.forward, self.device, self.batch_size = forward, torch.device(device), batch_size
        self.failed: list[int] = []

    def __call__(self, *tensors: torch.Tensor | None) -> torch.Tensor:
        """``forward`` over all samples of ``tensors``, concatenated along the batch."""
        n_samples = next(t.shape[0] for t in tensors if t is not None)
        outputs, start = [], 0
        while start < n_samples:
            size = min(self.batch_size, n_samples - start)
            chunk = [None if t is None else t[start : start + size] for t in tensors]
            try:
                outputs.append(self.forward(*chunk))
                start += size
                continue
            except Exception as error:  # noqa: BLE001 - only allocation failures are handled
                if not is_out_of_memory(error):
                    raise
                reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            empty_cache(self.device)  # outside the except block, whose traceback held the batch
            self.failed.append(size)
            if size == 1:
                shape = tuple(next(t for t in chunk if t is not None).shape[2:])
                raise DeviceMemoryError(
                    f"out of memory on {self.device} with a single tile of {shape} pixels "
                    f"(tried batches of {', '.join(map(str, self.failed))} tiles; {reason})"
                )
            self.batch_size = size // 2
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def compiled_or_eager(network: torch.nn.Module) -> Callable[..., torch.Tensor]:
    """``torch.compile(network)``, which runs the network eagerly if compiling fails.

    Compiling happens at the first call of each input shape (tens of seconds); dynamo keeps
    the compiled code with the network's ``forward``, so a later wrapper reuses it. A failure
    other than out-of-memory emits one :class:`DeviceFallbackWarning` and the wrapper then
    always calls ``network`` itself.

    Parameters
    ----------
    network : torch.nn.Module
        The network to compile.
    """
    compiled = torch.compile(network, dynamic=False)
    failed: list[str] = []

    def forward(*args: torch.Tensor | None) -> torch.Tensor:
        if not failed:
            try:
                return compiled(*args)
            except Exception as error:  # noqa: BLE001 - any compiler failure: run eagerly
                if is_out_of_memory(error):
                    raise
                failed.append(type(error).__name__)
                warnings.warn(
                    f"torch.compile failed ({type(error).__name__}: {error}); running the "
                    "network without compiling",
                    DeviceFallbackWarning,
                    stacklevel=2,
                )
        return network(*args)

    return forward


def cpu_copy(network: ModuleT) -> ModuleT:
    """A copy of ``network`` on the CPU, in the same train/eval mode.

    A :class:`~napari_dmqpm.model.DMQPMNet` is rebuilt from its config on the CPU and given
    the weights (no second copy on a full accelerator; torch's random state is left as it
    was); other modules are deep-copied and moved.

    Parameters
    ----------
    network : torch.nn.Module
        The network to copy (left where it is).
    """
    clone: ModuleT
    if isinstance(network, DMQPMNet):
        with torch.random.fork_rng(devices=[]):  # building initialises weights: keep the RNG
            clone = type(network)(network.config)
        clone.load_state_dict(network.state_dict())
    else:
        clone = copy.deepcopy(network).to("cpu")
    return clone.train(network.training)
