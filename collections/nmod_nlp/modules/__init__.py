"""Neural modules of the NLP collection: encoders, heads and losses."""
from .encoders import BERT, MegatronBERT, get_pretrained_lm_model
from .heads import MultiLayerPerceptron, SequenceClassifier, SequenceRegression, TokenClassifier
from .losses import CrossEntropyLoss, MSELoss, SpanningLoss

__all__ = [
    "BERT",
    "MegatronBERT",
    "get_pretrained_lm_model",
    "TokenClassifier",
    "SequenceClassifier",
    "SequenceRegression",
    "MultiLayerPerceptron",
    "SpanningLoss",
    "CrossEntropyLoss",
    "MSELoss",
]
