import math

import pytest
import torch

from napari_dmqpm.model import CrossAttention, ModelConfig, build_fusion
from napari_dmqpm.model.fusion import ConcatFusion, MHAFusion


def maps(channels=8, rows=6, cols=5, *, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(2, channels, rows, cols, generator=generator),
        torch.randn(2, channels, rows, cols, generator=generator),
    )


def naive_attention(module: CrossAttention, x: torch.Tensor, context: torch.Tensor):
    """softmax(Q K^T / sqrt(d)) V written out, with the module's own weights."""
    batch, channels, rows, cols = x.shape
    heads, dim = module.n_heads, channels // module.n_heads
    q = module.to_query(module.norm_query(x.flatten(2).transpose(1, 2)))
    k, v = module.to_key_value(module.norm_context(context.flatten(2).transpose(1, 2))).chunk(2, -1)
    q, k, v = (t.reshape(batch, -1, heads, dim).transpose(1, 2) for t in (q, k, v))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dim), dim=-1)
    out = module.to_out((weights @ v).transpose(1, 2).reshape(batch, -1, channels))
    return out.transpose(1, 2).reshape(batch, channels, rows, cols)


def test_global_attention_matches_the_explicit_softmax_formula():
    torch.manual_seed(0)
    module = CrossAttention(8, n_heads=2, attention="global")
    x, context = maps()
    assert torch.allclose(module(x, context), naive_attention(module, x, context), atol=1e-5)


def test_kv_reduced_with_ratio_one_is_global_attention():
    torch.manual_seed(0)
    reference = CrossAttention(8, n_heads=2, attention="global")
    reduced = CrossAttention(8, n_heads=2, attention="kv-reduced", kv_reduction=1)
    reduced.load_state_dict(reference.state_dict())
    x, context = maps()
    assert torch.allclose(reduced(x, context), reference(x, context), atol=1e-6)


def test_kv_reduced_attends_to_the_pooled_context():
    torch.manual_seed(0)
    module = CrossAttention(8, n_heads=2, attention="kv-reduced", kv_reduction=2)
    x, context = maps(rows=6, cols=5)  # 5 columns: pooled to ceil(5 / 2) = 3
    pooled = torch.nn.functional.adaptive_avg_pool2d(context, (3, 3))
    expected = naive_attention(module, x, pooled)  # 30 queries, 9 keys
    assert torch.allclose(module(x, context), expected, atol=1e-5)


def test_windowed_attention_covering_the_map_is_global():
    torch.manual_seed(0)
    reference = CrossAttention(8, n_heads=2, attention="global")
    windowed = CrossAttention(8, n_heads=2, attention="windowed", window_size=16)
    windowed.load_state_dict(reference.state_dict())
    x, context = maps()
    assert torch.allclose(windowed(x, context), reference(x, context), atol=1e-5)


def test_windowed_attention_is_local_and_handles_padding():
    torch.manual_seed(0)
    module = CrossAttention(8, n_heads=2, attention="windowed", window_size=4)
    x, context = maps(rows=6, cols=5)  # padded to 8 x 8
    out = module(x, context)
    assert out.shape == x.shape and torch.isfinite(out).all()
    # the window at rows 0-3, columns 0-3 only sees its own context tokens (the padded ones are
    # masked): the naive formula on that crop gives the same numbers
    crop = naive_attention(module, x[..., :4, :4], context[..., :4, :4])
    assert torch.allclose(out[..., :4, :4], crop, atol=1e-5)
    edge = naive_attention(module, x[..., 4:, 4:], context[..., 4:, 4:])  # a 2 x 1 window
    assert torch.allclose(out[..., 4:, 4:], edge, atol=1e-5)
    changed = context.clone()
    changed[..., 4:, :] += 10.0  # outside the first window
    assert torch.allclose(module(x, changed)[..., :4, :4], out[..., :4, :4], atol=1e-6)


def test_mha_fusion_is_residual_attention_then_mlp():
    torch.manual_seed(0)
    config = ModelConfig(features=(8, 8, 8), strides=(1, 2, 2), n_heads=2, positional="none",
                         attention="global")  # fmt: skip
    fusion = build_fusion(config)
    assert isinstance(fusion, MHAFusion)
    angles, phase = maps()
    after_attention = angles + naive_attention(fusion.attend, angles, phase)
    expected = after_attention + fusion.mlp(after_attention)
    assert torch.allclose(fusion(angles, phase), expected, atol=1e-5)


@pytest.mark.parametrize("fusion", ["concat", "mha", "bidirectional-mha"])
def test_fusions_keep_the_shape(fusion):
    config = ModelConfig(features=(8, 8, 8), strides=(1, 2, 2), n_heads=2, fusion=fusion)
    module = build_fusion(config)
    angles, phase = maps()
    assert module(angles, phase).shape == angles.shape
    assert module.out_channels == 8
    if fusion == "concat":
        assert isinstance(module, ConcatFusion)


def test_build_fusion_rejects_early():
    with pytest.raises(ValueError, match="early"):
        build_fusion(ModelConfig(fusion="early"))


def test_attention_rejects_heads_not_dividing_channels():
    with pytest.raises(ValueError, match="n_heads=3"):
        CrossAttention(8, n_heads=3)


def test_fusion_keeps_the_callers_memory_format():
    config = ModelConfig(features=(8, 8, 8), strides=(1, 2, 2), n_heads=2)
    module = build_fusion(config)
    angles, phase = maps(rows=8, cols=8)
    assert module(angles, phase).is_contiguous()
    last = [m.contiguous(memory_format=torch.channels_last) for m in (angles, phase)]
    out = module(*last)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, module(angles, phase), atol=1e-5)
