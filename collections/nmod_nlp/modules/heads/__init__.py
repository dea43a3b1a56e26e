"""Task heads: token, sequence and regression classifiers over an encoder's hidden states, and the
two-headed punctuation/capitalization and intent/slot classifiers."""
from .classifiers import MultiLayerPerceptron, SequenceClassifier, SequenceRegression, TokenClassifier
from .joint import JointIntentSlotClassifier, PunctCapitTokenClassifier

__all__ = ["TokenClassifier", "SequenceClassifier", "SequenceRegression", "MultiLayerPerceptron",
           "PunctCapitTokenClassifier", "JointIntentSlotClassifier"]
