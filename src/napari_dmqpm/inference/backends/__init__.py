"""Engines that run the network: torch, or an ONNX export under ONNX Runtime or OpenVINO.

:func:`engine_for` turns ``InferenceConfig.backend`` into the callable the tiler runs, so
tiling, blending, test-time augmentation and post-processing stay one code path whatever runs
the network:

- ``auto`` on a CPU picks OpenVINO when it is installed, else ONNX Runtime, else torch, for
  models loaded from a checkpoint (a network only in memory runs on torch); on CUDA and MPS it
  is torch.
- An explicit ``onnxruntime`` or ``openvino`` that is not installed raises
  :class:`BackendNotInstalledError` with the pip command; on an accelerator it is a
  ``ValueError`` (the runtimes run on the CPU here).
- The model is exported once (:mod:`.export`) and, before its first use, checked against torch
  on a seeded reference field (:mod:`.check`), per runtime, runtime version and precision;
  the outcome is stored with the export, so the check runs once per machine. OpenVINO tries
  bfloat16 first where the CPU has it, then float32. When no precision passes, or the export
  fails, the model runs on torch with a :class:`BackendWarning`.
- Tiles smaller than a fusion window (:func:`.export.min_side`) run on torch.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from napari_dmqpm.model import DMQPMNet
from napari_dmqpm.model.registry import LoadedModel

from .check import CheckResult, compare
from .export import (
    ExportKey,
    ensure_export,
    export_key,
    min_side,
    not_exportable,
    read_record,
    write_record,
)
from .runtimes import (
    RUNTIME_PACKAGES,
    BackendNotInstalledError,
    is_installed,
    open_session,
    precisions,
    require,
    runtime_version,
)

__all__ = [
    "RUNTIME_PACKAGES",
    "BackendNotInstalledError",
    "BackendWarning",
    "Engine",
    "clear_engine_cache",
    "describe",
    "engine_for",
    "first_use",
    "is_installed",
    "resolve_backend",
]

#: ``auto``'s order of preference on a CPU.
AUTO_ORDER = ("openvino", "onnxruntime")


class BackendWarning(UserWarning):
    """A model runs on torch instead of the backend asked for (its export failed its check)."""


def resolve_backend(requested: str, device: torch.device | str) -> str:
    """The backend that runs a network on ``device`` for ``InferenceConfig.backend=requested``.

    Parameters
    ----------
    requested : str
        ``InferenceConfig.backend``: ``"auto"``, ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.
    device : torch.device or str
        Where the network runs (backends other than torch run on the CPU only).

    Raises
    ------
    BackendNotInstalledError
        An explicit backend whose runtime is not installed.
    ValueError
        An ONNX backend asked for on an accelerator, or an unknown name.

    Examples
    --------
    >>> resolve_backend("auto", "cuda"), resolve_backend("torch", "cpu")
    ('torch', 'torch')
    """
    device = torch.device(device)
    if requested == "auto":
        if device.type != "cpu":
            return "torch"
        return next((name for name in AUTO_ORDER if is_installed(name)), "torch")
    if requested == "torch":
        return "torch"
    if requested not in RUNTIME_PACKAGES:
        raise ValueError(f"backend must be one of auto, torch, {', '.join(RUNTIME_PACKAGES)}")
    require(requested)
    if device.type != "cpu":
        raise ValueError(
            f"backend={requested!r} runs on the CPU; the model is on {device}. Use "
            "device='cpu', or backend='auto' or 'torch' on an accelerator"
        )
    return requested


class SessionNetwork:
    """``(angles, phase) -> logits`` of an export, like the network it came from.

    Tiles smaller than ``min_side`` in rows or columns run on ``fallback`` (torch); so does
    everything after the runtime fails on a tile (with a :class:`BackendWarning`).

    Parameters
    ----------
    session : callable
        ``feeds -> logits`` of the export (:func:`~.runtimes.open_session`).
    names : tuple of str
        The graph's inputs (``"angles"``, ``"phase"``).
    fallback : DMQPMNet
        The network exported, whose attributes (config, divisor) this one answers with.
    """

    def __init__(self, session, names: tuple[str, ...], fallback: DMQPMNet) -> None:
        self.session, self.names, self.fallback = session, names, fallback
        self.min_side = min_side(fallback)
        self.failed = False

    def __call__(self, angles: torch.Tensor | None, phase: torch.Tensor | None) -> torch.Tensor:
        given = {"angles": angles, "phase": phase}
        tensors = {name: t for name in self.names if (t := given[name]) is not None}
        if len(tensors) < len(self.names):
            return self.fallback(angles, phase)  # let the network say what is missing
        shape = tuple(next(iter(tensors.values())).shape)
        if self.failed or min(shape[2:]) < self.min_side:
            return self.fallback(angles, phase)
        feeds = {n: np.ascontiguousarray(t.numpy(), dtype=np.float32) for n, t in tensors.items()}
        try:
            return torch.from_numpy(self.session(feeds))
        except Exception as error:  # a runtime's own failure: finish on torch, say so once
            self.failed = True
            warnings.warn(
                f"the runtime failed on a tile of {shape} ({error}); this model runs on torch "
                "from here on in this session",
                BackendWarning,
                stacklevel=2,
            )
            return self.fallback(angles, phase)


@dataclass(frozen=True)
class Engine:
    """What runs the network: ``network(angles, phase) -> logits``, and how.

    Attributes
    ----------
    backend : {"torch", "onnxruntime", "openvino"}
    precision : {"float32", "bfloat16"}
        The arithmetic of the network's convolutions (torch's CUDA autocast is not counted
        here; it is ``InferenceConfig.amp``).
    network : callable
    check : CheckResult or None
        The reference check the export passed (None for torch).
    """

    backend: str
    precision: str
    network: Callable[..., torch.Tensor]
    check: CheckResult | None = None


_ENGINES: dict[tuple, Engine] = {}
_LOCK = threading.Lock()
_log = logging.getLogger(__name__)


def clear_engine_cache() -> None:
    """Forget the sessions opened in this process (the exports on disk stay)."""
    with _LOCK:
        _ENGINES.clear()


def first_use(model: DMQPMNet | LoadedModel, backend: str = "auto") -> str | None:
    """What the first run of ``model`` on ``backend`` does before it segments, or None.

    A model that runs on a runtime is exported and checked once per machine (see the module):
    10-30 s on a laptop CPU, during which a run shows no progress. None when that is done
    (or cannot happen: torch, a network in memory, an accelerator), so callers can say so
    before they start; :func:`engine_for` logs the same sentence (logger
    ``napari_dmqpm.inference.backends``, level INFO) when it does the work.

    Parameters
    ----------
    model : DMQPMNet or LoadedModel
        The model about to run.
    backend : str
        ``InferenceConfig.backend``.
    """
    if not isinstance(model, LoadedModel):
        return None
    choice = resolve_backend(backend, model.device)
    if choice == "torch" or not_exportable(model.network) is not None:
        return None
    key = export_key(model)
    if _cache_key(key, choice) in _ENGINES:
        return None
    return _preparation(key, choice)


def _cache_key(key: ExportKey, choice: str) -> tuple:
    """Engines are cached per export, backend and ``torch.get_num_threads()``."""
    return (key.stem, str(key.onnx_path), choice, torch.get_num_threads())


def _preparation(key: ExportKey, choice: str) -> str | None:
    """The sentence of :func:`first_use` when the export or its check is not on disk yet."""
    record = read_record(key)
    checks = {} if record is None else record["checks"]
    for precision in precisions(choice):  # as _checked tries them
        check = checks.get(f"{choice}-{runtime_version(choice)}-{precision}")
        if check is None:
            return (
                f"preparing {choice} for model {key.name!r}: its first run on this machine "
                "exports it to ONNX and checks it against torch (10-30 s, once)"
            )
        if CheckResult.from_dict(check).passed:
            return None
    return None  # checked and refused on every precision: torch runs, nothing to prepare


def _postprocess(model: DMQPMNet | LoadedModel):
    from napari_dmqpm.inference.segment import default_postprocess

    return default_postprocess(model)


def _checked(key: ExportKey, record: dict, backend: str, network: DMQPMNet, model) -> Engine | None:
    names = tuple(n for n in ("angles", "phase") if network.config.inputs in ("both", n))
    for precision in precisions(backend):
        check_id = f"{backend}-{runtime_version(backend)}-{precision}"
        session = None
        if check_id not in record["checks"]:
            session = open_session(backend, key.onnx_path, precision=precision)
            result = compare(
                network, SessionNetwork(session, names, network), postprocess=_postprocess(model)
            )
            record["checks"][check_id] = result.to_dict()
            write_record(key, record)
        result = CheckResult.from_dict(record["checks"][check_id])
        if result.passed:
            session = session or open_session(backend, key.onnx_path, precision=precision)
            return Engine(backend, precision, SessionNetwork(session, names, network), result)
    return None


def _refused(backend: str, name: str, why: str, network: DMQPMNet) -> Engine:
    warnings.warn(
        f"model {name!r} runs on torch instead of {backend}: {why}",
        BackendWarning,
        stacklevel=4,
    )
    return Engine("torch", "float32", network)


def _build(model, network: DMQPMNet, backend: str, key: ExportKey) -> Engine:
    reason = not_exportable(network)
    if reason is not None:
        return _refused(backend, key.name, f"it cannot be exported ({reason})", network)
    try:
        record = ensure_export(network, key)
        engine = _checked(key, record, backend, network, model)
    except Exception as error:  # an exporter or runtime failure must not stop a segmentation
        return _refused(backend, key.name, f"its export failed ({error})", network)
    if engine is not None:
        return engine
    last = CheckResult.from_dict(list(record["checks"].values())[-1])
    return _refused(
        backend, key.name,
        f"its export does not give torch's labels on the reference field (class agreement "
        f"{last.class_agreement:.5f}, label agreement {last.label_agreement:.5f}, "
        f"{last.n_cells_backend} vs {last.n_cells_torch} cells); export {key.onnx_path}",
        network,
    )  # fmt: skip


def engine_for(
    model: DMQPMNet | LoadedModel, network: DMQPMNet, device: torch.device, backend: str
) -> Engine:
    """The engine that runs ``network`` (``model``'s, on ``device``) for ``backend``.

    Exports and checks on first use (see the module); cached per export, backend and
    ``torch.get_num_threads()`` for this process.

    Parameters
    ----------
    model : DMQPMNet or LoadedModel
        The network, or a registry model (whose name and hash key the export).

    network : DMQPMNet
        The network.
    device : torch.device
        Where the network runs.

    backend : str
        ``"auto"``, ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.

    Raises
    ------
    BackendNotInstalledError, ValueError
        See :func:`resolve_backend`.

    Warns
    -----
    BackendWarning
        When the model runs on torch instead of the backend asked for (or chosen by ``auto``).
    """
    choice = resolve_backend(backend, device)
    if choice == "torch" or (backend == "auto" and not isinstance(model, LoadedModel)):
        return Engine("torch", "float32", network)
    key = export_key(model)
    cache_key = _cache_key(key, choice)
    with _LOCK:
        if cache_key not in _ENGINES:
            note = _preparation(key, choice) if not_exportable(network) is None else None
            if note is not None:
                _log.info(note)
            _ENGINES[cache_key] = _build(model, network, choice, key)
        return _ENGINES[cache_key]


def describe(model: DMQPMNet | LoadedModel, backend: str = "auto") -> tuple[str, str]:
    """``(backend, precision)`` that run ``model`` (on its device) for ``backend``.

    What :func:`engine_for` gives (exporting and checking on first use), or torch where the
    runtime failed during this session; for provenance records (layer metadata, reports).

    Parameters
    ----------
    model : DMQPMNet or LoadedModel
        The network, or a registry model (whose name and hash key the export).

    backend : str
        ``"auto"``, ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.

    Examples
    --------
    >>> from napari_dmqpm.model import DMQPMNet, ModelConfig
    >>> config = ModelConfig(features=(4, 8, 16), strides=(1, 2, 2), n_heads=2, fusion_stage=1)
    >>> describe(DMQPMNet(config))
    ('torch', 'float32')
    """
    network = model.network if isinstance(model, LoadedModel) else model
    engine = engine_for(model, network, next(network.parameters()).device, backend)
    if isinstance(engine.network, SessionNetwork) and engine.network.failed:
        return "torch", "float32"
    return engine.backend, engine.precision
