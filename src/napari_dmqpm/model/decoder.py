"""The U-Net decoder, built from an encoder's ``output_channels`` and ``strides``.

As ``UNetDecoder`` of MIC-DKFZ/dynamic-network-architectures: from the bottleneck up, each
decoder stage upsamples with a transposed convolution, concatenates the skip of that
resolution, runs ``n_conv_per_stage`` ConvNormAct units and owns a 1x1 segmentation head. All
heads always exist, so a checkpoint loads with deep supervision on or off.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import StackedConvBlocks, make_upsampling


class UNetDecoder(nn.Module):
    """Decoder with one segmentation head per stage.

    Parameters
    ----------
    encoder : nn.Module
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
        encoder: nn.Module,
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

        Returns
        -------
        Tensor of shape (B, n_outputs, M, N), or list of Tensor
            The full-resolution logits; with ``deep_supervision`` in training mode, a list of
            ``len(skips) - 1`` outputs, highest resolution first (the i-th at M / 2**i for
            stride-2 stages).
        """
        every = self.deep_supervision and self.training
        x, outputs = skips[-1], []
        last = len(self.stages) - 1
        for i, (up, stage, head) in enumerate(
            zip(self.upsamplings, self.stages, self.heads, strict=True)
        ):
            x = stage(torch.cat([up(x), skips[-(i + 2)]], dim=1))
            if every or i == last:
                outputs.append(head(x))
        return outputs[::-1] if every else outputs[-1]
