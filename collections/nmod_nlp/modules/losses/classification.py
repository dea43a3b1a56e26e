"""Cross-entropy (with an optional mask for token tasks) and mean squared error, as neural modules."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from nmod.backends.pytorch import TrainableNM
from nmod.types import LabelsType, LogitsType, LossType, MaskType, NeuralType, RegressionValuesType

__all__ = ["CrossEntropyLoss", "MSELoss", "mean_cross_entropy"]


def mean_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, ignore_index: int, weight: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """``F.cross_entropy(reduction="mean")`` that gives 0, not NaN, when every target is ignored.

    A batch whose positions are all masked (or a SQuAD batch whose answers were all cut off) then
    contributes nothing instead of poisoning the weights. Computed in float32 whatever the logits'
    dtype, and without a host sync (no boolean indexing).
    """
    logits, targets = logits.float(), targets.long()
    total = F.cross_entropy(logits, targets, weight=weight, ignore_index=ignore_index, reduction="sum")
    valid = targets != ignore_index
    if weight is None:
        count = valid.sum().to(total.dtype)
    else:
        count = (weight[targets.clamp(0, weight.numel() - 1)] * valid).sum()
    # total is 0 whenever count is 0, so the clamp only avoids 0/0.
    return total / count.clamp_min(torch.finfo(total.dtype).tiny)


class CrossEntropyLoss(TrainableNM):
    """Mean cross-entropy of ``logits`` against class ids ``labels``.

    ``logits_ndim=2`` for sequence tasks (logits ``(B, C)``, labels ``(B,)``), 3 for token tasks
    (logits ``(B, T, C)``, labels ``(B, T)``). Positions where ``loss_mask`` is 0, or whose label is
    ``ignore_index`` (-100, the HF convention), do not count. With ``weight`` (one number per class)
    the mean is weighted as torch's is: ``sum(w[y] * loss) / sum(w[y])`` over counted positions.
    """

    @property
    def input_ports(self):
        batch = ("B", "T")[: self._logits_ndim - 1]
        return {
            "logits": NeuralType((*batch, "C"), LogitsType()),
            "labels": NeuralType(batch, LabelsType()),
            "loss_mask": NeuralType(batch, MaskType(), optional=True),
        }

    @property
    def output_ports(self):
        return {"loss": NeuralType(None, LossType())}

    def __init__(
        self,
        logits_ndim: int = 2,
        weight: Optional[Sequence[float]] = None,
        ignore_index: int = -100,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        if logits_ndim not in (2, 3):
            raise ValueError(f"CrossEntropyLoss: logits_ndim must be 2 (B, C) or 3 (B, T, C), got {logits_ndim!r}")
        self._logits_ndim = logits_ndim
        self.ignore_index = ignore_index
        # A buffer, so that it follows the module to its device; not part of saved weights.
        weight_tensor = None if weight is None else torch.as_tensor(list(weight), dtype=torch.float32)
        self.register_buffer("weight", weight_tensor, persistent=False)

    def forward(
        self, logits: torch.Tensor, labels: torch.Tensor, loss_mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        if logits.ndim != self._logits_ndim or tuple(labels.shape) != tuple(logits.shape[:-1]):
            raise ValueError(
                f"CrossEntropyLoss (logits_ndim={self._logits_ndim}) expects logits of {self._logits_ndim} "
                f"axes and labels of the logits' shape minus the class axis; got logits "
                f"{tuple(logits.shape)} and labels {tuple(labels.shape)}"
            )
        if self.weight is not None and self.weight.numel() != logits.shape[-1]:
            raise ValueError(
                f"CrossEntropyLoss: weight has {self.weight.numel()} entries but logits have "
                f"{logits.shape[-1]} classes"
            )
        labels = labels.reshape(-1).long()
        if loss_mask is not None:
            if tuple(loss_mask.shape) != tuple(logits.shape[:-1]):
                raise ValueError(
                    f"CrossEntropyLoss.loss_mask must have shape {tuple(logits.shape[:-1])}, got {tuple(loss_mask.shape)}"
                )
            keep = loss_mask.reshape(-1)
            keep = keep if keep.dtype == torch.bool else keep > 0.5
            labels = labels.masked_fill(~keep, self.ignore_index)
        return mean_cross_entropy(logits.reshape(-1, logits.shape[-1]), labels, self.ignore_index, self.weight)


class MSELoss(TrainableNM):
    """Mean squared error between predicted and target real values (in float32)."""

    @property
    def input_ports(self):
        return {
            "preds": NeuralType(("B",), RegressionValuesType()),
            "labels": NeuralType(("B",), RegressionValuesType()),
        }

    @property
    def output_ports(self):
        return {"loss": NeuralType(None, LossType())}

    def __init__(self, name: Optional[str] = None):
        super().__init__(name=name)

    def forward(self, preds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if preds.shape != labels.shape:
            raise ValueError(f"MSELoss: preds {tuple(preds.shape)} and labels {tuple(labels.shape)} differ in shape")
        return F.mse_loss(preds.float(), labels.float())
