"""SQuAD v1.1 / v2.0: reading, features with a cache, post-processing, official metrics, data layer."""
from .data_layer import BertQuestionAnsweringDataLayer
from .dataset import SquadDataset
from .evaluation import SquadEvaluator
from .features import SquadFeatures, convert_examples_to_features, feature_cache_path, load_or_create_features
from .metrics import evaluate, evaluate_v1, evaluate_v2, normalize_answer
from .postprocess import SquadPredictions, postprocess_predictions, write_predictions
from .reader import SquadData, SquadExample, SquadFormatError, SquadReadSummary, read_squad_file

__all__ = [
    "BertQuestionAnsweringDataLayer",
    "SquadDataset",
    "SquadEvaluator",
    "SquadFeatures",
    "convert_examples_to_features",
    "feature_cache_path",
    "load_or_create_features",
    "evaluate",
    "evaluate_v1",
    "evaluate_v2",
    "normalize_answer",
    "SquadPredictions",
    "postprocess_predictions",
    "write_predictions",
    "SquadData",
    "SquadExample",
    "SquadFormatError",
    "SquadReadSummary",
    "read_squad_file",
]
