"""Task heads: token, sequence and regression classifiers over an encoder's hidden states."""
from .classifiers import MultiLayerPerceptron, SequenceClassifier, SequenceRegression, TokenClassifier

__all__ = ["TokenClassifier", "SequenceClassifier", "SequenceRegression", "MultiLayerPerceptron"]
