"""Classification metrics in numpy: accuracy, per-class precision/recall/F1, MCC, confusion matrix.

Every division that can be 0/0 (a class never predicted has no precision; a class absent from the
labels has no recall) gives 0.0, as scikit-learn does with `zero_division=0`, so a report never
holds NaN and never warns. Predictions come first in every signature, as `glue_metrics` takes them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

__all__ = ["class_ids", "confusion_matrix", "accuracy", "binary_f1", "matthews_corrcoef",
           "precision_recall_f1", "classification_report", "format_report", "save_confusion_matrix"]


def class_ids(preds, name: str = "preds") -> np.ndarray:
    """Class ids from ids `(N,)` or scores `(N, C)` (arg-max taken), as int64."""
    a = np.asarray(preds)
    if a.ndim == 2:
        return a.argmax(axis=1).astype(np.int64)
    a = a.reshape(-1)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"{name} must be integer class ids (or (N, C) scores), found values like {a[:3]}")
    return a.astype(np.int64)


def _checked(preds, labels, num_classes: Optional[int]) -> tuple[np.ndarray, np.ndarray, int]:
    p, y = class_ids(preds, "preds"), class_ids(labels, "labels")
    if p.shape != y.shape:
        raise ValueError(f"preds and labels differ in length: {p.size} predictions for {y.size} labels")
    if p.size == 0:
        raise ValueError("no predictions to score (empty preds and labels)")
    seen = int(max(p.max(), y.max())) + 1
    n = seen if num_classes is None else int(num_classes)
    if min(p.min(), y.min()) < 0 or seen > n:
        bad = np.concatenate([p, y])
        bad = bad[(bad < 0) | (bad >= n)][0]
        raise ValueError(f"class id {bad} is outside 0..{n - 1} (num_classes={n})")
    return p, y, n


def confusion_matrix(preds, labels, num_classes: Optional[int] = None) -> np.ndarray:
    """(C, C) int64 counts: row = true class, column = predicted class (scikit-learn's layout)."""
    p, y, n = _checked(preds, labels, num_classes)
    return np.bincount(y * n + p, minlength=n * n).reshape(n, n).astype(np.int64)


def accuracy(preds, labels) -> float:
    p, y, _ = _checked(preds, labels, None)
    return float((p == y).mean())


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def precision_recall_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support (true count) from a confusion matrix."""
    tp = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    precision, recall = _safe_div(tp, predicted), _safe_div(tp, support)
    f1 = _safe_div(2 * tp, predicted + support)  # = 2PR/(P+R), and 0 where both are 0
    return precision, recall, f1, support.astype(np.int64)


def binary_f1(preds, labels, positive: int = 1) -> float:
    """F1 of the `positive` class (GLUE's MRPC/QQP F1: positive = "1", paraphrase/duplicate)."""
    p, y, _ = _checked(preds, labels, None)
    tp = float(np.sum((p == positive) & (y == positive)))
    denom = float(np.sum(p == positive) + np.sum(y == positive))
    return 2 * tp / denom if denom else 0.0


def matthews_corrcoef(preds, labels) -> float:
    """Matthews correlation (multi-class form, as scikit-learn); 0.0 when undefined (constant input)."""
    cm = confusion_matrix(preds, labels).astype(np.float64)
    t, p = cm.sum(axis=1), cm.sum(axis=0)
    c, s = np.trace(cm), cm.sum()
    cov_yp = c * s - t @ p
    cov_pp, cov_yy = s * s - p @ p, s * s - t @ t
    denom = np.sqrt(cov_pp * cov_yy)
    return float(cov_yp / denom) if denom else 0.0


def classification_report(preds, labels, num_classes: Optional[int] = None,
                          label_names: Optional[Sequence[str]] = None) -> dict:
    """Accuracy, per-class precision/recall/F1/support, their macro/micro/weighted averages, and the
    confusion matrix.

    `per_class` lists all `num_classes` classes (named by `label_names`, else "0", "1", ...); the macro
    average is over the classes that occur in the labels or the predictions, as scikit-learn's
    report does, so a class the eval set lacks does not pull it down. Micro precision = recall =
    F1 = accuracy for single-label data; they are reported anyway for the reader's benefit.
    """
    p, y, n = _checked(preds, labels, num_classes if num_classes is not None
                       else (len(label_names) if label_names is not None else None))
    names = [str(i) for i in range(n)] if label_names is None else [str(s) for s in label_names]
    if len(names) != n:
        raise ValueError(f"{len(names)} label_names for {n} classes")
    cm = confusion_matrix(p, y, n)
    precision, recall, f1, support = precision_recall_f1(cm)
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    total = int(support.sum())
    tp = float(np.trace(cm))
    micro = tp / total
    return {
        "accuracy": micro,
        "num_examples": total,
        "per_class": {names[c]: {"precision": float(precision[c]), "recall": float(recall[c]),
                                 "f1": float(f1[c]), "support": int(support[c])} for c in range(n)},
        "macro": {"precision": float(precision[present].mean()), "recall": float(recall[present].mean()),
                  "f1": float(f1[present].mean())},
        "micro": {"precision": micro, "recall": micro, "f1": micro},
        "weighted": {"precision": float(precision @ support / total), "recall": float(recall @ support / total),
                     "f1": float(f1 @ support / total)},
        "confusion_matrix": cm,
        "label_names": names,
    }


def format_report(report: dict, digits: int = 4) -> str:
    """The report as text: a table like scikit-learn's, then the confusion matrix (rows: true)."""
    names = report["label_names"]
    width = max(12, *(len(s) for s in names))
    head = f"{'':>{width}} {'precision':>10} {'recall':>10} {'f1':>10} {'support':>10}"
    lines = [head]
    for name, r in report["per_class"].items():
        lines.append(f"{name:>{width}} {r['precision']:>10.{digits}f} {r['recall']:>10.{digits}f} "
                     f"{r['f1']:>10.{digits}f} {r['support']:>10d}")
    total = report["num_examples"]
    lines += ["", f"{'accuracy':>{width}} {'':>10} {'':>10} {report['accuracy']:>10.{digits}f} {total:>10d}"]
    for avg in ("macro", "micro", "weighted"):
        r = report[avg]
        lines.append(f"{avg + ' avg':>{width}} {r['precision']:>10.{digits}f} {r['recall']:>10.{digits}f} "
                     f"{r['f1']:>10.{digits}f} {total:>10d}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted class)", _matrix_text(report)]
    return "\n".join(lines)


def _matrix_text(report: dict, sep: str = " ") -> str:
    names, cm = report["label_names"], report["confusion_matrix"]
    width = max(6, *(len(s) for s in names), len(str(int(cm.max()))))
    rows = [sep.join([f"{'':>{width}}"] + [f"{s:>{width}}" for s in names])]
    rows += [sep.join([f"{names[i]:>{width}}"] + [f"{int(v):>{width}}" for v in cm[i]]) for i in range(len(names))]
    return "\n".join(rows)


def save_confusion_matrix(preds, labels, num_classes: Optional[int], path: str | Path,
                          label_names: Optional[Sequence[str]] = None) -> list[Path]:
    """Write the confusion matrix as a TSV table (rows: true class, columns: predicted class), and as
    a PNG picture beside it when matplotlib is installed (``pip install nmod[plots]``).

    The table needs no plotting library and any spreadsheet renders it; the picture is what people
    read at a glance. Returns the files written.
    """
    report = classification_report(preds, labels, num_classes, label_names)
    names, cm = report["label_names"], report["confusion_matrix"]
    path = Path(path).with_suffix(".tsv")
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["true\\predicted\t" + "\t".join(names)]
    lines += [names[i] + "\t" + "\t".join(str(int(v)) for v in cm[i]) for i in range(len(names))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    picture = _plot_confusion_matrix(cm, names, path.with_suffix(".png"))
    return [path] if picture is None else [path, picture]


def _plot_confusion_matrix(cm: np.ndarray, names: Sequence[str], path: Path) -> Optional[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    size = max(4.0, 0.6 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), labels=names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > threshold else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
