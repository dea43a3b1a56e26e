"""Reading NeMo's text-classification TSV: a `sentence<TAB>label` header, then `text<TAB>int` rows.

The label is the field after the last tab (the text may itself hold tabs: they are kept, and the
tokenizer treats them as spaces). Problems follow the GLUE rules (`nmod_nlp.data.glue.tsv`): a
missing, unreadable, empty or unusable file raises before training; a line without a tab, or whose
label is not a non-negative integer (below `num_classes` when given), is skipped, counted and
logged with its file and line. A first line that parses as a row (no header) is read as data, with
a warning, instead of being dropped as NeMo did.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..glue.tsv import DataFormatError, ReadSummary, read_tsv_lines

__all__ = ["TextClassificationFormatError", "TextClassificationData", "read_text_classification_file",
           "select_samples"]


class TextClassificationFormatError(DataFormatError):
    """A text-classification file cannot be used at all (missing, unreadable, empty, no usable row)."""


@dataclass
class TextClassificationData:
    """A read file: `texts[i]` has label `labels[i]` and was on line `lines[i]` (1-based)."""

    path: str
    sha256: str
    texts: list
    labels: np.ndarray  # int64
    lines: list
    summary: ReadSummary


def _parse(line: str, num_classes: Optional[int]) -> tuple[Optional[tuple[str, int]], Optional[str]]:
    if "\t" not in line:
        return None, "expected sentence<TAB>label, found no tab"
    text, raw = line.rsplit("\t", 1)
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()):  # also rejects "-1" and "1.0"
        return None, f"label {raw!r} (after the last tab) is not a non-negative integer"
    label = int(raw)
    if num_classes is not None and label >= num_classes:
        return None, f"label {label} is not below num_classes={num_classes}"
    return (text, label), None


def read_text_classification_file(path: str | Path, num_classes: Optional[int] = None) -> TextClassificationData:
    """Read every usable row of `path` (see the module docstring for what is skipped and what raises)."""
    path = Path(path)
    try:
        lines, digest = read_tsv_lines(path, "text-classification file")
    except DataFormatError as e:
        raise TextClassificationFormatError(str(e)) from None
    summary = ReadSummary(str(path))
    first = 1
    if _parse(lines[0], num_classes)[0] is not None:
        summary.warn(1, "looks like a data row, not the sentence<TAB>label header; reading it as data", skip=False)
        first = 0
    else:
        summary.header = lines[0]
    texts, labels, line_numbers = [], [], []
    for n in range(first, len(lines)):
        if not lines[n].strip():
            summary.blank_lines += 1
            continue
        summary.rows += 1
        parsed, why = _parse(lines[n], num_classes)
        if parsed is None:
            summary.warn(n + 1, why)
            continue
        texts.append(parsed[0])
        labels.append(parsed[1])
        line_numbers.append(n + 1)
    summary.finish(len(texts), TextClassificationFormatError, "sentence<TAB>label rows", "the file holds only a header",
                   source=path)
    return TextClassificationData(str(path), digest, texts, np.asarray(labels, dtype=np.int64), line_numbers, summary)


def select_samples(n_rows: int, num_samples: int, seed: int = 0) -> np.ndarray:
    """Row indices to use: all for `num_samples=-1`, else a seeded random `num_samples` of them, in file
    order. Random rather than the first N (NeMo 0.11 also drew a seeded random subset), because
    classification files are often sorted by label and their first N rows would hold one class."""
    if num_samples == -1 or num_samples >= n_rows:
        return np.arange(n_rows)
    if num_samples < 1:
        raise ValueError(f"num_samples must be -1 (all rows) or a positive number, got {num_samples}")
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=num_samples, replace=False))
