"""GLUE: the nine tasks' file layouts, reading with counted warnings, cached features, data layers,
and predictions in the submission format. Metrics: `nmod_nlp.metrics.glue_metrics`."""
from .data_layer import GlueClassificationDataLayer, GlueRegressionDataLayer, SentenceDataLayer
from .dataset import NO_LABEL_ID, SentenceDataset
from .features import SentenceFeatures, encode_sentences, load_or_build_features, truncate_pair_lengths
from .predictions import write_glue_predictions
from .reader import GlueData, GlueExample, GlueFormatError, glue_file_path, read_glue_file
from .tasks import GLUE_TASK_SPECS, GLUE_TASKS, GlueTask, get_task, normalize_task_name
from .tsv import DataFormatError, ReadSummary

__all__ = [
    "GLUE_TASKS",
    "GLUE_TASK_SPECS",
    "GlueTask",
    "get_task",
    "normalize_task_name",
    "GlueClassificationDataLayer",
    "GlueRegressionDataLayer",
    "SentenceDataLayer",
    "SentenceDataset",
    "SentenceFeatures",
    "NO_LABEL_ID",
    "encode_sentences",
    "truncate_pair_lengths",
    "load_or_build_features",
    "read_glue_file",
    "glue_file_path",
    "GlueData",
    "GlueExample",
    "GlueFormatError",
    "DataFormatError",
    "ReadSummary",
    "write_glue_predictions",
]
