"""Models by name: the shipped weights and the user's fine-tuned models, through one registry.

Where models live, searched in this order (the first folder holding a name wins):

1. shipped, installed package: ``napari_dmqpm/_weights/<name>/`` (the wheel packs the repository's
   ``weights/`` there);
2. shipped, source checkout: ``<repo>/weights/<name>/``;
3. the user's models: ``$NAPARI_DMQPM_MODELS/<name>/`` when that variable is set, else
   ``<platformdirs user data dir>/napari-dmqpm/models/<name>/``.

Each model is a checkpoint folder (see :mod:`napari_dmqpm.model.checkpoint`). Loading checks the
weights' sha256 against the hashes recorded in the folder (``config.json`` and ``SHA256SUMS``),
never executes pickled code, and is cached per (folder, device) until the files change.

Importing this module, listing and finding models import no torch: a model's name, inputs and
sizes come from its ``config.json``, read with the json module
(:mod:`napari_dmqpm.model.checkpoint_config`). Only :func:`load_model` imports torch and the
checkpoint, device and network modules, when it is called.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .checkpoint_config import CONFIG_FILE, WEIGHTS_FILE, read_checkpoint_config

if TYPE_CHECKING:  # torch and the network are imported by the functions that load
    import torch

    from .network import DMQPMNet

#: Environment variable that overrides the user models folder.
MODELS_ENV = "NAPARI_DMQPM_MODELS"
#: The shipped model that fits each input kind of docs/formats.md. Angle images get
#: ``dmqpm-fast``: as accurate as ``dmqpm-default`` (F1@0.5 within 0.005 on the held-out
#: simulated fields and the real maps of docs/results.md) at a fraction of its time per frame
#: on a CPU (docs/performance.md, "The model a CPU user gets"; issue 17).
DEFAULT_MODELS: dict[str, str] = {
    "ssqpm-stack": "dmqpm-fast",
    "angles-stack": "dmqpm-fast",
    "raw-mosaic": "dmqpm-fast",
    "phase-map": "phase-only",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


class ModelNotFoundError(FileNotFoundError):
    """No model of that name in any models folder (the message lists what there is)."""


class RegistryWarning(UserWarning):
    """A folder in a models folder looks like a model but its config cannot be read."""


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """What the registry knows about one model without loading its weights.

    Attributes
    ----------
    name : str
        The folder name, used to ask for the model.
    path : Path
        The checkpoint folder.
    source : {"shipped", "user", "path"}
        Shipped with the package, fine-tuned by the user, or given as a folder path.
    inputs : {"both", "angles", "phase"}
        What the network takes (``ModelConfig.inputs``).
    sha256 : str or None
        Hex sha256 of ``model.safetensors`` as recorded in ``config.json``.
    cell_diameter_px : float or None
        Typical cell diameter (pixels) in the training images: inputs are resampled to it.
    pixel_size_um : float or None
        Pixel size (µm) of the training images, where they had a single one.
    postprocessing : dict
        The post-processing thresholds tuned for these weights.
    """

    name: str
    path: Path
    source: str
    inputs: str
    sha256: str | None
    cell_diameter_px: float | None = None
    pixel_size_um: float | None = None
    postprocessing: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_angles(self) -> bool:
        """True when the network needs the four angle images (not phase-only input)."""
        return self.inputs in ("both", "angles")

    @property
    def needs_phase(self) -> bool:
        """True when the network needs the phase map."""
        return self.inputs in ("both", "phase")


@dataclass(frozen=True)
class LoadedModel:
    """A network ready for inference, with where it came from.

    Attributes
    ----------
    info : ModelInfo
    network : DMQPMNet
        In eval mode on ``device``. Shared through the cache: do not train it in place.
    device : torch.device
    checkpoint : dict
        The parsed ``config.json``.
    """

    info: ModelInfo
    network: DMQPMNet
    device: torch.device
    checkpoint: dict[str, Any]


def shipped_model_dirs() -> list[Path]:
    """The folders of shipped models, installed package first (existing ones only)."""
    candidates = [_PACKAGE_DIR / "_weights", _PACKAGE_DIR.parents[1] / "weights"]
    return [path for path in candidates if path.is_dir()]


def user_models_dir() -> Path:
    """The user's models folder: ``$NAPARI_DMQPM_MODELS``, else the platformdirs data folder.

    It may not exist yet.
    """
    override = os.environ.get(MODELS_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs

    return platformdirs.user_data_path("napari-dmqpm", appauthor=False) / "models"


def _number(content: dict[str, Any], key: str) -> float | None:
    for source in (content, content.get("training") or {}):
        value = source.get(key) if isinstance(source, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def _info(folder: Path, source: str) -> ModelInfo:
    content = read_checkpoint_config(folder)
    model = content.get("model") or {}
    post = content.get("postprocessing") or {}
    return ModelInfo(
        name=folder.name,
        path=folder,
        source=source,
        inputs=str(model.get("inputs", "both")),
        sha256=content.get("sha256"),
        cell_diameter_px=_number(content, "cell_diameter_px"),
        pixel_size_um=_number(content, "pixel_size_um"),
        postprocessing=dict(post) if isinstance(post, dict) else {},
    )


def _scan(folder: Path, source: str) -> list[ModelInfo]:
    found = []
    for child in sorted(folder.iterdir()) if folder.is_dir() else ():
        if child.name.startswith(".") or not (child / CONFIG_FILE).is_file():
            continue
        try:
            found.append(_info(child, source))
        except ValueError as err:
            warnings.warn(f"skipping model folder {child}: {err}", RegistryWarning, stacklevel=3)
    return found


def list_models() -> list[ModelInfo]:
    """Every model the registry can find, shipped ones first, one entry per name.

    Returns
    -------
    list of ModelInfo
        A user model with the name of a shipped one is hidden by it.
    """
    models: dict[str, ModelInfo] = {}
    sources = [(d, "shipped") for d in shipped_model_dirs()] + [(user_models_dir(), "user")]
    for folder, source in sources:
        for info in _scan(folder, source):
            models.setdefault(info.name, info)
    return list(models.values())


def find_model(name_or_path: str | os.PathLike) -> ModelInfo:
    """The :class:`ModelInfo` of a model name or a checkpoint folder path.

    A path-like, or a string with a path separator, is a folder; any other string is a name,
    or, if no model has that name, a folder relative to the working directory.

    Parameters
    ----------
    name_or_path : str or path-like
        A model name (``"dmqpm-default"``, a user model) or a checkpoint folder.

    Raises
    ------
    ModelNotFoundError
        For an unknown name; the message lists the available models and the folders searched.
    CheckpointError
        For a folder that is not a readable checkpoint.
    """
    text = os.fspath(name_or_path)
    if not text.strip():
        raise ValueError(f"model must be a model name or a checkpoint folder; got {text!r}")
    if isinstance(name_or_path, os.PathLike) or "/" in text or "\\" in text:
        return _info(Path(name_or_path), "path")
    models = list_models()
    for info in models:
        if info.name == text:
            return info
    if Path(text).is_dir():
        return _info(Path(text), "path")
    names = [f"{m.name} ({m.source})" for m in models]
    folders = [str(d) for d in shipped_model_dirs()] + [str(user_models_dir())]
    raise ModelNotFoundError(
        f"no model named {text!r}. Available: {', '.join(names) or 'none'}"
        f"{'' if names else ' (this installation ships no trained weights yet)'}. "
        f"Searched {', '.join(folders)}; pass a checkpoint folder path, or set {MODELS_ENV}."
    )


def default_model_for(kind: str) -> str:
    """Name of the shipped model that fits an input kind.

    Parameters
    ----------
    kind : {"ssqpm-stack", "angles-stack", "raw-mosaic", "phase-map"}
        ``Acquisition.kind``.

    Examples
    --------
    >>> default_model_for("phase-map")
    'phase-only'
    """
    if kind not in DEFAULT_MODELS:
        raise ValueError(f"kind must be one of {tuple(DEFAULT_MODELS)}; got kind={kind!r}")
    return DEFAULT_MODELS[kind]


_CACHE: dict[tuple, LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


def _stamp(folder: Path) -> tuple:
    stats = [(folder / name).stat() for name in (CONFIG_FILE, WEIGHTS_FILE)]
    return tuple((s.st_mtime_ns, s.st_size) for s in stats)


def load_model(
    name_or_path: str | os.PathLike, *, device: str | torch.device = "auto"
) -> LoadedModel:
    """Load a model by name or folder, verifying its sha256; cached per (folder, device).

    Parameters
    ----------
    name_or_path : str or path-like
        A registry name (see :func:`list_models`) or a checkpoint folder.
    device : {"auto", "cpu", "cuda", "mps"}, "cuda:<index>" or torch.device
        See :func:`~napari_dmqpm.model.device.resolve_device`. On CUDA the network is put in
        channels-last memory format.

    Returns
    -------
    LoadedModel
        The same object for the same folder and device while its files are unchanged.

    Raises
    ------
    ModelNotFoundError
        Unknown name.
    CheckpointError
        Missing or corrupt files, or weights whose sha256 does not match the recorded one.
    """
    import torch

    from .checkpoint import load_checkpoint
    from .device import resolve_device

    info = find_model(name_or_path)
    target = resolve_device(device)
    try:
        key = (str(info.path.resolve()), str(target), info.sha256, _stamp(info.path))
    except OSError:
        key = None  # a missing file: let load_checkpoint say which
    with _CACHE_LOCK:
        if key is not None and key in _CACHE:
            return _CACHE[key]
        network, content = load_checkpoint(info.path, device=target, expected_sha256=info.sha256)
        if target.type == "cuda":
            # torch's overloads of Module.to omit memory_format, which Module.to accepts
            network = network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        loaded = LoadedModel(info, network, target, content)
        if key is not None:
            for old in [k for k in _CACHE if k[:2] == key[:2]]:
                del _CACHE[old]
            _CACHE[key] = loaded
    return loaded


def clear_model_cache() -> None:
    """Forget every cached model (frees their memory once nothing else holds them)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def user_model_path(name: str) -> Path:
    """Where a new user model called ``name`` goes (for fine-tuning); it is not created.

    Parameters
    ----------
    name : str
        The user model's name (a plain folder name).

    Raises
    ------
    ValueError
        For a name that is not a plain folder name (letters, digits, ``.``, ``_``, ``-``), or
        the name of a shipped model, which is never written over.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            "name must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or "
            f"digit; got name={name!r}"
        )
    shipped = {m.name for d in shipped_model_dirs() for m in _scan(d, "shipped")}
    if name in shipped:
        raise ValueError(f"name={name!r} is a shipped model and cannot be written over")
    return user_models_dir() / name


def check_new_user_model(name: str) -> Path:
    """Check, before any work, that a user model called ``name`` can be installed.

    The name must be free (:func:`user_model_path`) and the user models folder writable: it
    is created if missing and a probe file is written and removed there.

    Parameters
    ----------
    name : str
        The user model's name (a plain folder name).

    Returns
    -------
    Path
        ``user_model_path(name)`` (not created).

    Raises
    ------
    ValueError
        An invalid name or that of a shipped model.
    FileExistsError
        A user model of that name exists.
    PermissionError
        The user models folder cannot be created or written (read-only, not a folder).
    """
    import tempfile

    destination = user_model_path(name)
    if destination.exists() or destination.is_symlink():
        raise FileExistsError(
            f"a user model named {name!r} exists ({destination}); choose another name"
        )
    folder = destination.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(prefix=".write-probe-", dir=folder):
            pass
    except OSError as error:
        raise PermissionError(
            f"cannot install a user model in {folder} ({error.strerror or error}); set "
            f"{MODELS_ENV} to a writable folder"
        ) from None
    return destination
