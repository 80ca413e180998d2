"""DM-QPMNet in torch: config, blocks, encoders, fusion, decoder, network, checkpoints, devices.

See ``docs/model.md`` for the architecture and the choices made where the paper is silent.

Importing this package imports no torch: each name below is imported from its submodule on
first use (PEP 562), so ``napari_dmqpm.model.registry`` and
``napari_dmqpm.model.checkpoint_config`` can list models, and the widgets can dock, without it.
``from napari_dmqpm.model import DMQPMNet`` works as before (and imports torch then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from napari_dmqpm._lazy import attach

if TYPE_CHECKING:
    from .blocks import ConvNormAct, StackedConvBlocks, init_weights, make_norm_and_nonlin
    from .checkpoint import load_checkpoint, save_checkpoint
    from .checkpoint_config import CheckpointError, read_checkpoint_config
    from .config import THREE_CLASS, HeadConfig, ModelConfig, NormalizationConfig
    from .decoder import UNetDecoder
    from .device import autocast_dtype, resolve_device
    from .encoder import DualEncoder, PlainConvEncoder, SingleEncoder
    from .fusion import (
        BidirectionalMHAFusion,
        ConcatFusion,
        CrossAttention,
        MHAFusion,
        build_fusion,
    )
    from .network import (
        DMQPMNet,
        build_nnunet_default_2d,
        nnunet_default_2d_config,
        split_outputs,
    )
    from .normalization import estimate_normalization, normalize_angles, normalize_phase

#: Submodule that defines each public name; the torch-free ones are config and checkpoint_config.
_WHERE = {
    "ConvNormAct": ".blocks",
    "StackedConvBlocks": ".blocks",
    "init_weights": ".blocks",
    "make_norm_and_nonlin": ".blocks",
    "load_checkpoint": ".checkpoint",
    "save_checkpoint": ".checkpoint",
    "CheckpointError": ".checkpoint_config",
    "read_checkpoint_config": ".checkpoint_config",
    "THREE_CLASS": ".config",
    "HeadConfig": ".config",
    "ModelConfig": ".config",
    "NormalizationConfig": ".config",
    "UNetDecoder": ".decoder",
    "autocast_dtype": ".device",
    "resolve_device": ".device",
    "DualEncoder": ".encoder",
    "PlainConvEncoder": ".encoder",
    "SingleEncoder": ".encoder",
    "BidirectionalMHAFusion": ".fusion",
    "ConcatFusion": ".fusion",
    "CrossAttention": ".fusion",
    "MHAFusion": ".fusion",
    "build_fusion": ".fusion",
    "DMQPMNet": ".network",
    "build_nnunet_default_2d": ".network",
    "nnunet_default_2d_config": ".network",
    "split_outputs": ".network",
    "estimate_normalization": ".normalization",
    "normalize_angles": ".normalization",
    "normalize_phase": ".normalization",
}
_SUBMODULES = frozenset(m[1:] for m in _WHERE.values()) | {"registry"}

__all__ = [
    "THREE_CLASS",
    "BidirectionalMHAFusion",
    "CheckpointError",
    "ConcatFusion",
    "ConvNormAct",
    "CrossAttention",
    "DMQPMNet",
    "DualEncoder",
    "HeadConfig",
    "MHAFusion",
    "ModelConfig",
    "NormalizationConfig",
    "PlainConvEncoder",
    "SingleEncoder",
    "StackedConvBlocks",
    "UNetDecoder",
    "autocast_dtype",
    "build_fusion",
    "build_nnunet_default_2d",
    "estimate_normalization",
    "init_weights",
    "load_checkpoint",
    "make_norm_and_nonlin",
    "nnunet_default_2d_config",
    "normalize_angles",
    "normalize_phase",
    "read_checkpoint_config",
    "resolve_device",
    "save_checkpoint",
    "split_outputs",
]


__getattr__, __dir__, _ = attach(__name__, _WHERE, _SUBMODULES)
