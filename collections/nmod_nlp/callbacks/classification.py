"""An EvaluatorCallback for sentence-level tasks: predictions and labels in, metrics and files out."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from nmod.callbacks import EvaluatorCallback
from nmod.log import get_logger

from ._evaluator import is_main, task_evaluator

__all__ = ["classification_evaluator_callback", "write_labels_and_preds"]

logger = get_logger(__name__)


def write_labels_and_preds(path: Path, labels: np.ndarray, preds: np.ndarray) -> None:
    """NeMo's GLUE output file: a line ``labels<TAB>`` + labels, then ``preds<TAB>`` + predictions."""
    def line(values: np.ndarray) -> str:
        return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values.tolist())

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"labels\t{line(labels)}\npreds\t{line(preds)}\n", encoding="utf-8")


def classification_evaluator_callback(
    scores: Any,
    labels: Any,
    compute_metrics: Callable[[np.ndarray, np.ndarray], dict],
    output_file: Optional[str] = None,
    regression: bool = False,
    name: str = "",
    on_results: Optional[Callable[[np.ndarray, np.ndarray], None]] = None,
    **schedule: Any,
) -> EvaluatorCallback:
    """Evaluate ``scores`` (logits ``(B, C)``, or ``(B,)`` predictions when ``regression``) against ``labels``.

    Each evaluation logs one line per metric (``mcc 0.5123``, prefixed by ``name`` when given, so
    MNLI's two dev sets read apart), and rank 0 writes ``output_file`` in NeMo's labels/preds format
    and hands the arrays to ``on_results`` (a confusion-matrix picture, say). Every rank receives the
    gathered values and computes the same metrics.

    ``schedule``: when it evaluates, `EvaluatorCallback`'s keywords (``eval_step``, ``eval_epoch``, ...).
    """

    def on_batch(values: dict, global_vars: dict) -> None:
        # values[name][r] is rank r's batch; each rank holds a contiguous block of the data, so
        # concatenating rank by rank at the end restores file order (for the output file).
        for rank, (s, y) in enumerate(zip(values[scores.name], values[labels.name])):
            global_vars.setdefault(rank, []).append((s, y))

    def on_done(global_vars: dict) -> dict:
        if not global_vars:
            return {}
        batches = [b for rank in sorted(global_vars) for b in global_vars[rank]]
        all_scores = torch.cat([s.float() for s, _ in batches])
        gold = torch.cat([y for _, y in batches]).numpy()
        preds = all_scores.reshape(-1).numpy() if regression else all_scores.argmax(dim=-1).numpy()
        metrics = compute_metrics(preds, gold)
        if is_main():
            prefix = f"{name} " if name else ""
            for key, value in metrics.items():
                logger.info(f"{prefix}{key} {value:.4f}")
            if output_file:
                write_labels_and_preds(Path(output_file), gold, preds)
            if on_results is not None:
                on_results(preds, gold)
        return {f"{name}_{k}" if name else k: v for k, v in metrics.items()}

    return task_evaluator([scores, labels], on_batch, on_done, **schedule)
