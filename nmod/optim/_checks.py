"""The hyperparameter checks nmod's own optimizers share, so a bad value fails at construction with
the optimizer's name, as torch's optimizers do."""
from __future__ import annotations

from typing import Sequence


def check_hyperparameters(name: str, lr: float, betas: Sequence[float], eps: float, weight_decay: float) -> None:
    if lr < 0.0:
        raise ValueError(f"{name}: lr must be >= 0, got {lr}")
    if eps <= 0.0:
        raise ValueError(f"{name}: eps must be > 0, got {eps}")
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas}")
    if weight_decay < 0.0:
        raise ValueError(f"{name}: weight_decay must be >= 0, got {weight_decay}")
