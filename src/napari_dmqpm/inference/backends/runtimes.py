"""The runtimes that run an ONNX export on the CPU: ONNX Runtime and OpenVINO.

Each is imported only when asked for. A session uses as many threads as torch does
(``torch.get_num_threads()``, which follows ``OMP_NUM_THREADS``), so ``--threads``-style
settings and benchmarks hold for every backend alike.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

#: The packages each runtime backend needs (import and pip names): its runtime, and ``onnx``,
#: which torch's exporter writes with.
RUNTIME_PACKAGES: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnxruntime", "onnx"),
    "openvino": ("openvino", "onnx"),
}
#: Precisions a backend may run at, preferred first where the CPU has them.
PRECISIONS: dict[str, tuple[str, ...]] = {
    "torch": ("float32",),
    "onnxruntime": ("float32",),
    "openvino": ("bfloat16", "float32"),
}


class BackendNotInstalledError(ImportError):
    """A backend was asked for whose runtime package is not installed (the message says how)."""


def is_installed(backend: str) -> bool:
    """True when ``backend`` can run here (torch always can).

    Parameters
    ----------
    backend : str
        ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.
    """
    return all(importlib.util.find_spec(p) is not None for p in RUNTIME_PACKAGES.get(backend, ()))


def require(backend: str) -> None:
    """Raise :class:`BackendNotInstalledError` when ``backend``'s runtime is missing.

    Parameters
    ----------
    backend : str
        ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.
    """
    if not is_installed(backend):
        missing = [p for p in RUNTIME_PACKAGES[backend] if importlib.util.find_spec(p) is None]
        raise BackendNotInstalledError(
            f"backend={backend!r} needs the {' and '.join(missing)} package"
            f"{'s' if len(missing) > 1 else ''}, not installed here: pip install "
            f"{' '.join(missing)} (or pip install 'napari-dmqpm[fast]' for both runtimes), "
            "or choose backend='auto' or 'torch'"
        )


def cpu_supports(precision: str) -> bool:
    """Whether this CPU runs ``precision`` natively in OpenVINO (float32 always).

    Parameters
    ----------
    precision : str
        ``"float32"``, ``"bfloat16"`` or ``"float16"``.
    """
    if precision == "float32":
        return True
    import openvino

    capabilities = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return {"bfloat16": "BF16", "float16": "FP16"}[precision] in capabilities


def precisions(backend: str) -> tuple[str, ...]:
    """The precisions to try for ``backend`` on this CPU, preferred first.

    Parameters
    ----------
    backend : str
        ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.
    """
    return tuple(p for p in PRECISIONS[backend] if backend != "openvino" or cpu_supports(p))


Session = Callable[[dict[str, np.ndarray]], np.ndarray]


def _onnxruntime_session(path: Path, threads: int) -> Session:
    import onnxruntime  # type: ignore[import-untyped]

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no notes about unused initializers
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(None, feeds)[0]


def _openvino_session(path: Path, threads: int, precision: str) -> Session:
    import openvino

    hint = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}[precision]
    compiled = openvino.Core().compile_model(
        str(path),
        "CPU",
        {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": hint,  # explicit: OpenVINO picks bf16 where it can
            "PERFORMANCE_HINT": "LATENCY",
        },
    )
    request = compiled.create_infer_request()
    lock = threading.Lock()  # one request, one tile at a time (batch workers share engines)

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        with lock:
            return np.array(request.infer(feeds)[0], copy=True)  # its buffer is reused

    return run


def open_session(backend: str, path: Path, *, precision: str = "float32") -> Session:
    """A function ``feeds -> logits`` running the export at ``path`` on the CPU.

    ``feeds`` maps the graph's input names (``angles``, ``phase``) to float32 arrays of
    shape (B, C, M, N); the logits are (B, n_outputs, M, N) float32.

    Parameters
    ----------
    backend : str
        ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.
    path : Path
        The ONNX export.
    precision : str
        ``"float32"``, ``"bfloat16"`` or ``"float16"`` (OpenVINO's inference precision).
    """
    require(backend)
    threads = max(1, torch.get_num_threads())
    if backend == "onnxruntime":
        return _onnxruntime_session(path, threads)
    if backend == "openvino":
        return _openvino_session(path, threads, precision)
    raise ValueError(f"backend must be 'onnxruntime' or 'openvino'; got backend={backend!r}")


def runtime_version(backend: str) -> str:
    """The installed version of ``backend``'s runtime (torch's for torch).

    Parameters
    ----------
    backend : str
        ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.
    """
    if backend == "torch":
        return torch.__version__
    from importlib.metadata import version

    return version(RUNTIME_PACKAGES[backend][0])
