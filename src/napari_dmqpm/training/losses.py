"""nnU-Net's loss: soft Dice + cross-entropy, with deep supervision, plus an optional distance term.

The three-class head (background, interior, boundary) is trained with cross-entropy plus
``1 - Dice``, where Dice is the soft Dice of the softmax over the whole batch ("batch dice"),
without the background class and with smoothing 1e-5 (nnU-Net's ``DC_and_CE_loss`` with
``MemoryEfficientSoftDiceLoss``; nnU-Net adds ``-Dice``, so its loss is ``-1`` when perfect, ours
``0``). A distance head, when the model has one, adds an L1 or MSE term on the cell pixels only.
With deep supervision the outputs (highest resolution first) get weights ``1 / 2**i``, the
lowest-resolution output weight 0, normalized to sum 1, and the targets are resampled to each
output's size by nearest neighbour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def deep_supervision_weights(n_outputs: int) -> list[float]:
    """nnU-Net's weights ``1 / 2**i``, the last (lowest resolution) set to 0, summing to 1.

    Parameters
    ----------
    n_outputs : int
        Number of decoder outputs (highest resolution first).

    Examples
    --------
    >>> deep_supervision_weights(4)
    [0.5714285714285714, 0.2857142857142857, 0.14285714285714285, 0.0]
    >>> deep_supervision_weights(1)
    [1.0]
    """
    if n_outputs < 1:
        raise ValueError(f"n_outputs must be >= 1; got {n_outputs!r}")
    weights = [1.0 / 2**i for i in range(n_outputs)]
    if n_outputs > 1:
        weights[-1] = 0.0
    total = sum(weights)
    return [w / total for w in weights]


def soft_dice(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    smooth: float = 1e-5,
    include_background: bool = False,
) -> torch.Tensor:
    """Batch soft Dice of the softmax of ``logits`` against integer classes.

    Parameters
    ----------
    logits : Tensor of shape (B, K, M, N)
        Class scores.
    target : Tensor of shape (B, M, N), int64
        Class index per pixel.
    smooth : float
        Added to numerator and denominator (nnU-Net: 1e-5).
    include_background : bool
        Whether class 0 enters the mean (nnU-Net: no).

    Returns
    -------
    Tensor, scalar
        Mean Dice over the classes, in [0, 1].
    """
    probabilities = torch.softmax(logits.float(), dim=1)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(probabilities.dtype)
    axes = (0, 2, 3)
    intersect = (probabilities * onehot).sum(axes)
    denominator = probabilities.sum(axes) + onehot.sum(axes)
    dice = (2.0 * intersect + smooth) / (denominator + smooth).clamp_min(1e-8)
    return dice.mean() if include_background else dice[1:].mean()


@dataclass(frozen=True)
class HeadSlice:
    """Where a named head sits in the output channels, and how to read it."""

    name: str
    kind: str
    start: int
    stop: int


def head_slices(heads: Sequence) -> dict[str, HeadSlice]:
    """Channel ranges of the heads of a model config (objects with name, kind, channels).

    Parameters
    ----------
    heads : sequence
        The heads of a model config (``HeadConfig``).
    """
    slices, start = {}, 0
    for head in heads:
        stop = start + len(head.channels)
        slices[head.name] = HeadSlice(head.name, head.kind, start, stop)
        start = stop
    return slices


def _resize_nearest(target: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    resized = F.interpolate(target[:, None].float(), size=tuple(size), mode="nearest-exact")
    return resized[:, 0].to(target.dtype)


class SegmentationLoss(nn.Module):
    """Dice + CE on the ``classes`` head, optional masked L1/MSE on ``distance``, deep supervision.

    Parameters
    ----------
    heads : sequence of HeadConfig
        The model's heads; one softmax head named ``classes`` is required, a ``distance``
        head (linear or sigmoid, one channel) is used when present.
    distance_loss : {"l1", "mse"}
        Regression loss of the distance head, averaged over the true cell pixels.
    distance_weight : float
        Its weight relative to Dice + CE.
    smooth : float
        Dice smoothing.
    """

    def __init__(
        self,
        heads: Sequence,
        *,
        distance_loss: str = "l1",
        distance_weight: float = 1.0,
        smooth: float = 1e-5,
    ) -> None:
        super().__init__()
        self.slices = head_slices(heads)
        classes = self.slices.get("classes")
        if classes is None or classes.kind != "softmax":
            raise ValueError(
                f"the model needs a softmax head named 'classes'; got heads={list(self.slices)}"
            )
        if distance_loss not in ("l1", "mse"):
            raise ValueError(f"distance_loss must be 'l1' or 'mse'; got {distance_loss!r}")
        self.distance_loss = distance_loss
        self.distance_weight = float(distance_weight)
        self.smooth = float(smooth)

    @property
    def uses_distance(self) -> bool:
        """True when the model has a distance head (the batch must then carry distances)."""
        return "distance" in self.slices and self.distance_weight > 0

    def single(
        self, output: torch.Tensor, classes: torch.Tensor, distance: torch.Tensor | None
    ) -> torch.Tensor:
        """Loss of one output (B, C, M, N) against targets (B, M, N) of the same size.

        Parameters
        ----------
        output : Tensor of shape (B, C, M, N)
            Logits of one decoder output.
        classes : Tensor of shape (B, M, N)
            Class targets at that size.
        distance : Tensor of shape (B, M, N), optional
            Distance targets, for a model with a distance head.
        """
        head = self.slices["classes"]
        logits = output[:, head.start : head.stop].float()
        loss = (
            F.cross_entropy(logits, classes) + 1.0 - soft_dice(logits, classes, smooth=self.smooth)
        )
        if self.uses_distance and distance is not None:
            head = self.slices["distance"]
            predicted = output[:, head.start].float()
            if head.kind == "sigmoid":
                predicted = torch.sigmoid(predicted)
            mask = (classes > 0).float()
            error = (
                (predicted - distance).abs()
                if self.distance_loss == "l1"
                else (predicted - distance) ** 2
            )
            loss = loss + self.distance_weight * (error * mask).sum() / mask.sum().clamp_min(1.0)
        return loss

    def forward(
        self,
        outputs: torch.Tensor | Sequence[torch.Tensor],
        classes: torch.Tensor,
        distance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Weighted loss over the deep-supervision outputs.

        Parameters
        ----------
        outputs : Tensor of shape (B, C, M, N), or a list of them, highest resolution first
            The network's logits.
        classes : Tensor of shape (B, M, N), int64
            Full-resolution class targets.
        distance : Tensor of shape (B, M, N), float, optional
            Full-resolution normalized distance targets.

        Returns
        -------
        Tensor, scalar
        """
        if isinstance(outputs, torch.Tensor):
            outputs = [outputs]
        total = outputs[0].new_zeros((), dtype=torch.float32)
        for weight, output in zip(deep_supervision_weights(len(outputs)), outputs, strict=True):
            if weight == 0.0:
                continue
            size = output.shape[-2:]
            level_distance = None if distance is None else _resize_nearest(distance, size)
            total = total + weight * self.single(
                output, _resize_nearest(classes, size), level_distance
            )
        return total
