"""Task evaluators: EvaluatorCallbacks that turn eval outputs into metrics and prediction files."""
from .classification import classification_evaluator_callback, write_labels_and_preds
from .squad import squad_evaluator_callback

__all__ = ["squad_evaluator_callback", "classification_evaluator_callback", "write_labels_and_preds"]
