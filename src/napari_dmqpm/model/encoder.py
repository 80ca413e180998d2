"""Encoders: nnU-Net's plain convolutional encoder, and the dual angle/phase encoder of DM-QPMNet.

Every encoder exposes what the decoder needs, ``output_channels`` and ``strides`` (one entry per
stage, stage 0 first), and its ``forward`` returns one feature map per stage, the skips of the
decoder, the last one being the bottleneck. This follows ``PlainConvEncoder`` of
MIC-DKFZ/dynamic-network-architectures.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvNormAct, StackedConvBlocks
from .config import N_ANGLES, ModelConfig
from .fusion import build_fusion


class PlainConvEncoder(nn.Module):
    """A stack of stages; each is ``n_conv_per_stage`` ConvNormAct, the first one strided.

    Parameters
    ----------
    in_channels : int
        Channels of the input map.
    features : tuple of int
        Channels of each stage.
    strides : tuple of int
        Stride of the first convolution of each stage.
    n_conv_per_stage : int
        Convolutions per stage.
    norm, nonlin : str
        Names understood by :func:`napari_dmqpm.model.blocks.make_norm_and_nonlin`.

    Notes
    -----
    ``forward`` maps (B, in_channels, M, N) to a list with one (B, features[s], M_s, N_s) map per
    stage, ``M_s = M / prod(strides[:s+1])``.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        features: tuple[int, ...],
        strides: tuple[int, ...],
        n_conv_per_stage: int = 2,
        norm: str = "instance",
        nonlin: str = "leaky_relu",
    ) -> None:
        super().__init__()
        if len(features) != len(strides) or not features:
            raise ValueError(f"features={features} and strides={strides} need the same length")
        inputs = (in_channels, *features[:-1])
        self.stages = nn.ModuleList(
            StackedConvBlocks(
                n_conv_per_stage, n_in, n_out, first_stride=stride, norm=norm, nonlin=nonlin
            )
            for n_in, n_out, stride in zip(inputs, features, strides, strict=True)
        )
        self.in_channels = in_channels
        self.output_channels = tuple(features)
        self.strides = tuple(strides)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One feature map per stage, highest resolution first.

        Parameters
        ----------
        x : Tensor of shape (B, in_channels, M, N)
            The input.
        """
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        return skips


class SingleEncoder(nn.Module):
    """One encoder on the channels of all inputs the config uses, concatenated.

    With ``inputs="both"`` this is early fusion (5 channels, the nnU-Net baseline); with one
    input it is a plain single-input U-Net encoder. ``forward(angles, phase)`` takes the
    normalized (B, 4, M, N) angles and (B, 1, M, N) phase, either None when unused.

    Parameters
    ----------
    config : ModelConfig
        Inputs, stages, features, strides and blocks of the encoder.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.encoder = PlainConvEncoder(
            config.n_input_channels,
            features=config.features,
            strides=config.strides,
            n_conv_per_stage=config.n_conv_per_stage,
            norm=config.norm,
            nonlin=config.nonlin,
        )
        self.output_channels = self.encoder.output_channels
        self.strides = self.encoder.strides

    def forward(self, angles: torch.Tensor | None, phase: torch.Tensor | None) -> list:
        """One feature map per stage of the concatenated inputs.

        Parameters
        ----------
        angles : Tensor of shape (B, 4, M, N), optional
            Normalized angle images; None when the config does not use them.
        phase : Tensor of shape (B, 1, M, N), optional
            Normalized phase; None when the config does not use it.
        """
        return self.encoder(torch.cat([t for t in (angles, phase) if t is not None], dim=1))


class DualEncoder(nn.Module):
    """Angle and phase encoders fused at ``fusion_stage``, then a shared tail.

    Stages ``0..k`` (``k = config.fusion_stage``) run separately on the angles (4 channels) and
    the phase (1 channel). The stage-``k`` maps are fused (:mod:`napari_dmqpm.model.fusion`), and
    stages ``k+1..`` run once on the fused map. Skips for the decoder, one per stage:

    - stages ``< k``: both encoders' maps concatenated and compressed by a 1x1 ConvNormAct
      (pre-fusion, dual-source skips);
    - stage ``k``: the fused map; stages ``> k``: the shared tail's maps (post-fusion skips).

    Parameters
    ----------
    config : ModelConfig
        A config with ``inputs="both"`` and a fusion other than ``"early"``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not config.is_dual:
            raise ValueError(
                f"DualEncoder needs inputs='both' and a two-encoder fusion; got "
                f"inputs={config.inputs!r}, fusion={config.fusion!r}"
            )
        stage = config.fusion_stage
        features, strides = config.features[: stage + 1], config.strides[: stage + 1]
        self.angles = self._stages(N_ANGLES, features, strides, config)
        self.phase = self._stages(1, features, strides, config)
        self.merge_skips = nn.ModuleList(
            ConvNormAct(2 * f, f, kernel_size=1, norm=config.norm, nonlin=config.nonlin)
            for f in config.features[:stage]
        )
        self.fusion = build_fusion(config)
        self.tail: PlainConvEncoder | None = None
        if stage + 1 < config.n_stages:
            self.tail = self._stages(
                config.features[stage],
                config.features[stage + 1 :],
                config.strides[stage + 1 :],
                config,
            )
        self.fusion_stage = stage
        self.output_channels = tuple(config.features)
        self.strides = tuple(config.strides)

    @staticmethod
    def _stages(
        in_channels: int, features: tuple[int, ...], strides: tuple[int, ...], config: ModelConfig
    ) -> PlainConvEncoder:
        """A :class:`PlainConvEncoder` of these stages with the config's blocks."""
        return PlainConvEncoder(
            in_channels,
            features=features,
            strides=strides,
            n_conv_per_stage=config.n_conv_per_stage,
            norm=config.norm,
            nonlin=config.nonlin,
        )

    def forward(self, angles: torch.Tensor, phase: torch.Tensor) -> list[torch.Tensor]:
        """One skip per stage from normalized (B, 4, M, N) angles and (B, 1, M, N) phase.

        Parameters
        ----------
        angles : Tensor of shape (B, 4, M, N)
            Normalized angle images.
        phase : Tensor of shape (B, 1, M, N)
            Normalized phase.
        """
        from_angles, from_phase = self.angles(angles), self.phase(phase)
        skips = [
            merge(torch.cat([a, p], dim=1))
            for merge, a, p in zip(self.merge_skips, from_angles, from_phase, strict=False)
        ]
        fused = self.fusion(from_angles[-1], from_phase[-1])
        tail = self.tail(fused) if self.tail is not None else []
        return [*skips, fused, *tail]
