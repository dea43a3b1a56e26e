"""Predictions in GLUE's submission format: `index<TAB>prediction`, one row per test example.

The index is the test file's own id column (what the GLUE server matches predictions on), the
prediction a label name ("entailment", "1") or, for STS-B, a score. `GlueTask.submission_file_name`
gives the file name the server expects (CoLA.tsv, MNLI-m.tsv, ...).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from nmod.core.config import atomic_write

from .reader import GlueExample
from .tasks import GlueTask, get_task

__all__ = ["write_glue_predictions"]


def write_glue_predictions(path: str | Path, task: GlueTask | str, examples: Sequence[GlueExample], preds) -> Path:
    """Write `preds` for `examples` (in file order) to `path`.

    `preds`: class ids `(N,)` or scores `(N, C)` (arg-max taken); STS-B: scores `(N,)` or `(N, 1)`.
    Rows without an id column are numbered from 0.
    """
    task = get_task(task) if isinstance(task, str) else task
    values = np.asarray(preds)
    if task.is_regression:
        values = values.astype(np.float64).reshape(-1)
        column = [f"{v:.3f}" for v in values.tolist()]
    else:
        ids = values.argmax(axis=1) if values.ndim == 2 else values.reshape(-1)
        bad = [int(i) for i in ids if not 0 <= int(i) < len(task.labels)]
        if bad:
            raise ValueError(f"class id {bad[0]} is not a {task.name} label index (0..{len(task.labels) - 1})")
        column = [task.labels[int(i)] for i in ids]
    if len(column) != len(examples):
        raise ValueError(f"{len(column)} predictions for {len(examples)} {task.name} examples; predict every row "
                         f"once, in file order (no drop_last, no padded distributed batches)")
    rows = [f"{ex.index if ex.index is not None else n}\t{p}" for n, (ex, p) in enumerate(zip(examples, column))]
    text = "index\tprediction\n" + "".join(r + "\n" for r in rows)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")), binary=True)
    return Path(path)
