"""`LossAggregator`: several scalar losses in, their weighted sum out (NeMo 0.11's LossAggregatorNM)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from nmod.backends.pytorch import TrainableNM
from nmod.types import LossType, NeuralType

__all__ = ["LossAggregator"]


class LossAggregator(TrainableNM):
    """``loss = sum_i weights[i] * loss_i`` over input ports ``loss_1`` ... ``loss_{num_inputs}``.

    NeMo's port names and rule: with no ``weights`` every loss counts once (a plain sum). The
    punctuation recipe passes ``[w, 1 - w]`` (``--punct_loss_weight``), the intent/slot recipe
    ``[w, 1 - w]`` with ``w = --intent_loss_weight``. No weights to train; computed in float32.
    """

    @property
    def input_ports(self):
        return {f"loss_{i + 1}": NeuralType(None, LossType()) for i in range(self.num_inputs)}

    @property
    def output_ports(self):
        return {"loss": NeuralType(None, LossType())}

    def __init__(self, num_inputs: int = 2, weights: Optional[Sequence[float]] = None, name: Optional[str] = None):
        super().__init__(name=name)
        if isinstance(num_inputs, bool) or not isinstance(num_inputs, int) or num_inputs < 1:
            raise ValueError(f"LossAggregator: num_inputs must be a positive int, got {num_inputs!r}")
        self.num_inputs = num_inputs
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != num_inputs:
                raise ValueError(f"LossAggregator: {len(weights)} weights for num_inputs={num_inputs} losses; "
                                 f"pass one weight per loss")
        self.weights = weights

    def forward(self, **losses: torch.Tensor) -> torch.Tensor:
        total = None
        for i in range(self.num_inputs):
            loss = losses[f"loss_{i + 1}"].float()
            term = loss if self.weights is None else loss * self.weights[i]
            total = term if total is None else total + term
        return total
