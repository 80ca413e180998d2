"""Fusion of the angle and phase feature maps at one encoder stage.

Every fusion module maps ``(angles, phase)``, two (B, C, h, w) feature maps of the same stage,
to one (B, C, h, w) map. :class:`MHAFusion` is the paper's: angle tokens query phase tokens,
followed by a residual and an MLP (with its own residual), pre-norm as in a transformer block.

Attention over all h*w tokens is quadratic (a 512x512 tile fused at H/4 has 16384 tokens), so
:class:`CrossAttention` offers ``global`` attention (torch's fused ``scaled_dot_product_attention``,
which never materialises the score matrix on CPU or GPU), ``kv-reduced`` attention (keys and values
average-pooled by ``r`` per axis: r^2 fewer keys, after PVT/SegFormer) and ``windowed`` attention
(non-overlapping squares, after Swin). ``docs/model.md`` records their measured cost.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvNormAct
from .config import ModelConfig


class CrossAttention(nn.Module):
    """Multi-head attention from a query map to a context map of the same size.

    Parameters
    ----------
    channels : int
        Channels C of both maps, also the attention width (C / n_heads per head).
    n_heads : int
        Heads; must divide ``channels``.
    attention : {"global", "kv-reduced", "windowed"}
        Which tokens each query sees (see the module docstring).
    kv_reduction : int
        Average-pooling factor per axis of the context for ``kv-reduced`` (1 = global).
    window_size : int
        Window side in tokens for ``windowed`` (clipped to the map size).

    Notes
    -----
    Pre-norm (LayerNorm over channels) then 1x1 projections (linear maps on tokens) to queries,
    keys and values, ``scaled_dot_product_attention``, and an output projection. Returns the
    attention output only, (B, C, h, w); the caller adds the residual.
    """

    def __init__(
        self,
        channels: int,
        *,
        n_heads: int,
        attention: str = "windowed",
        kv_reduction: int = 4,
        window_size: int = 8,
    ) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"n_heads={n_heads} must divide channels={channels}")
        self.n_heads = n_heads
        self.attention = attention
        self.kv_reduction = kv_reduction
        self.window_size = window_size
        self.norm_query = nn.LayerNorm(channels)
        self.norm_context = nn.LayerNorm(channels)
        self.to_query = nn.Linear(channels, channels)
        self.to_key_value = nn.Linear(channels, 2 * channels)
        self.to_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Attend from ``x`` (B, C, h, w) to ``context`` (B, C, h, w); returns (B, C, h, w).

        Parameters
        ----------
        x : Tensor of shape (B, C, h, w)
            The queries.
        context : Tensor of shape (B, C, h, w)
            The keys and values.
        """
        if self.attention == "windowed":
            return self._windowed(x, context)
        if self.attention == "kv-reduced" and self.kv_reduction > 1:
            rows, cols = (math.ceil(n / self.kv_reduction) for n in context.shape[-2:])
            context = F.adaptive_avg_pool2d(context, (rows, cols))
        batch, channels, rows, cols = x.shape
        out = self._attend(_to_tokens(x), _to_tokens(context))
        return out.transpose(1, 2).reshape(batch, channels, rows, cols)

    def _attend(
        self, query: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, Lq, C) queries, (B, Lk, C) context -> (B, Lq, C); ``mask`` True = may attend."""
        q = _split_heads(self.to_query(self.norm_query(query)), self.n_heads)
        k, v = self.to_key_value(self.norm_context(context)).chunk(2, dim=-1)
        out = F.scaled_dot_product_attention(
            q, _split_heads(k, self.n_heads), _split_heads(v, self.n_heads), attn_mask=mask
        )
        return self.to_out(out.transpose(1, 2).flatten(2))

    def _windowed(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        batch, _, rows, cols = x.shape
        window = (min(self.window_size, rows), min(self.window_size, cols))
        pad_rows, pad_cols = (-rows) % window[0], (-cols) % window[1]
        mask = None
        if pad_rows or pad_cols:
            x = F.pad(x, (0, pad_cols, 0, pad_rows))
            context = F.pad(context, (0, pad_cols, 0, pad_rows))
            valid = F.pad(x.new_ones(1, 1, rows, cols), (0, pad_cols, 0, pad_rows))
            mask = _to_windows(valid, window).squeeze(-1).bool().repeat(batch, 1)
            mask = mask[:, None, None, :]
        out = self._attend(_to_windows(x, window), _to_windows(context, window), mask)
        out = _from_windows(out, batch, x.shape[-2:], window)
        return out[:, :, :rows, :cols]


class PositionalConv(nn.Module):
    """Conditional positional encoding: ``x + depthwise_conv3x3(x)`` (CPVT, PVTv2).

    Zero padding at the borders lets attention tell tokens apart by position.

    Parameters
    ----------
    channels : int
        Channels of the maps it encodes.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, C, h, w).

        Parameters
        ----------
        x : Tensor of shape (B, C, h, w)
            Feature map.
        """
        return x + self.conv(x)


class TokenMLP(nn.Module):
    """Pre-norm MLP on every token: LayerNorm, Linear(C, ratio*C), GELU, Linear(ratio*C, C).

    Parameters
    ----------
    channels : int
        Channels ``C`` of each token.
    mlp_ratio : float
        Hidden width of the MLP as a multiple of ``C``.
    """

    def __init__(self, channels: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = max(1, round(channels * mlp_ratio))
        self.norm = nn.LayerNorm(channels)
        self.net = nn.Sequential(
            nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, C, h, w), without the residual.

        Parameters
        ----------
        x : Tensor of shape (B, C, h, w)
            Feature map; each pixel is a token.
        """
        return self.net(self.norm(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)


class MHAFusion(nn.Module):
    """The paper's fusion: angle queries attend to phase keys/values, residual, MLP.

    ``fused = a + Attn(a -> p)``, then ``fused + MLP(fused)``, with ``a`` and ``p`` the angle and
    phase maps (after an optional positional convolution). Maps two (B, C, h, w) to (B, C, h, w).

    Parameters
    ----------
    channels : int
        Channels ``C`` of both inputs and of the output.
    config : ModelConfig
        Heads, MLP ratio, attention variant and positional encoding of the fusion.
    """

    def __init__(self, channels: int, config: ModelConfig) -> None:
        super().__init__()
        self.out_channels = channels
        self.position_angles = _positional(channels, config)
        self.position_phase = _positional(channels, config)
        self.attend = _cross_attention(channels, config)
        self.mlp = TokenMLP(channels, config.mlp_ratio)

    def forward(self, angles: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """Fuse (B, C, h, w) angle and phase features into (B, C, h, w).

        Parameters
        ----------
        angles : Tensor of shape (B, C, h, w)
            Features of the angle encoder at the fusion stage.
        phase : Tensor of shape (B, C, h, w)
            Features of the phase encoder at the fusion stage.
        """
        memory_format = _memory_format(angles)
        angles, phase = _channels_last(self.position_angles(angles), self.position_phase(phase))
        fused = angles + self.attend(angles, phase)
        return (fused + self.mlp(fused)).contiguous(memory_format=memory_format)


class BidirectionalMHAFusion(nn.Module):
    """Attention both ways (angles -> phase and phase -> angles), concatenated, projected, MLP.

    Parameters
    ----------
    channels : int
        Channels ``C`` of both inputs and of the output.
    config : ModelConfig
        Heads, MLP ratio, attention variant and positional encoding of the fusion.
    """

    def __init__(self, channels: int, config: ModelConfig) -> None:
        super().__init__()
        self.out_channels = channels
        self.position_angles = _positional(channels, config)
        self.position_phase = _positional(channels, config)
        self.angles_to_phase = _cross_attention(channels, config)
        self.phase_to_angles = _cross_attention(channels, config)
        self.project = nn.Conv2d(2 * channels, channels, kernel_size=1)
        self.mlp = TokenMLP(channels, config.mlp_ratio)

    def forward(self, angles: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """Fuse (B, C, h, w) angle and phase features into (B, C, h, w).

        Parameters
        ----------
        angles : Tensor of shape (B, C, h, w)
            Features of the angle encoder at the fusion stage.
        phase : Tensor of shape (B, C, h, w)
            Features of the phase encoder at the fusion stage.
        """
        memory_format = _memory_format(angles)
        angles, phase = _channels_last(self.position_angles(angles), self.position_phase(phase))
        from_angles = angles + self.angles_to_phase(angles, phase)
        from_phase = phase + self.phase_to_angles(phase, angles)
        fused = self.project(torch.cat([from_angles, from_phase], dim=1))
        return (fused + self.mlp(fused)).contiguous(memory_format=memory_format)


class ConcatFusion(nn.Module):
    """Concatenation and a 1x1 ConvNormAct back to C channels (the paper's simple baseline).

    Parameters
    ----------
    channels : int
        Channels ``C`` of both inputs and of the output.
    config : ModelConfig
        Heads, MLP ratio, attention variant and positional encoding of the fusion.
    """

    def __init__(self, channels: int, config: ModelConfig) -> None:
        super().__init__()
        self.out_channels = channels
        self.mix = ConvNormAct(
            2 * channels, channels, kernel_size=1, norm=config.norm, nonlin=config.nonlin
        )

    def forward(self, angles: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """Fuse (B, C, h, w) angle and phase features into (B, C, h, w).

        Parameters
        ----------
        angles : Tensor of shape (B, C, h, w)
            Features of the angle encoder at the fusion stage.
        phase : Tensor of shape (B, C, h, w)
            Features of the phase encoder at the fusion stage.
        """
        return self.mix(torch.cat([angles, phase], dim=1))


FUSION_MODULES = {
    "concat": ConcatFusion,
    "mha": MHAFusion,
    "bidirectional-mha": BidirectionalMHAFusion,
}


def build_fusion(config: ModelConfig) -> nn.Module:
    """The fusion module of ``config`` at ``features[config.fusion_stage]`` channels.

    Parameters
    ----------
    config : ModelConfig
        The network's config (``fusion``, ``fusion_stage``, ``features`` and the attention options).
    """
    if config.fusion not in FUSION_MODULES:
        raise ValueError(f"fusion={config.fusion!r} has no fusion module (two encoders needed)")
    return FUSION_MODULES[config.fusion](config.features[config.fusion_stage], config)


def _positional(channels: int, config: ModelConfig) -> nn.Module:
    return PositionalConv(channels) if config.positional == "conv" else nn.Identity()


def _cross_attention(channels: int, config: ModelConfig) -> CrossAttention:
    return CrossAttention(
        channels,
        n_heads=config.n_heads,
        attention=config.attention,
        kv_reduction=config.kv_reduction,
        window_size=config.window_size,
    )


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    """The layout to hand back: channels-last only when the caller's map uses it."""
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format
    return torch.channels_last


def _channels_last(*maps: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Store (B, C, h, w) maps channels-last: token views, LayerNorm and Linear need no copies."""
    return tuple(m.contiguous(memory_format=torch.channels_last) for m in maps)


def _to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h*w, C)."""
    return x.flatten(2).transpose(1, 2)


def _split_heads(tokens: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, L, C) -> (B, n_heads, L, C / n_heads)."""
    batch, length, channels = tokens.shape
    return tokens.view(batch, length, n_heads, channels // n_heads).transpose(1, 2)


def _to_windows(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) with H, W multiples of the window -> (B * n_windows, wh * ww, C)."""
    batch, channels, rows, cols = x.shape
    (wh, ww), (nh, nw) = window, (rows // window[0], cols // window[1])
    x = x.view(batch, channels, nh, wh, nw, ww).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(batch * nh * nw, wh * ww, channels)


def _from_windows(
    tokens: torch.Tensor, batch: int, size: torch.Size, window: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`_to_windows`: (B * n_windows, wh * ww, C) -> (B, C, H, W)."""
    (rows, cols), (wh, ww) = size, window
    channels = tokens.shape[-1]
    x = tokens.view(batch, rows // wh, cols // ww, wh, ww, channels).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(batch, rows, cols, channels).permute(0, 3, 1, 2)  # channels-last memory
