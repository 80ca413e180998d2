"""JSON-native configuration of DM-QPMNet: architecture, output heads and input normalization.

Everything a checkpoint needs to rebuild its network lives in one frozen, keyword-only
:class:`ModelConfig` that round-trips through JSON (``ModelConfig.from_dict(c.to_dict()) == c``).
This module does not import torch; :mod:`napari_dmqpm.model.blocks` maps the names used here
(``norm="instance"``, ``nonlin="leaky_relu"``) to torch classes in one helper.

Stage convention (nnU-Net's): stage ``s`` is the ``s``-th resolution level of the encoder. Its
first convolution has stride ``strides[s]``, so stage ``s`` works at ``H / prod(strides[:s+1])``.
With the default ``strides=(1, 2, 2, 2, 2)`` stage 0 is full resolution, stage 1 is H/2,
**stage 2 is H/4** (the paper's fusion point), stage 3 is H/8 and stage 4 (the bottleneck) H/16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from napari_dmqpm._config import config_from_dict, config_to_dict

FUSIONS = ("early", "concat", "mha", "bidirectional-mha")
INPUTS = ("both", "angles", "phase")
ATTENTIONS = ("global", "kv-reduced", "windowed")
POSITIONAL = ("conv", "none")
NORMS = ("instance", "batch", "group", "none")
NONLINS = ("leaky_relu", "relu", "gelu")
HEAD_KINDS = ("softmax", "sigmoid", "linear")
N_ANGLES = 4


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {name}={value!r}")


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {name}={value!r}")


def _check_finite(name: str, values: tuple) -> None:
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise ValueError(f"{name} must hold finite numbers; got {name}={values!r}")


@dataclass(frozen=True, kw_only=True)
class HeadConfig:
    """One named group of output channels and how to read it.

    Parameters
    ----------
    name : str
        Key of this group in :func:`napari_dmqpm.model.split_outputs`, e.g. ``"classes"``.
    kind : {"softmax", "sigmoid", "linear"}
        ``softmax``: mutually exclusive classes (logits, one channel per class);
        ``sigmoid``: independent binary maps (logits); ``linear``: regression targets
        such as a distance transform.
    channels : tuple of str
        The meaning of each channel, in order; its length is the number of channels.
    """

    name: str
    kind: str
    channels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"head name must be a non-empty string; got name={self.name!r}")
        _check_choice("kind", self.kind, HEAD_KINDS)
        object.__setattr__(self, "channels", tuple(self.channels))
        if not self.channels or len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channels must be unique names; got channels={self.channels!r}")
        if self.kind == "softmax" and len(self.channels) < 2:
            raise ValueError(f"a softmax head needs >= 2 channels; got channels={self.channels!r}")


#: Background / cell interior / cell boundary, the default instance-aware target.
THREE_CLASS = HeadConfig(
    name="classes", kind="softmax", channels=("background", "interior", "boundary")
)


@dataclass(frozen=True, kw_only=True)
class NormalizationConfig:
    """Input normalization, estimated on the training set and stored with the weights.

    Angles are z-scored per channel with dataset statistics. Phase is clipped to
    ``[phase_low, phase_high]`` (robust quantiles of the training phase) and then z-scored,
    as nnU-Net does for CT. The defaults are placeholders (identity angles, a wide phase
    window); :func:`napari_dmqpm.model.estimate_normalization` computes real values.

    Parameters
    ----------
    angle_mean, angle_std : tuple of 4 float
        Per-channel mean and standard deviation of the intensities at 0, 45, 90, 135 degrees
        (camera counts or whatever unit the training stacks use). ``angle_std > 0``.
    phase_low, phase_high : float
        Clipping window in radians, ``phase_low < phase_high``.
    phase_mean, phase_std : float
        Mean and standard deviation (radians) of the clipped training phase. ``phase_std > 0``.
    low_percentile, high_percentile : float
        The percentiles ``phase_low`` and ``phase_high`` were estimated at (a record).
    """

    angle_mean: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    angle_std: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    phase_low: float = -2.0
    phase_high: float = 12.0
    phase_mean: float = 0.0
    phase_std: float = 1.0
    low_percentile: float = 0.5
    high_percentile: float = 99.5

    def __post_init__(self) -> None:
        for name in ("angle_mean", "angle_std"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != N_ANGLES:
                raise ValueError(f"{name} must have {N_ANGLES} values; got {name}={value!r}")
            _check_finite(name, value)
            object.__setattr__(self, name, value)
        scalars: tuple[str, ...] = ("phase_low", "phase_high", "phase_mean", "phase_std")
        scalars += ("low_percentile", "high_percentile")
        _check_finite(", ".join(scalars), tuple(getattr(self, n) for n in scalars))
        for name in scalars:
            object.__setattr__(self, name, float(getattr(self, name)))
        if min(self.angle_std) <= 0 or self.phase_std <= 0:
            raise ValueError(
                f"angle_std and phase_std must be > 0; got angle_std={self.angle_std}, "
                f"phase_std={self.phase_std}"
            )
        if not self.phase_low < self.phase_high:
            raise ValueError(
                f"phase_low must be < phase_high; got {self.phase_low} >= {self.phase_high}"
            )
        if not 0 <= self.low_percentile < self.high_percentile <= 100:
            raise ValueError(
                "need 0 <= low_percentile < high_percentile <= 100; got "
                f"({self.low_percentile}, {self.high_percentile})"
            )


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Architecture of DM-QPMNet and of its ablations, JSON-native.

    Parameters
    ----------
    inputs : {"both", "angles", "phase"}
        Which inputs the network takes: the four angle images (4 channels), the phase map
        (1 channel), or both. A single input means a single-encoder U-Net and needs
        ``fusion="early"``.
    fusion : {"early", "concat", "mha", "bidirectional-mha"}
        ``early``: one encoder on the concatenated channels (the nnU-Net baseline);
        ``concat``: two encoders, concatenation + 1x1 conv at ``fusion_stage``;
        ``mha``: two encoders, cross-attention with angle queries and phase keys/values
        (the paper); ``bidirectional-mha``: attention both ways, concatenated and projected.
    fusion_stage : int
        Stage (1, 2 or 3) whose output is fused; the encoders run separately up to and
        including it, and a shared tail covers the later stages. Ignored for ``early``.
    features : tuple of int
        Channels of each stage, from stage 0 (full resolution, half with a strided stem) to
        the bottleneck.
    strides : tuple of int
        Stride of the first convolution of each stage. ``strides[0] = 1`` (nnU-Net's choice)
        keeps stage 0 at full resolution; ``strides[0] = 2`` is a strided stem: every stage
        works at half the resolution, about 4x cheaper per pixel, and a
        :class:`~napari_dmqpm.model.decoder.SubPixelHead` predicts the output at the input's
        size. Stage ``s`` works at ``H / prod(strides[:s+1])``, so the paper's H/4 fusion is
        ``fusion_stage=1`` with a strided stem.
    n_conv_per_stage, n_conv_per_stage_decoder : int
        3x3 convolutions per encoder stage and per decoder stage.
    norm : {"instance", "batch", "group", "none"}
        Normalization after each convolution (affine).
    nonlin : {"leaky_relu", "relu", "gelu"}
        Activation after each normalization (LeakyReLU has slope 0.01).
    n_heads : int
        Attention heads; must divide ``features[fusion_stage]``.
    mlp_ratio : float
        Hidden width of the fusion MLP relative to its channels.
    attention : {"global", "kv-reduced", "windowed"}
        ``global``: every query attends to every key; ``kv-reduced``: keys and values are
        average-pooled by ``kv_reduction`` per axis first (PVT/SegFormer spatial-reduction
        attention); ``windowed`` (default): attention inside non-overlapping ``window_size``
        squares, whose cost per pixel and context do not depend on the tile size (measured
        in ``docs/model.md``).
    kv_reduction : int
        Pooling factor per axis for ``kv-reduced`` (1 gives global attention).
    window_size : int
        Window side in tokens for ``windowed``.
    positional : {"conv", "none"}
        ``conv`` adds a depthwise 3x3 convolution (conditional positional encoding) to both
        token maps before attention, so attention knows where tokens are.
    heads : tuple of HeadConfig
        The named output channel groups; the network predicts ``n_outputs`` channels.
    deep_supervision : bool
        Return one output per decoder stage (highest resolution first) in training mode.
    normalization : NormalizationConfig
        Input normalization applied inside ``forward``.

    Examples
    --------
    >>> config = ModelConfig(fusion="concat", fusion_stage=1)
    >>> ModelConfig.from_dict(config.to_dict()) == config
    True
    >>> config.stage_resolutions()
    (1, 2, 4, 8, 16)
    """

    inputs: str = "both"
    fusion: str = "mha"
    fusion_stage: int = 2
    features: tuple[int, ...] = (24, 48, 96, 192, 320)
    strides: tuple[int, ...] = (1, 2, 2, 2, 2)
    n_conv_per_stage: int = 2
    n_conv_per_stage_decoder: int = 2
    norm: str = "instance"
    nonlin: str = "leaky_relu"
    n_heads: int = 4
    mlp_ratio: float = 2.0
    attention: str = "windowed"
    kv_reduction: int = 4
    window_size: int = 8
    positional: str = "conv"
    heads: tuple[HeadConfig, ...] = (THREE_CLASS,)
    deep_supervision: bool = True
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "strides", tuple(self.strides))
        object.__setattr__(self, "heads", tuple(self.heads))
        for name, choices in (
            ("inputs", INPUTS),
            ("fusion", FUSIONS),
            ("attention", ATTENTIONS),
            ("positional", POSITIONAL),
            ("norm", NORMS),
            ("nonlin", NONLINS),
        ):
            _check_choice(name, getattr(self, name), choices)
        self._check_stages()
        self._check_fusion()
        if not all(isinstance(h, HeadConfig) for h in self.heads) or not self.heads:
            raise ValueError(f"heads must be a non-empty tuple of HeadConfig; got {self.heads!r}")
        if len({h.name for h in self.heads}) != len(self.heads):
            raise ValueError(f"head names must be unique; got {[h.name for h in self.heads]}")
        if not isinstance(self.normalization, NormalizationConfig):
            raise ValueError(
                f"normalization must be a NormalizationConfig; got {self.normalization!r}"
            )
        if not isinstance(self.deep_supervision, bool):
            raise ValueError(f"deep_supervision must be a bool; got {self.deep_supervision!r}")

    def _check_stages(self) -> None:
        if len(self.features) < 2 or len(self.strides) != len(self.features):
            raise ValueError(
                "features and strides need the same length >= 2; got "
                f"features={self.features}, strides={self.strides}"
            )
        for name in ("features", "strides"):
            for value in getattr(self, name):
                _check_positive_int(name, value)
        if self.strides[0] not in (1, 2):
            raise ValueError(
                f"strides[0] must be 1 (full-resolution stage 0) or 2 (strided stem); "
                f"got strides={self.strides}"
            )
        for name in ("n_conv_per_stage", "n_conv_per_stage_decoder", "n_heads"):
            _check_positive_int(name, getattr(self, name))
        for name in ("kv_reduction", "window_size"):
            _check_positive_int(name, getattr(self, name))
        if not (isinstance(self.mlp_ratio, (int, float)) and 0 < self.mlp_ratio <= 16):
            raise ValueError(f"mlp_ratio must be in (0, 16]; got mlp_ratio={self.mlp_ratio!r}")

    def _check_fusion(self) -> None:
        if self.inputs != "both" and self.fusion != "early":
            raise ValueError(
                f"inputs={self.inputs!r} uses a single encoder and needs fusion='early'; "
                f"got fusion={self.fusion!r}"
            )
        if self.fusion == "early":
            return
        if self.fusion_stage not in (1, 2, 3) or self.fusion_stage >= self.n_stages:
            raise ValueError(
                f"fusion_stage must be 1, 2 or 3 and < n_stages={self.n_stages}; "
                f"got fusion_stage={self.fusion_stage!r}"
            )
        width = self.features[self.fusion_stage]
        if self.fusion != "concat" and width % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide features[fusion_stage]={width}")

    @property
    def n_stages(self) -> int:
        """Number of encoder stages (resolution levels), bottleneck included."""
        return len(self.features)

    @property
    def n_outputs(self) -> int:
        """Output channels of the network: the channels of all heads together."""
        return sum(len(h.channels) for h in self.heads)

    @property
    def n_input_channels(self) -> int:
        """Channels of the (concatenated) input: 5 for both, 4 for angles, 1 for phase."""
        return {"both": N_ANGLES + 1, "angles": N_ANGLES, "phase": 1}[self.inputs]

    @property
    def is_dual(self) -> bool:
        """True when two encoders (angles and phase) are fused at ``fusion_stage``."""
        return self.inputs == "both" and self.fusion != "early"

    @property
    def required_divisor(self) -> int:
        """Input rows and columns must be multiples of this (the product of the strides)."""
        return math.prod(self.strides)

    def stage_resolutions(self) -> tuple[int, ...]:
        """Downsampling factor of each stage relative to the input (1 = full resolution)."""
        return tuple(math.prod(self.strides[: s + 1]) for s in range(self.n_stages))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (tuples become lists); inverse of :meth:`from_dict`."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ModelConfig:
        """Build a config from :meth:`to_dict` output (``ValueError`` for unknown keys).

        ``data`` may be any JSON value read from a file: one that is not a dict raises
        ``ValueError`` too.

        Parameters
        ----------
        data : dict
            Field name -> JSON value, as :meth:`to_dict` writes.
        """
        return config_from_dict(cls, data)
