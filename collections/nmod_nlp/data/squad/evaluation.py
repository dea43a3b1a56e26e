"""Collect logits batch by batch, then post-process, write the prediction files and score them.

Framework-neutral on purpose: an `EvaluatorCallback` hands it each eval batch's `unique_ids`,
`start_logits` and `end_logits` (gathered over ranks if distributed) and asks `compute()` at the end.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .dataset import SquadDataset
from .metrics import evaluate
from .postprocess import SquadPredictions, postprocess_predictions, write_predictions

__all__ = ["SquadEvaluator"]


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu() if x.is_floating_point() else x.detach().cpu()
        return x.numpy()
    return np.asarray(x)


class SquadEvaluator:
    def __init__(self, dataset: SquadDataset, n_best_size: int = 20, max_answer_length: int = 30,
                 null_score_diff_threshold: float = 0.0):
        self.dataset = dataset
        self.n_best_size = n_best_size
        self.max_answer_length = max_answer_length
        self.null_score_diff_threshold = null_score_diff_threshold
        self.reset()

    def reset(self) -> None:
        self._ids: list[int] = []
        self._start: list[np.ndarray] = []
        self._end: list[np.ndarray] = []

    def add(self, unique_ids, start_logits, end_logits) -> None:
        """One batch: ids (B,), logits (B, T) with any padding T."""
        ids = _numpy(unique_ids).reshape(-1)
        start, end = _numpy(start_logits), _numpy(end_logits)
        if start.ndim == 1:
            start, end = start[None], end[None]
        if not (len(ids) == len(start) == len(end)):
            raise ValueError(f"batch has {len(ids)} unique_ids but {len(start)}/{len(end)} start/end logit rows")
        self._ids.extend(ids.tolist())
        self._start.extend(start)
        self._end.extend(end)

    def predictions(self) -> SquadPredictions:
        d = self.dataset
        return postprocess_predictions(
            d.examples, d.contexts, d.features, self._ids, self._start, self._end,
            version_2_with_negative=d.version_2_with_negative, n_best_size=self.n_best_size,
            max_answer_length=self.max_answer_length, null_score_diff_threshold=self.null_score_diff_threshold)

    def compute(self, output_prediction_file: Optional[str | Path] = None,
                output_nbest_file: Optional[str | Path] = None,
                output_null_log_odds_file: Optional[str | Path] = None) -> dict:
        """Official metrics (`exact_match`, `f1`, and the v2.0 breakdown); writes the files asked for.

        In test mode there are no gold answers: the files are written and an empty dict returned.
        """
        preds = self.predictions()
        if output_prediction_file:
            null_file = output_null_log_odds_file if self.dataset.version_2_with_negative else None
            write_predictions(preds, output_prediction_file, output_nbest_file, null_file)
        if self.dataset.mode == "test":
            return {}
        na_probs = preds.null_odds if self.dataset.version_2_with_negative else None
        return evaluate(self.dataset.articles, preds.predictions, self.dataset.version_2_with_negative, na_probs)
