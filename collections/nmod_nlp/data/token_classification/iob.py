"""CoNLL-2003-style IOB files -> NeMo's `text_*.txt` / `labels_*.txt` (what `import_from_iob_format.py` runs).

The input has one word per line with its columns separated by white space (CoNLL-2003: word, POS,
chunk, NER tag); the first column is the word and the last its label, IOB1 or IOB2 (kept as they
are: conlleval reads both). Blank lines separate sentences. `-DOCSTART-` lines (document breaks)
are dropped, and the output has no trailing spaces, unlike NeMo 0.11's importer. A line with a
single column is skipped with a counted warning naming file and line.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..glue.tsv import DataFormatError, ReadSummary, logger, read_tsv_lines

__all__ = ["read_iob_file", "import_from_iob_format", "IobImport"]


@dataclass
class IobImport:
    """What an import wrote: the two files, the sentences (after `max_length` splits) and the read summary."""

    text_file: Path
    label_file: Path
    sentences: int
    words: int
    summary: ReadSummary


def read_iob_file(path: str | Path) -> tuple[list[tuple[list[str], list[str]]], ReadSummary]:
    """[(words, labels)] per sentence of a CoNLL-style file, and what reading it found."""
    path = Path(path)
    lines, _ = read_tsv_lines(path, "IOB file")
    summary = ReadSummary(str(path))
    sentences, words, labels = [], [], []
    for n, line in enumerate(lines + [""]):
        fields = line.split()
        if not fields:
            if words:
                sentences.append((words, labels))
                words, labels = [], []
            elif n < len(lines):
                summary.blank_lines += 1
            continue
        if fields[0] == "-DOCSTART-":
            continue
        summary.rows += 1
        if len(fields) < 2:
            summary.warn(n + 1, f"expected a word and its label (at least 2 columns), found {line.strip()!r}")
            continue
        words.append(fields[0])
        labels.append(fields[-1])
    summary.kept = sum(len(w) for w, _ in sentences)
    if not sentences:
        raise DataFormatError(f"{path} holds no sentence: expected one `word ... label` line per word and a blank "
                              f"line between sentences")
    if summary.warnings:
        logger.warning("%s", summary)
    return sentences, summary


def import_from_iob_format(data_file: str | Path, max_length: Optional[int] = None) -> IobImport:
    """Write `text_{name}.txt` and `labels_{name}.txt` beside `data_file` (`{name}.txt`).

    `max_length` (words) splits longer sentences into consecutive pieces of at most that many words.
    """
    data_file = Path(data_file)
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be a positive number of words, got {max_length}")
    sentences, summary = read_iob_file(data_file)
    text_file = data_file.with_name(f"text_{data_file.stem}.txt")
    label_file = data_file.with_name(f"labels_{data_file.stem}.txt")
    count = words = 0
    with open(text_file, "w", encoding="utf-8") as text, open(label_file, "w", encoding="utf-8") as tags:
        for sentence, labels in sentences:
            step = max_length or len(sentence)
            for i in range(0, len(sentence), step):
                text.write(" ".join(sentence[i:i + step]) + "\n")
                tags.write(" ".join(labels[i:i + step]) + "\n")
                count += 1
            words += len(sentence)
    return IobImport(text_file, label_file, count, words, summary)
