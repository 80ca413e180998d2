"""nnU-Net building blocks: 3x3 conv + norm + activation, stacked per stage, transposed-conv up.

The JSON names of the config (``norm="instance"``, ``nonlin="leaky_relu"``) become torch modules
in exactly one place, :func:`make_norm_and_nonlin`. Downsampling is a strided first convolution
of a stage (no pooling), upsampling a transposed convolution with kernel = stride, as in
MIC-DKFZ/dynamic-network-architectures' ``PlainConvUNet``.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

LEAKY_SLOPE = 0.01
NORM_EPS = 1e-5


def make_norm_and_nonlin(norm: str, nonlin: str, channels: int) -> tuple[nn.Module, nn.Module]:
    """Map the config names of a normalization and an activation to torch modules.

    Parameters
    ----------
    norm : {"instance", "batch", "group", "none"}
        Affine InstanceNorm2d (nnU-Net's choice), BatchNorm2d, GroupNorm with up to 8 groups,
        or identity.
    nonlin : {"leaky_relu", "relu", "gelu"}
        LeakyReLU(0.01) (nnU-Net's choice), ReLU or GELU.
    channels : int
        Channels being normalized.

    Returns
    -------
    (nn.Module, nn.Module)
        The normalization and the activation.
    """
    norms = {
        "instance": lambda: nn.InstanceNorm2d(channels, eps=NORM_EPS, affine=True),
        "batch": lambda: nn.BatchNorm2d(channels, eps=NORM_EPS),
        "group": lambda: nn.GroupNorm(math.gcd(8, channels), channels, eps=NORM_EPS),
        "none": nn.Identity,
    }
    nonlins = {
        "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        "relu": lambda: nn.ReLU(inplace=True),
        "gelu": nn.GELU,
    }
    if norm not in norms:
        raise ValueError(f"norm must be one of {tuple(norms)}; got norm={norm!r}")
    if nonlin not in nonlins:
        raise ValueError(f"nonlin must be one of {tuple(nonlins)}; got nonlin={nonlin!r}")
    return norms[norm](), nonlins[nonlin]()


class ConvNormAct(nn.Sequential):
    """Convolution, normalization, activation: the nnU-Net unit.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    kernel_size : int
        Square kernel side (3, or 1 for channel mixing); padding keeps the size at stride 1.
    stride : int
        Convolution stride; 2 halves rows and columns (ceil for odd sizes).
    norm, nonlin : str
        Names understood by :func:`make_norm_and_nonlin`.

    Notes
    -----
    Maps (B, in_channels, M, N) to (B, out_channels, ceil(M / stride), ceil(N / stride)).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        norm: str = "instance",
        nonlin: str = "leaky_relu",
    ) -> None:
        norm_layer, act = make_norm_and_nonlin(norm, nonlin, out_channels)
        conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2
        )
        super().__init__(OrderedDict(conv=conv, norm=norm_layer, act=act))
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride


class StackedConvBlocks(nn.Sequential):
    """``n_convs`` :class:`ConvNormAct` units; the first may be strided (downsampling).

    Parameters
    ----------
    n_convs : int
        Number of units (nnU-Net uses 2).
    in_channels, out_channels : int
        Channels into the first unit and out of every unit.
    first_stride : int
        Stride of the first unit (1 keeps the resolution, 2 halves it).
    norm, nonlin : str
        Names understood by :func:`make_norm_and_nonlin`.
    """

    def __init__(
        self,
        n_convs: int,
        in_channels: int,
        out_channels: int,
        *,
        first_stride: int = 1,
        norm: str = "instance",
        nonlin: str = "leaky_relu",
    ) -> None:
        units = [
            ConvNormAct(
                in_channels if i == 0 else out_channels,
                out_channels,
                stride=first_stride if i == 0 else 1,
                norm=norm,
                nonlin=nonlin,
            )
            for i in range(n_convs)
        ]
        super().__init__(*units)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = first_stride


def make_upsampling(in_channels: int, out_channels: int, stride: int) -> nn.ConvTranspose2d:
    """Transposed convolution with kernel = stride: (B, C_in, m, n) -> (B, C_out, m*s, n*s).

    Parameters
    ----------
    in_channels : int
        Channels ``C_in`` of the input.
    out_channels : int
        Channels ``C_out`` of the output.
    stride : int
        Upsampling factor ``s`` (kernel size and stride of the convolution).
    """
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=stride, stride=stride)


def init_weights(module: nn.Module) -> None:
    """nnU-Net's initialisation: He-normal (slope 0.01) convolutions, zero biases.

    Parameters
    ----------
    module : nn.Module
        Applied to this module only; use ``network.apply(init_weights)`` for a whole network.
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.kaiming_normal_(module.weight, a=LEAKY_SLOPE)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
