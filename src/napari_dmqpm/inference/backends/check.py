"""The check an export passes before its first use: the same labels as torch on a reference field.

The reference is one seeded simulated field (:func:`napari_dmqpm.simulation.simulate_field`,
``REFERENCE_SHAPE`` rounded up to the model's divisor, chosen so that the windowed attention of
the shipped models pads its maps). Torch and the backend each run it as one tile through the
same tiling, activation and post-processing (the model's own thresholds). The export passes
when the most likely class agrees on at least ``MIN_AGREEMENT`` of the pixels and the instance
labels agree on at least as many, with the same number of cells.

Why not bit-equal labels: float32 sums in another order (another runtime, another thread
count) move probabilities by about 1e-4, which flips the few pixels that sit on a threshold.
On the shipped models the fp32 runtimes agree with torch on all but a handful of pixels of the
reference (docs/performance.md); OpenVINO's bfloat16 moves probabilities by up to ~1 and is
refused by this threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from napari_dmqpm._config import config_from_dict, config_to_dict
from napari_dmqpm.model import DMQPMNet

#: Seed and size (rows, columns) of the reference field.
REFERENCE_SEED = 20251101
REFERENCE_SHAPE = (272, 336)
#: Fraction of reference pixels whose class and label must equal torch's.
MIN_AGREEMENT = 0.9999


@dataclass(frozen=True)
class CheckResult:
    """The outcome of comparing a backend with torch on the reference field.

    Attributes
    ----------
    passed : bool
    class_agreement : float
        Fraction of pixels with the same most likely class.
    label_agreement : float
        Fraction of pixels with the same instance label.
    n_cells_torch, n_cells_backend : int
        Cells found by each.
    max_difference : float
        Largest absolute difference of the activated outputs.
    """

    passed: bool
    class_agreement: float
    label_agreement: float
    n_cells_torch: int
    n_cells_backend: int
    max_difference: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-native dict (stored in the export's record)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> CheckResult:
        """Inverse of :meth:`to_dict`: ``ValueError`` for an unknown key or a wrong JSON type.

        Parameters
        ----------
        data : dict
            Field name -> JSON value, as :meth:`to_dict` writes.
        """
        return config_from_dict(cls, data)


def reference_inputs(network: DMQPMNet) -> list[np.ndarray | None]:
    """The reference field as the network's ``[angles (4, M, N), phase (1, M, N)]`` inputs.

    Parameters
    ----------
    network : DMQPMNet
        The network.
    """
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    divisor = network.required_divisor
    rows, cols = (-(-n // divisor) * divisor for n in REFERENCE_SHAPE)
    field = simulate_field(SimulationConfig(shape=(rows, cols)), rng=REFERENCE_SEED)
    uses = network.config.inputs
    return [
        field.angles.astype(np.float32) if uses in ("both", "angles") else None,
        field.phase[None].astype(np.float32) if uses in ("both", "phase") else None,
    ]


def _labels(network: DMQPMNet, forward: Callable, inputs: list, postprocess: Any):
    from napari_dmqpm.inference.postprocess import probabilities_to_labels
    from napari_dmqpm.inference.predict import Probabilities, _layout
    from napari_dmqpm.inference.tiling import predict_tiled

    layout = _layout(network)
    shape = next(a for a in inputs if a is not None).shape[1:]
    blended = predict_tiled(
        forward, inputs, n_outputs=layout.n_outputs, tile_size=max(shape),
        divisor=network.required_divisor,
    )  # fmt: skip
    n_classes = len(layout.class_names)
    distance = None if layout.distance is None else np.clip(blended[n_classes], 0.0, 1.0)
    probabilities = Probabilities(blended[:n_classes], layout.class_names, distance)
    return blended, probabilities_to_labels(probabilities, config=postprocess)


def compare(
    network: DMQPMNet,
    backend_network: Callable[..., torch.Tensor],
    *,
    postprocess: Any,
) -> CheckResult:
    """Compare ``backend_network`` with ``network`` (torch) on the reference field.

    Parameters
    ----------
    network : DMQPMNet
        On the CPU, in eval mode.
    backend_network : callable
        ``(angles, phase) -> logits`` like ``network``.
    postprocess : PostprocessConfig
        The model's post-processing.
    """
    from napari_dmqpm.inference.predict import _layout, _make_forward

    inputs = reference_inputs(network)
    layout = _layout(network)
    want, want_labels = _labels(network, _make_forward(network, layout), inputs, postprocess)
    got, got_labels = _labels(network, _make_forward(backend_network, layout), inputs, postprocess)
    n_classes = len(layout.class_names)
    classes = float(np.mean(want[:n_classes].argmax(0) == got[:n_classes].argmax(0)))
    labels = float(np.mean(want_labels == got_labels))
    n_want, n_got = (len(np.unique(x[x > 0])) for x in (want_labels, got_labels))
    return CheckResult(
        passed=classes >= MIN_AGREEMENT and labels >= MIN_AGREEMENT and n_want == n_got,
        class_agreement=classes,
        label_agreement=labels,
        n_cells_torch=n_want,
        n_cells_backend=n_got,
        max_difference=float(np.abs(want - got).max()),
    )
