"""Losses: SQuAD span loss, (masked) cross-entropy and mean squared error, each a scalar LossType."""
from .classification import CrossEntropyLoss, MSELoss
from .spanning import SpanningLoss

__all__ = ["SpanningLoss", "CrossEntropyLoss", "MSELoss"]
