"""Choosing the torch device and the mixed-precision dtype."""

from __future__ import annotations

import torch

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
    RuntimeError
        When the requested device is not available in this torch installation.

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
            raise RuntimeError(
                f"device={device!r} was requested but no CUDA GPU is available (torch "
                f"{torch.__version__} built {built}); use device='cpu' or 'auto'"
            )
        if index and int(index) >= torch.cuda.device_count():
            raise RuntimeError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} CUDA "
                "device(s) exist"
            )
    if kind == "mps" and not _mps_available():
        raise RuntimeError(
            f"device={device!r} was requested but Apple MPS is not available; use 'cpu' or 'auto'"
        )
    return torch.device(name)


def autocast_dtype(device: str | torch.device) -> torch.dtype | None:
    """The mixed-precision dtype to autocast to on ``device``, or None for full precision.

    bfloat16 on CUDA GPUs that support it natively (compute capability >= 8.0), float16 on
    other CUDA GPUs, None on CPU and MPS (float32 is both safest and, for these small
    convolutions, not slower there).

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
