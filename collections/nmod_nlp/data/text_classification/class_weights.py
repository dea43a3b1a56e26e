"""Class weights for `--class_balancing weighted_loss`: rare classes count more in the loss."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["class_weights"]


def class_weights(labels: Sequence[int] | np.ndarray, num_classes: int) -> list[float]:
    """weight_c = N / (K * n_c): N labels, n_c of class c, K the number of classes that occur.

    This is NeMo's formula (`get_freq_weights`) and scikit-learn's "balanced" weights: a balanced
    set gets all ones. A class with no example gets 1.0 (it is never a target, so its weight is never
    used). Older NeMo used N / n_c, without K; that only scales every weight by K, which
    CrossEntropyLoss's weighted mean (sum w_y * loss / sum w_y) cancels, so the loss is the same.
    """
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if y.size == 0:
        raise ValueError("class_weights needs at least one label")
    if y.min() < 0 or y.max() >= num_classes:
        bad = y[(y < 0) | (y >= num_classes)][0]
        raise ValueError(f"label {bad} is outside 0..{num_classes - 1} (num_classes={num_classes})")
    counts = np.bincount(y, minlength=num_classes)
    present = int((counts > 0).sum())
    weights = np.ones(num_classes, dtype=np.float64)
    weights[counts > 0] = y.size / (present * counts[counts > 0])
    return weights.tolist()
