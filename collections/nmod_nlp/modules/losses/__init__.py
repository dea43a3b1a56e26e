"""Losses: SQuAD span loss, (masked) cross-entropy, mean squared error, each a scalar LossType, and their
weighted sum (`LossAggregator`)."""
from .aggregator import LossAggregator
from .classification import CrossEntropyLoss, MSELoss
from .spanning import SpanningLoss

__all__ = ["SpanningLoss", "CrossEntropyLoss", "MSELoss", "LossAggregator"]
