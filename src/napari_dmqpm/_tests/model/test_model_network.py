import pytest
import torch

from napari_dmqpm.model import (
    DMQPMNet,
    HeadConfig,
    ModelConfig,
    build_nnunet_default_2d,
    nnunet_default_2d_config,
    split_outputs,
)

TINY = dict(features=(4, 8, 16, 32, 32), strides=(1, 2, 2, 2, 2), n_heads=2, kv_reduction=2)
SIZE = 64


def tiny(**changes) -> ModelConfig:
    return ModelConfig(**{**TINY, **changes})


def inputs(config: ModelConfig, *, batch: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    angles = torch.rand(batch, 4, SIZE, SIZE, generator=generator) * 100
    phase = torch.randn(batch, 1, SIZE, SIZE, generator=generator)
    return (
        angles if config.inputs in ("both", "angles") else None,
        phase if config.inputs in ("both", "phase") else None,
    )


COMBINATIONS = [
    dict(fusion="early"),
    dict(inputs="angles", fusion="early"),
    dict(inputs="phase", fusion="early"),
] + [
    dict(fusion=fusion, fusion_stage=stage)
    for fusion in ("concat", "mha", "bidirectional-mha")
    for stage in (1, 2, 3)
]


@pytest.mark.parametrize("changes", COMBINATIONS, ids=lambda c: "-".join(map(str, c.values())))
def test_every_fusion_stage_and_input_gives_full_resolution_logits(changes):
    torch.manual_seed(0)
    config = tiny(**changes)
    net = DMQPMNet(config).eval()
    with torch.inference_mode():
        out = net(*inputs(config))
    assert out.shape == (2, 3, SIZE, SIZE)
    assert torch.isfinite(out).all()
    assert net.required_divisor == 16


@pytest.mark.parametrize("attention", ["global", "kv-reduced", "windowed"])
def test_attention_variants_run_in_the_network(attention):
    torch.manual_seed(0)
    config = tiny(attention=attention, window_size=6)  # 6 does not divide 16: padding path
    with torch.inference_mode():
        out = DMQPMNet(config).eval()(*inputs(config))
    assert out.shape == (2, 3, SIZE, SIZE)


def test_dual_encoder_skips_come_from_both_encoders_then_fusion_then_tail():
    net = DMQPMNet(tiny(fusion_stage=2))
    encoder = net.encoder
    assert encoder.output_channels == (4, 8, 16, 32, 32) and encoder.strides == (1, 2, 2, 2, 2)
    assert len(encoder.angles.stages) == 3 and len(encoder.phase.stages) == 3
    assert encoder.angles.in_channels == 4 and encoder.phase.in_channels == 1
    assert len(encoder.merge_skips) == 2 and len(encoder.tail.stages) == 2
    skips = encoder(*net.normalize_inputs(*inputs(net.config)))
    assert [s.shape[-1] for s in skips] == [64, 32, 16, 8, 4]
    assert [s.shape[1] for s in skips] == [4, 8, 16, 32, 32]


def test_deep_supervision_returns_all_heads_in_training_only():
    torch.manual_seed(0)
    config = tiny()
    net = DMQPMNet(config).train()
    outputs = net(*inputs(config))
    assert isinstance(outputs, list) and len(outputs) == 4
    assert [tuple(o.shape) for o in outputs] == [(2, 3, 64 // 2**i, 64 // 2**i) for i in range(4)]
    net.eval()
    with torch.inference_mode():
        assert torch.allclose(net(*inputs(config)), outputs[0], atol=1e-5)
    net.train()
    net.deep_supervision = False
    assert isinstance(net(*inputs(config)), torch.Tensor)


@pytest.mark.parametrize("changes", [dict(fusion="early"), dict(fusion="mha", fusion_stage=1)])
def test_a_strided_stem_halves_every_stage_and_predicts_at_full_resolution(changes):
    torch.manual_seed(0)
    config = tiny(strides=(2, 2, 2, 2, 2), **changes)
    net = DMQPMNet(config).train()
    assert net.required_divisor == 32 and config.stage_resolutions() == (2, 4, 8, 16, 32)
    skips = net.encoder(*net.normalize_inputs(*inputs(config)))
    assert [s.shape[-1] for s in skips] == [32, 16, 8, 4, 2]
    outputs = net(*inputs(config))
    # the sub-pixel head's full-resolution logits first, then the decoder's heads
    assert [o.shape[-1] for o in outputs] == [64, 32, 16, 8, 4]
    net.eval()
    with torch.inference_mode():
        logits = net(*inputs(config))
    assert logits.shape == (2, 3, SIZE, SIZE) and torch.allclose(logits, outputs[0], atol=1e-5)


def test_the_sub_pixel_head_predicts_each_pixel_of_a_block_separately():
    # a sub-pixel head is not an interpolation: the four pixels of a 2x2 block differ
    torch.manual_seed(0)
    config = tiny(strides=(2, 2, 2, 2, 2), fusion="early")
    with torch.inference_mode():
        logits = DMQPMNet(config).eval()(*inputs(config))
    blocks = logits.unflatten(2, (SIZE // 2, 2)).unflatten(4, (SIZE // 2, 2))
    assert (blocks[:, :, :, 0, :, 0] - blocks[:, :, :, 1, :, 1]).abs().mean() > 1e-3


def test_deep_supervision_flag_does_not_change_the_weights():
    with_heads = DMQPMNet(tiny(deep_supervision=True)).state_dict()
    without = DMQPMNet(tiny(deep_supervision=False)).state_dict()
    assert {k: v.shape for k, v in with_heads.items()} == {k: v.shape for k, v in without.items()}


@pytest.mark.parametrize("fusion", ["mha", "bidirectional-mha"])
def test_gradients_reach_both_encoders(fusion):
    torch.manual_seed(0)
    config = tiny(fusion=fusion)
    net = DMQPMNet(config).train()
    outputs = net(*inputs(config))
    sum(o.square().mean() for o in outputs).backward()
    for name in ("angles", "phase"):
        # conv biases before InstanceNorm get ~0 gradients by design: check the conv weights
        weights = dict(getattr(net.encoder, name).named_parameters())
        grads = [p.grad for key, p in weights.items() if key.endswith("conv.weight")]
        assert len(grads) == 6 and all(g is not None and g.abs().sum() > 0 for g in grads), name
    attention = net.encoder.fusion.attend if fusion == "mha" else net.encoder.fusion.angles_to_phase
    assert attention.to_key_value.weight.grad.abs().sum() > 0  # phase reaches the output via K/V


def test_mha_output_depends_on_the_phase():
    torch.manual_seed(0)
    config = tiny()
    net = DMQPMNet(config).eval()
    angles, phase = inputs(config)
    with torch.inference_mode():
        assert not torch.allclose(net(angles, phase), net(angles, phase.flip(-1)))


@pytest.mark.parametrize(
    ("config", "angles", "phase", "message"),
    [
        (tiny(), None, (1, 1, 64, 64), "needs angles"),
        (
            tiny(inputs="phase", fusion="early"),
            (1, 4, 64, 64),
            (1, 1, 64, 64),
            "does not use angles",
        ),
        (tiny(), (1, 3, 64, 64), (1, 1, 64, 64), r"angles must have shape \(B, 4, M, N\)"),
        (tiny(), (1, 4, 64, 64), (1, 1, 64, 48), "share batch"),
        (tiny(), (1, 4, 64, 40), (1, 1, 64, 40), "multiples of 16"),
    ],
)
def test_bad_inputs_are_clear_errors(config, angles, phase, message):
    net = DMQPMNet(config)
    make = lambda shape: None if shape is None else torch.zeros(shape)  # noqa: E731
    with pytest.raises(ValueError, match=message):
        net(make(angles), make(phase))


def test_forward_does_not_mutate_inputs():
    config = tiny()
    angles, phase = inputs(config)
    before = angles.clone(), phase.clone()
    DMQPMNet(config).eval()(angles, phase)
    assert torch.equal(angles, before[0]) and torch.equal(phase, before[1])


def test_split_outputs_by_head():
    heads = (
        HeadConfig(name="foreground", kind="sigmoid", channels=("foreground",)),
        HeadConfig(name="distance", kind="linear", channels=("distance", "x", "y")),
    )
    parts = split_outputs(torch.arange(32.0).view(1, 4, 2, 4), heads)
    assert parts["foreground"].shape == (1, 1, 2, 4) and parts["distance"].shape == (1, 3, 2, 4)
    assert parts["distance"][0, 0, 0, 0] == 8
    with pytest.raises(ValueError, match="logits must have shape"):
        split_outputs(torch.zeros(1, 3, 2, 2), heads)


def test_nnunet_default_2d_matches_the_plain_conv_unet_recipe():
    config = nnunet_default_2d_config(5, 3)
    assert config.features == (32, 64, 128, 256, 512, 512, 512, 512)
    assert config.fusion == "early" and config.n_input_channels == 5
    assert nnunet_default_2d_config(1, 1).inputs == "phase"
    net = build_nnunet_default_2d(n_inputs=1, n_outputs=2, n_stages=4)
    assert net.config.features == (32, 64, 128, 256) and net.required_divisor == 8
    with torch.inference_mode():
        assert net.eval()(None, torch.zeros(1, 1, 16, 16)).shape == (1, 2, 16, 16)
    with pytest.raises(ValueError, match="n_inputs"):
        nnunet_default_2d_config(3)
