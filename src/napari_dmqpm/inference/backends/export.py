"""ONNX exports of a network, cached beside the user's models, named by the weights' sha256.

One export per checkpoint serves every tile size: the graph has dynamic batch, rows and
columns. It is written once to ``<user models>/.exports/<name>-<weights sha256>-<config
hash>-opset<N>.onnx`` (a dot folder, so the registry never takes it for a model) with a
record ``<same stem>.json`` beside it: the sha256 of the ONNX file, and the outcome of each
check against torch (:mod:`.check`). A changed checkpoint (other weights, or another
``config.json`` model section, normalization included) has another name, so a stale export is
never run; an export whose bytes do not match its record (truncated, edited) is made again.
Both files are written to a temporary name in the same folder and moved into place. At most
``KEEP_PER_NAME`` exports of one model name are kept (the newest).

The windowed cross-attention pads its maps to a multiple of the window with amounts computed in
Python, which a traced graph would freeze at the export's size; the exported copy of the network
always pads, by amounts computed in the graph, and always masks the padding (an all-true mask
when nothing is padded), which gives the same attention at every size.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import tempfile
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from napari_dmqpm.model import DMQPMNet
from napari_dmqpm.model.fusion import CrossAttention, _from_windows, _to_windows
from napari_dmqpm.model.normalization import normalize_angles, normalize_phase
from napari_dmqpm.model.registry import LoadedModel, user_models_dir

#: ONNX opset of the exports (17: LayerNormalization is one node; the attention exports as
#: MatMul/Softmax, which every runtime supports).
OPSET = 17
#: Folder of the exports inside the user models folder.
EXPORTS_FOLDER = ".exports"
#: Input size (rows, columns; rounded up to the model's divisor) the graph is traced at.
TRACE_SHAPE = (96, 160)
#: Exports kept per model name (the most recently written); older ones are removed, so
#: fine-tuning one model over and over does not fill the disk.
KEEP_PER_NAME = 4


def exports_dir() -> Path:
    """``<user models folder>/.exports`` (:func:`napari_dmqpm.model.registry.user_models_dir`)."""
    return user_models_dir() / EXPORTS_FOLDER


@dataclass(frozen=True)
class ExportKey:
    """What names an export: the model's name, its weights' sha256 and its config's hash."""

    name: str
    weights_sha256: str
    config_sha256: str

    @property
    def stem(self) -> str:
        """``<name>-<weights sha256>-<config hash, 12 digits>-opset<N>``."""
        return f"{self.name}-{self.weights_sha256}-{self.config_sha256[:12]}-opset{OPSET}"

    @property
    def onnx_path(self) -> Path:
        """The export, in :func:`exports_dir`."""
        return exports_dir() / f"{self.stem}.onnx"

    @property
    def record_path(self) -> Path:
        """Its record (the ONNX file's sha256 and the checks' outcomes)."""
        return exports_dir() / f"{self.stem}.json"


