"""Metrics in numpy: GLUE's per-task scores and a classification report (text classification, NER), and
conlleval's entity-level scores (NER).

Imports no torch, so evaluation code and tests can use it alone.
"""
from .classification import (accuracy, binary_f1, class_ids, classification_report, confusion_matrix, format_report,
                             matthews_corrcoef, precision_recall_f1, save_confusion_matrix)
from .conlleval import conlleval, conlleval_lines, format_conlleval, is_iob_tagging
from .correlation import pearson_corr, rankdata, spearman_corr
from .glue import GLUE_MAIN_METRIC, GLUE_TASKS, glue_metrics, normalize_task_name

__all__ = [
    "glue_metrics",
    "GLUE_TASKS",
    "GLUE_MAIN_METRIC",
    "normalize_task_name",
    "classification_report",
    "format_report",
    "save_confusion_matrix",
    "confusion_matrix",
    "precision_recall_f1",
    "accuracy",
    "binary_f1",
    "matthews_corrcoef",
    "class_ids",
    "conlleval",
    "conlleval_lines",
    "format_conlleval",
    "is_iob_tagging",
    "pearson_corr",
    "spearman_corr",
    "rankdata",
]
