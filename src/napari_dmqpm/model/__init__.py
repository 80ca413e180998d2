"""DM-QPMNet in torch: config, blocks, encoders, fusion, decoder, network, checkpoints, devices.

See ``docs/model.md`` for the architecture and the choices made where the paper is silent.
"""

from .blocks import ConvNormAct, StackedConvBlocks, init_weights, make_norm_and_nonlin
from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint_config, save_checkpoint
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
