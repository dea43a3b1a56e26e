"""Text classification in NeMo 0.11's format: `{prefix}.tsv` with a `sentence<TAB>label` header."""
from .class_weights import class_weights
from .data_layer import TextClassificationDataLayer
from .reader import TextClassificationData, TextClassificationFormatError, read_text_classification_file, select_samples

__all__ = ["TextClassificationDataLayer", "class_weights", "read_text_classification_file", "select_samples",
           "TextClassificationData", "TextClassificationFormatError"]
