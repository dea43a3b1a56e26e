"""Task evaluators: EvaluatorCallbacks that turn eval outputs into metrics and prediction files."""
from .classification import classification_evaluator_callback, write_labels_and_preds
from .combined import combined_evaluator_callback
from .squad import squad_evaluator_callback
from .token_classification import first_subtoken_values, token_classification_evaluator_callback, write_conll_predictions

__all__ = ["squad_evaluator_callback", "classification_evaluator_callback", "write_labels_and_preds",
           "token_classification_evaluator_callback", "first_subtoken_values", "write_conll_predictions",
           "combined_evaluator_callback"]
