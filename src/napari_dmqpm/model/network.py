"""DM-QPMNet and its ablations, all from one :class:`~napari_dmqpm.model.config.ModelConfig`.

References
----------
.. [1] DM-QPMNet: dual-modality fusion network for cell segmentation in single-shot
   polarization quantitative phase microscopy, arXiv:2511.00218.
.. [2] F. Isensee et al., "nnU-Net: a self-configuring method for deep learning-based
   biomedical image segmentation", Nature Methods 18, 203-211 (2021).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import init_weights
from .config import N_ANGLES, HeadConfig, ModelConfig
from .decoder import SubPixelHead, UNetDecoder
from .encoder import DualEncoder, SingleEncoder
from .normalization import normalize_angles, normalize_phase


class DMQPMNet(nn.Module):
    """Dual-encoder U-Net fusing polarization angle images and phase (and its ablations).

    Parameters
    ----------
    config : ModelConfig
        Architecture, heads and input normalization. ``fusion="early"`` or a single input gives
        a plain nnU-Net-style U-Net; otherwise two encoders meet at ``config.fusion_stage``.

    Notes
    -----
    ``forward(angles, phase)`` takes raw inputs: angles (B, 4, M, N) in the training data's
    intensity unit and phase (B, 1, M, N) in radians; the network normalizes them itself
    with ``config.normalization``. Either may be None when ``config.inputs`` does not use it.
    M and N must be multiples of :attr:`required_divisor`. It returns (B, n_outputs, M, N)
    logits, or in training mode with deep supervision a list of outputs, highest resolution
    first. With a strided stem (``strides[0] = 2``) a
    :class:`~napari_dmqpm.model.decoder.SubPixelHead` produces the full-resolution logits
    and the decoder's heads follow them in that list.

    Examples
    --------
    >>> config = ModelConfig(features=(4, 8, 16), strides=(1, 2, 2), n_heads=2, fusion_stage=1)
    >>> net = DMQPMNet(config).eval()
    >>> net(torch.zeros(1, 4, 32, 32), torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 3, 32, 32])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig; got {type(config).__name__}")
        self.config = config
        self.encoder = DualEncoder(config) if config.is_dual else SingleEncoder(config)
        self.decoder = UNetDecoder(
            self.encoder,
            config.n_outputs,
            n_conv_per_stage=config.n_conv_per_stage_decoder,
            norm=config.norm,
            nonlin=config.nonlin,
            deep_supervision=config.deep_supervision,
        )
        self.full_resolution = None
        if config.strides[0] > 1:
            self.full_resolution = SubPixelHead(
                config.features[0], config.n_outputs, stride=config.strides[0]
            )
        self.apply(init_weights)

    def forward(
        self, angles: torch.Tensor | None = None, phase: torch.Tensor | None = None
    ) -> torch.Tensor | list[torch.Tensor]:
        """Logits for raw (B, 4, M, N) angles and (B, 1, M, N) phase (see the class notes).

        Parameters
        ----------
        angles : Tensor of shape (B, 4, M, N), optional
            Raw angle images; None when the config does not use them.
        phase : Tensor of shape (B, 1, M, N), optional
            Raw phase in radians; None when the config does not use it.
        """
        skips = self.encoder(*self.normalize_inputs(angles, phase))
        if self.full_resolution is None:
            return self.decoder(skips)
        features, outputs = self.decoder.decode(skips)
        logits = self.full_resolution(features)
        return [logits, *outputs] if outputs else logits

    def normalize_inputs(
        self, angles: torch.Tensor | None, phase: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Check the inputs against ``config.inputs`` and normalize them.

        Parameters
        ----------
        angles : Tensor of shape (B, 4, M, N), optional
            Raw angle images; None when the config does not use them.
        phase : Tensor of shape (B, 1, M, N), optional
            Raw phase in radians; None when the config does not use it.

        Raises
        ------
        ValueError
            When an input the config needs is missing, one it does not use is given, or the
            shapes are wrong or not multiples of :attr:`required_divisor`.
        """
        shapes = {}
        for name, tensor, n_channels in (("angles", angles, N_ANGLES), ("phase", phase, 1)):
            needed = self.config.inputs in ("both", name)
            if needed != (tensor is not None):
                raise ValueError(
                    f"this model (inputs={self.config.inputs!r}) "
                    f"{'needs' if needed else 'does not use'} {name}; got "
                    f"{name}={'None' if tensor is None else tuple(tensor.shape)}"
                )
            if tensor is not None:
                shapes[name] = tuple(tensor.shape)
                if tensor.ndim != 4 or tensor.shape[1] != n_channels:
                    raise ValueError(
                        f"{name} must have shape (B, {n_channels}, M, N); "
                        f"got {name}.shape={shapes[name]}"
                    )
        self._check_sizes(shapes)
        norm = self.config.normalization
        return (
            None if angles is None else normalize_angles(angles, norm),
            None if phase is None else normalize_phase(phase, norm),
        )

    def _check_sizes(self, shapes: dict[str, tuple[int, ...]]) -> None:
        if len({(s[0], *s[2:]) for s in shapes.values()}) > 1:
            raise ValueError(
                "angles and phase must share batch, rows and columns; got "
                + ", ".join(f"{name}.shape={shape}" for name, shape in shapes.items())
            )
        name, shape = next(iter(shapes.items()))
        if shape[2] % self.required_divisor or shape[3] % self.required_divisor:
            raise ValueError(
                f"{name} rows and columns must be multiples of {self.required_divisor} "
                f"(pad the input); got {name}.shape={shape}"
            )

    @property
    def required_divisor(self) -> int:
        """Input rows and columns must be multiples of this (the product of the strides)."""
        return self.config.required_divisor

    @property
    def deep_supervision(self) -> bool:
        """Whether training-mode ``forward`` returns one output per decoder stage."""
        return self.decoder.deep_supervision

    @deep_supervision.setter
    def deep_supervision(self, value: bool) -> None:
        self.decoder.deep_supervision = bool(value)

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def split_outputs(logits: torch.Tensor, heads: tuple[HeadConfig, ...]) -> dict[str, torch.Tensor]:
    """Split (B, n_outputs, M, N) logits into the named head groups of the config.

    Parameters
    ----------
    logits : Tensor of shape (B, n_outputs, M, N)
        Network output, channels in the order of ``heads``.
    heads : tuple of HeadConfig
        ``config.heads``.

    Returns
    -------
    dict of str to Tensor of shape (B, len(head.channels), M, N)
        Raw logits (or regression values) per head; apply softmax/sigmoid per ``head.kind``.
    """
    n_outputs = sum(len(h.channels) for h in heads)
    if logits.ndim != 4 or logits.shape[1] != n_outputs:
        raise ValueError(
            f"logits must have shape (B, {n_outputs}, M, N) for these heads; "
            f"got logits.shape={tuple(logits.shape)}"
        )
    parts = torch.split(logits, [len(h.channels) for h in heads], dim=1)
    return {head.name: part for head, part in zip(heads, parts, strict=True)}


def nnunet_default_2d_config(
    n_inputs: int = 5, n_outputs: int = 3, *, n_stages: int = 8
) -> ModelConfig:
    """Config of nnU-Net's default 2D ``PlainConvUNet``: features 32, 64, ... capped at 512.

    Parameters
    ----------
    n_inputs : {5, 4, 1}
        5 = angles + phase (early fusion), 4 = angles only, 1 = phase only.
    n_outputs : int
        Output channels: 3 gives the default background/interior/boundary head, 1 a sigmoid
        foreground head, others a softmax head with generic class names.
    n_stages : int
        Resolution levels; nnU-Net plans 8 for a 512x512 patch (down to 4x4 pixels).

    Returns
    -------
    ModelConfig
        Early fusion, 2 convs per stage (encoder and decoder), InstanceNorm, LeakyReLU.
    """
    inputs = {5: "both", N_ANGLES: "angles", 1: "phase"}
    if n_inputs not in inputs:
        raise ValueError(f"n_inputs must be 5, 4 or 1; got n_inputs={n_inputs!r}")
    if n_outputs == 3:
        heads = ModelConfig().heads
    elif n_outputs == 1:
        heads = (HeadConfig(name="foreground", kind="sigmoid", channels=("foreground",)),)
    else:
        names = tuple(f"class_{i}" for i in range(n_outputs))
        heads = (HeadConfig(name="classes", kind="softmax", channels=names),)
    return ModelConfig(
        inputs=inputs[n_inputs],
        fusion="early",
        features=tuple(min(32 * 2**i, 512) for i in range(n_stages)),
        strides=(1,) + (2,) * (n_stages - 1),
        heads=heads,
    )


def build_nnunet_default_2d(
    n_inputs: int = 5, n_outputs: int = 3, *, n_stages: int = 8
) -> DMQPMNet:
    """nnU-Net's default 2D U-Net (32 -> 512 features) built from our blocks, for benchmarks.

    See :func:`nnunet_default_2d_config` for the parameters.

    Parameters
    ----------
    n_inputs : {5, 4, 1}
        5 = angles + phase (early fusion), 4 = angles only, 1 = phase only.
    n_outputs : int
        Output channels (3: background/interior/boundary).
    n_stages : int
        Resolution levels (8 for nnU-Net's 512x512 patch).
    """
    return DMQPMNet(nnunet_default_2d_config(n_inputs, n_outputs, n_stages=n_stages))
