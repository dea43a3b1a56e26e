"""The SQuAD span loss: cross-entropy of the answer's start and of its end, averaged."""
from __future__ import annotations

from typing import Optional

import torch

from nmod.backends.pytorch import TrainableNM
from nmod.types import LabelsType, LogitsType, LossType, MaskType, NeuralType

from .classification import mean_cross_entropy

__all__ = ["SpanningLoss"]


class SpanningLoss(TrainableNM):
    """Takes a ``TokenClassifier(num_classes=2, log_softmax=False)``'s logits: channel 0 scores each
    token as the answer's start, channel 1 as its end.

    Positions are clamped to ``[0, T]`` and position ``T`` is ignored, as in HF and NeMo: an answer
    that the document window cut off (position ``>= T``) does not count, and a negative position
    becomes 0, the [CLS] "no answer" target of SQuAD 2.0. Each of start and end is averaged over the
    examples it counts; a batch with none counted gives 0 rather than NaN. Also returns the start
    and end logits, split, for inference.

    The optional ``attention_mask`` (NeMo's ``input_mask``, accepted by that name too) keeps padding out of the softmax (HF and NeMo leave it in): the loss
    then no longer depends on how far a batch was padded, so padded, dynamically padded and unpadded
    runs train identically, and the returned logits are very negative at padding.
    """

    PORT_ALIASES = {"input_mask": "attention_mask"}  # NeMo's name

    @property
    def input_ports(self):
        return {
            "logits": NeuralType(("B", "T", "C"), LogitsType()),
            "start_positions": NeuralType(("B",), LabelsType()),
            "end_positions": NeuralType(("B",), LabelsType()),
            "attention_mask": NeuralType(("B", "T"), MaskType(), optional=True),
        }

    @property
    def output_ports(self):
        return {
            "loss": NeuralType(None, LossType()),
            "start_logits": NeuralType(("B", "T"), LogitsType()),
            "end_logits": NeuralType(("B", "T"), LogitsType()),
        }

    def __init__(self, name: Optional[str] = None):
        super().__init__(name=name)

    def forward(self, logits: torch.Tensor, start_positions: torch.Tensor, end_positions: torch.Tensor,
                attention_mask: Optional[torch.Tensor] = None):
        if logits.ndim != 3 or logits.shape[-1] != 2:
            raise ValueError(
                f"SpanningLoss.logits must be (B, T, 2) (start and end scores per token, from "
                f"TokenClassifier(num_classes=2, log_softmax=False)), got {tuple(logits.shape)}"
            )
        if attention_mask is not None:
            if attention_mask.shape != logits.shape[:2]:
                raise ValueError(f"SpanningLoss.attention_mask must be {tuple(logits.shape[:2])}, "
                                 f"got {tuple(attention_mask.shape)}")
            logits = logits.float().masked_fill(attention_mask[..., None] == 0, -1e4)
        start_logits, end_logits = logits.unbind(dim=-1)
        batch, seq_len = start_logits.shape
        positions = []
        for port, value in (("start_positions", start_positions), ("end_positions", end_positions)):
            value = value.reshape(-1) if value.ndim == 2 and value.shape[-1] == 1 else value
            if tuple(value.shape) != (batch,):
                raise ValueError(f"SpanningLoss.{port} must have shape ({batch},), got {tuple(value.shape)}")
            positions.append(value.long().clamp(0, seq_len))
        start_loss = mean_cross_entropy(start_logits, positions[0], ignore_index=seq_len)
        end_loss = mean_cross_entropy(end_logits, positions[1], ignore_index=seq_len)
        return (start_loss + end_loss) / 2, start_logits, end_logits
