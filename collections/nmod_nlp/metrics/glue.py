"""GLUE's metric for each task, and the task names themselves.

The names live here, not with the data readers, because which metric a task is scored by is GLUE's
definition and this module must import without torch; `nmod_nlp.data.glue` takes its names from
here so the two can never disagree. Metrics are fractions (0.8512, not 85.12), as Hugging Face's
and NeMo's GLUE evaluations print them.
"""
from __future__ import annotations

import numpy as np

from .classification import accuracy, binary_f1, class_ids, matthews_corrcoef
from .correlation import pearson_corr, spearman_corr

__all__ = ["GLUE_TASKS", "GLUE_MAIN_METRIC", "normalize_task_name", "glue_metrics"]

# Canonical names, lower case as NeMo's --task_name takes them.
GLUE_TASKS = ("cola", "sst-2", "mrpc", "sts-b", "qqp", "mnli", "qnli", "rte", "wnli")

# The number a leaderboard (or "keep the best checkpoint") reads for each task.
GLUE_MAIN_METRIC = {"cola": "mcc", "sst-2": "acc", "mrpc": "acc_and_f1", "sts-b": "corr", "qqp": "acc_and_f1",
                    "mnli": "acc", "qnli": "acc", "rte": "acc", "wnli": "acc"}

_ALIASES = {name.replace("-", ""): name for name in GLUE_TASKS}
_ALIASES.update({"mnli-m": "mnli", "mnli-mm": "mnli"})  # GLUE submission file names


def normalize_task_name(name: str) -> str:
    """"CoLA", "SST-2", "sst2", "STS-B", "MNLI-mm" ... -> the canonical lower-case name."""
    key = str(name).strip().lower()
    if key in GLUE_TASKS:
        return key
    canonical = _ALIASES.get(key) or _ALIASES.get(key.replace("-", "").replace("_", ""))
    if canonical is None:
        raise ValueError(f"unknown GLUE task {name!r}; expected one of {', '.join(GLUE_TASKS)} "
                         f"(case-insensitive; the folder spellings CoLA, SST-2, STS-B ... work too)")
    return canonical


def glue_metrics(task: str, preds, labels) -> dict[str, float]:
    """The GLUE metrics of `task` for `preds` against `labels`.

    `preds`: class ids `(N,)` or scores `(N, C)` (arg-max taken); for STS-B real scores `(N,)` or
    `(N, 1)`. Keys: CoLA `mcc`; MRPC and QQP `acc`, `f1` (of class "1") and `acc_and_f1` (their
    mean); STS-B `pearson`, `spearmanr` and `corr` (their mean); every other task `acc`.
    """
    task = normalize_task_name(task)
    if task == "sts-b":
        p = np.asarray(preds, dtype=np.float64).reshape(-1)
        y = np.asarray(labels, dtype=np.float64).reshape(-1)
        pearson, spearman = pearson_corr(p, y), spearman_corr(p, y)
        return {"pearson": pearson, "spearmanr": spearman, "corr": (pearson + spearman) / 2}
    p, y = class_ids(preds, "preds"), class_ids(labels, "labels")
    if task == "cola":
        return {"mcc": matthews_corrcoef(p, y)}
    acc = accuracy(p, y)
    if task in ("mrpc", "qqp"):
        f1 = binary_f1(p, y, positive=1)
        return {"acc": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2}
    return {"acc": acc}
