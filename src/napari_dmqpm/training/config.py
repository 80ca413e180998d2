"""``TrainConfig``: everything that defines a training run, frozen, keyword-only, JSON round trip.

A run is its config plus its seed: the checkpoint folder keeps ``train_config.json`` next to
``last/`` and ``best/``, and a run restarted with the same folder resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_dmqpm._config import config_from_dict, config_to_dict
from napari_dmqpm.model.config import ModelConfig
from napari_dmqpm.training.augment import AugmentConfig
from napari_dmqpm.training.targets import TargetConfig

DENSITIES = ("sparse", "medium", "dense", "confluent")
DEVICES = ("auto", "cpu", "cuda", "mps")


def _pair(name: str, value: Any, *, positive: bool = True) -> tuple:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value):
        raise ValueError(f"{name} must be two finite numbers; got {name}={value!r}")
    if value[0] > value[1] or (positive and value[0] <= 0):
        raise ValueError(f"{name} must be (low, high) with 0 < low <= high; got {name}={value!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class SimulatorData:
    """Training fields simulated on the fly, new ones every epoch.

    Parameters
    ----------
    densities : tuple of str
        Densities drawn uniformly for each field (``"sparse"`` to ``"confluent"``).
    field_shape : (int, int)
        Rows and columns of each simulated field (patches are cut from it).
    pixel_size_um : (float, float)
        Range of the pixel size drawn per field, µm; at the simulator's default cell area
        (300 µm²) 0.45-0.9 µm gives cell diameters of about 44 to 22 pixels.
    fields_per_epoch : int
        Fields simulated per epoch (each gives ``batch_size * iterations / fields`` patches).
    n_val_fields : int
        Fixed validation fields (drawn once from the seed, one density after the other).
    val_shape : (int, int)
        Shape of the validation fields.
    overrides : dict
        Extra ``SimulationConfig`` fields (JSON-native), e.g. ``{"debris_count": 2}``.
    """

    densities: tuple[str, ...] = DENSITIES
    field_shape: tuple[int, int] = (384, 384)
    pixel_size_um: tuple[float, float] = (0.45, 0.9)
    fields_per_epoch: int = 8
    n_val_fields: int = 4
    val_shape: tuple[int, int] = (256, 256)
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        densities = tuple(self.densities)
        if not densities or any(d not in DENSITIES for d in densities):
            raise ValueError(
                f"densities must be a non-empty subset of {DENSITIES}; got {densities!r}"
            )
        object.__setattr__(self, "densities", densities)
        for name in ("field_shape", "val_shape"):
            value = tuple(int(v) for v in getattr(self, name))
            if len(value) != 2 or min(value) < 16:
                raise ValueError(f"{name} must be (rows, cols) >= 16; got {name}={value!r}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "pixel_size_um", _pair("pixel_size_um", self.pixel_size_um))
        for name in ("fields_per_epoch", "n_val_fields"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer; got {getattr(self, name)!r}")
        object.__setattr__(self, "overrides", dict(self.overrides))


#: ``TrainConfig.select_by`` -> the score of a validation (foreground Dice, instance F1).
SELECTION_SCORES = {
    "dice": lambda dice, f1: dice,
    "dice_f1": lambda dice, f1: (dice + f1) / 2.0,
}


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One training run: model, data, schedule, optimiser (nnU-Net's), checkpoints, device.

    Parameters
    ----------
    model : ModelConfig or None
        Architecture of a model trained from scratch (its normalization is estimated on the
        training data before epoch 0). None with no ``base_checkpoint``: ``ModelConfig()``.
    base_checkpoint : str or None
        Checkpoint folder, or registered model name, to fine-tune from (its architecture,
        normalization and post-processing thresholds are kept).
    simulator : SimulatorData or None
        Simulated training data; None for none.
    folders : tuple of str
        Folders of images with ``<stem>_labels.tif`` (see ``data.read_folder``).
    val_folders : tuple of str
        Validation folders; when empty, validation is the simulator's fixed fields, or else
        a held-out split of the training images (``val_fraction``).
    read_options : dict
        Options of :func:`napari_dmqpm.io.read_acquisition` for the folders' images, e.g.
        ``{"phase_unit": "pg_per_um2", "wavelength_um": 0.65}``.
    val_fraction : float
        Share held out for validation (whole images from 5 images up, else a strip of each).
    patch_size : (int, int)
        Training patch rows and columns (multiples of the model's ``required_divisor``).
    batch_size : int
        Patches per iteration.
    epochs, iterations_per_epoch : int
        Length of the run (the poly schedule runs over ``epochs * iterations_per_epoch``).
    minutes : float or None
        Wall-time budget: training stops (after validating) once it is spent, and the
        learning rate decays over whichever of budget and iterations ends first.
    learning_rate, momentum, weight_decay, poly_exponent : float
        SGD with Nesterov momentum; ``lr = learning_rate * (1 - progress) ** poly_exponent``.
    grad_clip : float
        Gradient-norm clipping (nnU-Net: 12); 0 turns it off.
    foreground_fraction : float
        Share of patches of each batch centred on a cell (nnU-Net: 0.33).
    augment, targets : AugmentConfig, TargetConfig
        Augmentation and target settings.
    distance_loss, distance_weight : str, float
        Loss of a distance head, if the model has one.
    seed : int
        Seeds torch, numpy and the data (the data of epoch ``e`` depend on ``(seed, e)``).
    checkpoint_dir : str
        Folder holding ``last/``, ``best/``, ``train_config.json`` and ``history.json``.
    device : {"auto", "cpu", "cuda", "mps"}
        Where to train; ``auto`` picks cuda, then mps, then cpu.
    amp : bool
        Mixed precision on CUDA (bf16 where supported, else fp16 with a grad scaler).
    num_workers : int
        DataLoader worker processes (0: in the training process, best on a 2-core CPU).
    validate_every : int
        Validate every this many epochs (and always at the last one).
    select_by : {"dice", "dice_f1"}
        What ``best/`` keeps: the epoch of the best validation foreground Dice, or of the
        best mean of that Dice and the instance F1 at IoU 0.5 (what fine-tuning uses: on a
        few corrected cells the Dice saturates within a few epochs while the splitting of
        touching cells still improves).
    pixel_size_um : float or None
        Pixel size (µm) shared by all training images, recorded with the weights so inference
        can resample other magnifications; None when unknown or mixed (the simulator draws
        one per field). The cell diameter in pixels is always measured and recorded.
    cell_diameter_px : float or None
        The median cell diameter (px) the training images are shown at, when they were
        resampled to it (fine-tuning resamples each image to its base model's trained
        diameter): recorded as the model's trained diameter, the one inference resamples to.
        None: the diameter measured on the training split is recorded.
    """

    model: ModelConfig | None = None
    base_checkpoint: str | None = None
    simulator: SimulatorData | None = field(default_factory=SimulatorData)
    folders: tuple[str, ...] = ()
    val_folders: tuple[str, ...] = ()
    read_options: dict[str, Any] = field(default_factory=dict)
    val_fraction: float = 0.2
    patch_size: tuple[int, int] = (256, 256)
    batch_size: int = 2
    epochs: int = 50
    iterations_per_epoch: int = 50
    minutes: float | None = None
    learning_rate: float = 1e-2
    momentum: float = 0.99
    weight_decay: float = 3e-5
    poly_exponent: float = 0.9
    grad_clip: float = 12.0
    foreground_fraction: float = 0.33
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    targets: TargetConfig = field(default_factory=TargetConfig)
    distance_loss: str = "l1"
    distance_weight: float = 1.0
    seed: int = 0
    checkpoint_dir: str = "runs/dmqpm"
    device: str = "auto"
    amp: bool = True
    num_workers: int = 0
    validate_every: int = 1
    select_by: str = "dice"
    pixel_size_um: float | None = None
    cell_diameter_px: float | None = None

    def __post_init__(self) -> None:
        if self.model is not None and self.base_checkpoint is not None:
            raise ValueError("give model or base_checkpoint, not both")
        object.__setattr__(self, "read_options", dict(self.read_options))
        for name in ("folders", "val_folders"):
            object.__setattr__(self, name, tuple(str(f) for f in getattr(self, name)))
        if self.base_checkpoint is not None:
            object.__setattr__(self, "base_checkpoint", str(self.base_checkpoint))
        object.__setattr__(self, "checkpoint_dir", str(self.checkpoint_dir))
        patch = tuple(int(v) for v in _pair("patch_size", self.patch_size))
        if min(patch) < 16:
            raise ValueError(f"patch_size must be at least 16 pixels; got patch_size={patch}")
        object.__setattr__(self, "patch_size", patch)
        for name in ("batch_size", "epochs", "iterations_per_epoch", "validate_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {name}={value!r}")
        self._check_numbers()

    def _check_numbers(self) -> None:
        checks = {
            "val_fraction": 0 < self.val_fraction < 1,
            "minutes": self.minutes is None or self.minutes > 0,
            "learning_rate": self.learning_rate > 0,
            "momentum": 0 <= self.momentum < 1,
            "weight_decay": self.weight_decay >= 0,
            "poly_exponent": self.poly_exponent >= 0,
            "grad_clip": self.grad_clip >= 0,
            "foreground_fraction": 0 <= self.foreground_fraction <= 1,
            "distance_loss": self.distance_loss in ("l1", "mse"),
            "select_by": self.select_by in SELECTION_SCORES,
            "distance_weight": self.distance_weight >= 0,
            "device": self.device in DEVICES,
            "num_workers": isinstance(self.num_workers, int) and self.num_workers >= 0,
            "seed": isinstance(self.seed, int) and self.seed >= 0,
            "pixel_size_um": self.pixel_size_um is None or self.pixel_size_um > 0,
            "cell_diameter_px": self.cell_diameter_px is None or self.cell_diameter_px > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name} is out of range; got {name}={getattr(self, name)!r}")

    @property
    def total_iterations(self) -> int:
        """``epochs * iterations_per_epoch``: the length of the poly schedule."""
        return self.epochs * self.iterations_per_epoch

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again).

        Parameters
        ----------
        **changes
            New values of fields, by name.
        """
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-native dictionary; inverse of ``from_dict``."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from ``to_dict`` output; unknown keys and wrong JSON types raise ``ValueError``.

        Parameters
        ----------
        data : dict
            Field name -> JSON value, as :meth:`to_dict` writes.
        """
        return config_from_dict(cls, data)

    def save(self, path: str | Path) -> Path:
        """Write the config as JSON (pretty-printed) and return the path.

        Parameters
        ----------
        path : str or Path
            The JSON file to write.
        """
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a config written by ``save``.

        Parameters
        ----------
        path : str or Path
            A JSON file written by :meth:`save`.

        Raises
        ------
        ValueError
            Naming the file: not JSON, not an object, or a value of the wrong type or range.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not a JSON training config ({error})") from None
        if not isinstance(data, dict):
            raise ValueError(
                f"{path}: a training config is a JSON object; got {type(data).__name__}"
            )
        try:
            return cls.from_dict(data)
        except (TypeError, AttributeError, KeyError, ValueError) as error:
            message = str(error).replace("__init__() ", "").replace("argument after ** ", "")
            raise ValueError(f"{path}: {message}") from None