def _sha256_bytes(chunks: Iterator[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _state_chunks(network: torch.nn.Module) -> Iterator[bytes]:
    for name, tensor in sorted(network.state_dict().items()):
        yield name.encode()
        yield tensor.detach().to("cpu").contiguous().numpy().tobytes()


def export_key(model: DMQPMNet | LoadedModel) -> ExportKey:
    """The key of a model's export.

    A :class:`~napari_dmqpm.model.registry.LoadedModel` is named by its registry name and the
    sha256 of its ``model.safetensors`` (checked when it was loaded); a network in memory by
    ``network`` and the sha256 of its parameters and buffers. Both add a hash of the model
    config (architecture, heads and input normalization, which the graph holds).

    Parameters
    ----------
    model : DMQPMNet or LoadedModel
        The network, or a registry model (whose name and hash key the export).
    """
    network = model.network if isinstance(model, LoadedModel) else model
    config = json.dumps(network.config.to_dict(), sort_keys=True).encode()
    config_sha256 = hashlib.sha256(config).hexdigest()
    if isinstance(model, LoadedModel) and model.info.sha256:
        return ExportKey(model.info.name, model.info.sha256, config_sha256)
    return ExportKey("network", _sha256_bytes(_state_chunks(network)), config_sha256)


def _windowed_traceable(self: CrossAttention, x: torch.Tensor, context: torch.Tensor):
    """``CrossAttention._windowed`` with padding and mask computed in the graph (see module)."""
    batch, _, rows, cols = x.shape
    window = (self.window_size, self.window_size)
    # non-negative operands only: the exported remainder of a negative number is not Python's
    pad_rows = (window[0] - rows % window[0]) % window[0]
    pad_cols = (window[1] - cols % window[1]) % window[1]
    valid = F.pad(torch.ones_like(x[:1, :1]), (0, pad_cols, 0, pad_rows))
    x = F.pad(x, (0, pad_cols, 0, pad_rows))
    context = F.pad(context, (0, pad_cols, 0, pad_rows))
    mask = _to_windows(valid, window).squeeze(-1).bool().repeat(batch, 1)[:, None, None, :]
    out = self._attend(_to_windows(x, window), _to_windows(context, window), mask)
    out = _from_windows(out, batch, x.shape[-2:], window)
    return out[:, :, :rows, :cols]


class ExportableNetwork(torch.nn.Module):
    """A copy of a network in the form the ONNX exporter traces (see the module).

    ``forward(*inputs)`` takes the inputs the model uses, in the order angles, phase (raw, as
    :class:`~napari_dmqpm.model.DMQPMNet` takes them) and returns the full-resolution logits.

    Parameters
    ----------
    network : DMQPMNet
        The network.
    """

    def __init__(self, network: DMQPMNet) -> None:
        super().__init__()
        self.network = copy.deepcopy(network).to("cpu").eval()
        for module in self.network.modules():
            if isinstance(module, CrossAttention) and module.attention == "windowed":
                module._windowed = types.MethodType(  # type: ignore[method-assign]
                    _windowed_traceable, module
                )

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Full-resolution logits for the inputs the model uses (see the class).

        Parameters
        ----------
        *inputs : Tensor
            The inputs the model uses, in the order of :func:`input_names`.
        """
        network, uses = self.network, self.network.config.inputs
        angles = inputs[0] if uses in ("both", "angles") else None
        phase = inputs[-1] if uses in ("both", "phase") else None
        norm = network.config.normalization
        skips = network.encoder(
            None if angles is None else normalize_angles(angles, norm),
            None if phase is None else normalize_phase(phase, norm),
        )
        if network.full_resolution is None:
            output = network.decoder(skips)
        else:
            output = network.full_resolution(network.decoder.decode(skips)[0])
        return output[0] if isinstance(output, (list, tuple)) else output


def input_names(network: DMQPMNet) -> tuple[str, ...]:
    """The graph's inputs: ``angles`` and/or ``phase``, as the model uses them.

    Parameters
    ----------
    network : DMQPMNet
        The network.
    """
    uses = network.config.inputs
    return tuple(n for n in ("angles", "phase") if uses in ("both", n))


def not_exportable(network: DMQPMNet) -> str | None:
    """Why a network cannot be exported with dynamic sizes, or None when it can.

    Parameters
    ----------
    network : DMQPMNet
        The network.
    """
    config = network.config
    if config.is_dual and config.fusion == "mha" and config.attention == "kv-reduced":
        return "its kv-reduced attention pools to a size the export would fix"
    return None


def min_side(network: DMQPMNet) -> int:
    """The smallest tile side (px) the export runs: a window at the fusion stage.

    Parameters
    ----------
    network : DMQPMNet
        The network.
    """
    config = network.config
    stride = 1
    for value in config.strides[: config.fusion_stage + 1]:
        stride *= value
    side = config.window_size * stride if config.attention == "windowed" else 1
    return max(side, network.required_divisor)


def _atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """``write(temporary)`` in ``path``'s folder, then ``os.replace`` onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_record(key: ExportKey, record: dict[str, Any]) -> None:
    """Write an export's record atomically.

    Parameters
    ----------
    key : ExportKey
        The export's key (:func:`export_key`).
    record : dict
        The record (export file, hashes, checks).
    """
    text = json.dumps(record, indent=1, sort_keys=True)
    _atomic_write(key.record_path, lambda p: p.write_text(text, encoding="utf-8"))


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes.

    Parameters
    ----------
    path : Path
        The file.
    """
    with open(path, "rb") as handle:
        return _sha256_bytes(iter(lambda: handle.read(1 << 20), b""))


def read_record(key: ExportKey) -> dict[str, Any] | None:
    """The record of a valid export, or None when the export is missing, stale or corrupt.

    Valid: both files exist, the record parses, and the ONNX file's sha256 and the key's
    weights sha256 equal those it states.

    Parameters
    ----------
    key : ExportKey
        The export's key (:func:`export_key`).
    """
    try:
        record = json.loads(key.record_path.read_text(encoding="utf-8"))
        valid = (
            isinstance(record, dict)
            and record.get("weights_sha256") == key.weights_sha256
            and record.get("onnx_sha256") == file_sha256(key.onnx_path)
            and isinstance(record.get("checks"), dict)
        )
    except (OSError, ValueError):
        return None
    return record if valid else None


def export_onnx(network: DMQPMNet, path: Path) -> None:
    """Export ``network`` to ONNX at ``path`` (atomically), dynamic in batch, rows and columns.

    Parameters
    ----------
    network : DMQPMNet
        The network.
    path : Path
        The ONNX file to write.
    """
    names = input_names(network)
    divisor = network.required_divisor
    side = min_side(network)
    rows, cols = (max(side, -(-n // divisor) * divisor) for n in TRACE_SHAPE)
    samples = tuple(torch.zeros(1, 4 if n == "angles" else 1, rows, cols) for n in names)
    axes = {0: "batch", 2: "rows", 3: "columns"}
    module = ExportableNetwork(network)

    def write(temporary: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings about the shape arithmetic
            torch.onnx.export(
                module, samples, str(temporary), dynamo=False, opset_version=OPSET,
                input_names=list(names), output_names=["logits"],
                dynamic_axes={name: axes for name in (*names, "logits")},
            )  # fmt: skip

    _atomic_write(path, write)


def ensure_export(network: DMQPMNet, key: ExportKey) -> dict[str, Any]:
    """The record of ``key``'s export, exporting ``network`` first when there is no valid one.

    Parameters
    ----------
    network : DMQPMNet
        The network.

    key : ExportKey
        The export's key (:func:`export_key`).

    Returns
    -------
    dict
        ``{"weights_sha256", "onnx_sha256", "opset", "torch", "checks": {...}}``; a new export
        has no checks yet.
    """
    record = read_record(key)
    if record is not None:
        return record
    export_onnx(network, key.onnx_path)
    record = {
        "weights_sha256": key.weights_sha256,
        "onnx_sha256": file_sha256(key.onnx_path),
        "opset": OPSET,
        "torch": torch.__version__,
        "checks": {},
    }
    write_record(key, record)
    prune(key)
    return record


def prune(key: ExportKey) -> list[Path]:
    """Remove all but the ``KEEP_PER_NAME`` newest exports of ``key.name`` (never ``key``'s).

    Returns the removed ONNX files.

    Parameters
    ----------
    key : ExportKey
        The export's key (:func:`export_key`).
    """
    prefix = f"{key.name}-"
    others = [
        path
        for path in exports_dir().glob(f"{prefix}*-opset*.onnx")
        if path != key.onnx_path and path.name[len(prefix) :].count("-") == 2
    ]  # "<sha256>-<config hash>-opset<N>.onnx": not the exports of "<name>-something"
    others.sort(key=lambda path: path.stat().st_mtime_ns, reverse=True)
    removed = others[KEEP_PER_NAME - 1 :]
    for path in removed:
        for stale in (path, path.with_suffix(".json")):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
    return removed
