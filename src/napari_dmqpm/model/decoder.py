"""The U-Net decoder, built from an encoder's ``output_channels`` and ``strides``.

As ``UNetDecoder`` of MIC-DKFZ/dynamic-network-architectures: from the bottleneck up, each
decoder stage upsamples with a transposed convolution, concatenates the skip of that
resolution, runs ``n_conv_per_stage`` ConvNormAct units and owns a 1x1 segmentation head. All
heads always exist, so a checkpoint loads with deep supervision on or off. When the stem is
strided, :class:`SubPixelHead` returns the output to the input's resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from .blocks import StackedConvBlocks, make_upsampling


class EncoderShape(Protocol):
    """What the decoder reads of an encoder: channels and stride of each stage."""

    @property
    def output_channels(self) -> Sequence[int]:
        """Channels of each stage's output, shallowest first."""

    @property
    def strides(self) -> Sequence[int]:
        """Stride of each stage relative to the one before."""


class UNetDecoder(nn.Module):
    """Decoder with one segmentation head per stage.

    Parameters
    ----------
    encoder : EncoderShape
        Anything with ``output_channels`` and ``strides`` (one entry per stage).
    n_outputs : int
        Channels of each segmentation head.
    n_conv_per_stage : int
        ConvNormAct units per decoder stage.
    norm, nonlin : str
        Names understood by :func:`napari_dmqpm.model.blocks.make_norm_and_nonlin`.
    deep_supervision : bool
        In training mode, return every head's output (see :meth:`forward`). Can be changed
        after construction.
    """

    def __init__(
        self,
        encoder: EncoderShape,
        n_outputs: int,
        *,
        n_conv_per_stage: int = 2,
        norm: str = "instance",
        nonlin: str = "leaky_relu",
        deep_supervision: bool = False,
    ) -> None:
        super().__init__()
        channels, strides = tuple(encoder.output_channels), tuple(encoder.strides)
        below = range(len(channels) - 2, -1, -1)  # decoder stage i works at encoder stage s
        self.upsamplings = nn.ModuleList(
            make_upsampling(channels[s + 1], channels[s], strides[s + 1]) for s in below
        )
        self.stages = nn.ModuleList(
            StackedConvBlocks(
                n_conv_per_stage, 2 * channels[s], channels[s], norm=norm, nonlin=nonlin
            )
            for s in below
        )
        self.heads = nn.ModuleList(nn.Conv2d(channels[s], n_outputs, kernel_size=1) for s in below)
        self.n_outputs = n_outputs
        self.deep_supervision = deep_supervision

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        """Decode the encoder's skips (stage 0 first, bottleneck last).

        Parameters
        ----------
        skips : list of Tensor
            The encoder's output of every stage, stage 0 (highest resolution) first.

        Returns
        -------
        Tensor of shape (B, n_outputs, M_0, N_0), or list of Tensor
            The logits at stage 0's resolution; with ``deep_supervision`` in training mode, a
            list of ``len(skips) - 1`` outputs, highest resolution first (the i-th at
            M_0 / 2**i for stride-2 stages).
        """
        features, outputs = self.decode(skips)
        return outputs if outputs else self.heads[-1](features)

    def decode(self, skips: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The last stage's feature map, and every head's output when deep supervision is on.

        Parameters
        ----------
        skips : list of Tensor
            The encoder's output of every stage, stage 0 (highest resolution) first.

        Returns
        -------
        features : Tensor of shape (B, channels[0], M_0, N_0)
            Output of the highest-resolution decoder stage, before its head.
        outputs : list of Tensor
            In training mode with ``deep_supervision``, each stage's logits, highest resolution
            first; otherwise empty (the heads are not run).
        """
        every = self.deep_supervision and self.training
        x, outputs = skips[-1], []
        for i, (up, stage, head) in enumerate(
            zip(self.upsamplings, self.stages, self.heads, strict=True)
        ):
            x = stage(torch.cat([up(x), skips[-(i + 2)]], dim=1))
            if every:
                outputs.append(head(x))
        return x, outputs[::-1]


class SubPixelHead(nn.Module):
    """Full-resolution logits from the decoder's stage-0 map when the stem is strided.

    With ``strides[0] = s > 1`` every encoder and decoder stage works at ``1/s`` of the input's
    resolution, which cuts the cost per pixel by about ``s**2``. This head predicts, at each
    low-resolution pixel, the logits of the ``s x s`` input pixels it covers (a 3x3
    convolution to ``n_outputs * s**2`` channels) and rearranges them onto the input's grid
    (``PixelShuffle``; the sub-pixel convolution of Shi et al., CVPR 2016). The strided stem's
    3x3 kernels see every input pixel, so sub-pixel detail such as a 2 px boundary is
    available to it; the head costs ``9 * channels * n_outputs * 2`` FLOP per input pixel.

    Parameters
    ----------
    channels : int
        Channels of the decoder's stage-0 map.
    n_outputs : int
        Output channels.
    stride : int
        ``strides[0]``: the upsampling factor.
    """

    def __init__(self, channels: int, n_outputs: int, *, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, n_outputs * stride**2, kernel_size=3, padding=1)
        self.shuffle = nn.PixelShuffle(stride)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_outputs, s * m, s * n) logits from the (B, channels, m, n) decoder map.

        Parameters
        ----------
        features : Tensor of shape (B, channels, m, n)
            The highest-resolution decoder map.
        """
        return self.shuffle(self.conv(features))
