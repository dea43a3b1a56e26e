"""Pearson and Spearman correlation in numpy, as STS-B is scored.

Spearman is Pearson on ranks, with tied values sharing the average of the ranks they span (SciPy's
`rankdata(method="average")`), so a model that predicts the same score for several pairs is
ranked as SciPy would rank it. Where a correlation is undefined because one side is constant (a
collapsed regression head predicts one value for everything), the result is 0.0 rather than NaN:
there is no relation to report, and a NaN would poison "best checkpoint" comparisons and logs.
"""
from __future__ import annotations

import numpy as np

__all__ = ["pearson_corr", "spearman_corr", "rankdata"]


def _as_pair(x, y, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"{name}: the two inputs differ in length ({x.size} and {y.size} values)")
    if x.size < 2:
        raise ValueError(f"{name} needs at least 2 values, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{name}: inputs contain NaN or infinite values")
    return x, y


def pearson_corr(x, y) -> float:
    """Pearson's r; 0.0 when either input is constant (undefined correlation)."""
    x, y = _as_pair(x, y, "pearson_corr")
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    if denom == 0.0:
        return 0.0
    return float(np.clip((dx * dy).sum() / denom, -1.0, 1.0))


def rankdata(x) -> np.ndarray:
    """1-based ranks; tied values get the mean of the ranks they occupy."""
    x = np.asarray(x).reshape(-1)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    # A new group starts wherever the sorted value changes.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], x.size]  # exclusive
    mean_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman_corr(x, y) -> float:
    """Spearman's rho: Pearson's r of average ranks; 0.0 when either input is constant."""
    x, y = _as_pair(x, y, "spearman_corr")
    return pearson_corr(rankdata(x), rankdata(y))
