"""Callbacks for training: loss logging, evaluation, checkpoints (TensorBoard through a writer)."""
from .base import Callback, TrainingState
from .checkpoint import CheckpointCallback
from .evaluator import EvaluatorCallback
from .loss_logger import SimpleLossLoggerCallback

__all__ = ["Callback", "TrainingState", "CheckpointCallback", "EvaluatorCallback", "SimpleLossLoggerCallback"]
