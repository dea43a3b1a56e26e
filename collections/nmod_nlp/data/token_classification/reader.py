"""Reading NeMo's token-classification files and the label ids that go with them.

`text_{split}.txt` holds one sentence per line, words separated by spaces; `labels_{split}.txt`
holds, on the matching line, one label per word. The two files must have the same number of lines
(otherwise every later line would pair the wrong sentence and labels: that raises a
`DataFormatError` naming both files). A line whose word and label counts differ, or whose labels
are not in a given label set, is skipped, counted in the `ReadSummary` and logged with its file and
line; blank lines are ignored and counted. A missing, unreadable, empty or wholly unusable file
raises before training starts.

Label ids (`label_ids.csv`, one label per line in id order, NeMo's format): the none label first
(id 0), then every other label sorted, so ids depend only on the set of labels, never on file order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from ..glue.tsv import DataFormatError, ReadSummary, read_tsv_lines

__all__ = ["TokenClassificationFormatError", "TokenClassificationData", "read_token_classification_files",
           "build_label_ids", "write_label_ids", "read_label_ids", "LABEL_IDS_FILE"]

LABEL_IDS_FILE = "label_ids.csv"


class TokenClassificationFormatError(DataFormatError):
    """A token-classification file cannot be used at all (missing, unreadable, empty, misaligned)."""


@dataclass
class TokenClassificationData:
    """Sentence i (its words) was on line `lines[i]` (1-based) of both files; `labels[i]` holds its
    labels as written (None when no label file was read)."""

    text_file: str
    label_file: Optional[str]
    sha256: str  # of the text file and the label file together
    sentences: list
    labels: Optional[list]
    lines: list
    summary: ReadSummary


def read_token_classification_files(text_file: str | Path, label_file: Optional[str | Path] = None,
                                    known_labels: Optional[Iterable[str]] = None) -> TokenClassificationData:
    """Every usable sentence of `text_file` with its labels from `label_file` (see the module docstring).

    With `known_labels`, a line holding another label is skipped with a warning (an eval set with a
    label the model was never trained on).
    """
    text_file = Path(text_file)
    try:
        texts, digest = read_tsv_lines(text_file, "token-classification text file")
        label_lines, label_digest = (read_tsv_lines(label_file, "token-classification label file")
                                     if label_file is not None else (None, ""))
    except DataFormatError as e:
        raise TokenClassificationFormatError(str(e)) from None
    if label_lines is not None and len(label_lines) != len(texts):
        raise TokenClassificationFormatError(
            f"{text_file} has {len(texts)} lines but {label_file} has {len(label_lines)}: line i of the label file "
            f"must hold the labels of line i of the text file")
    known = None if known_labels is None else set(known_labels)
    summary = ReadSummary(str(label_file) if label_file is not None else str(text_file))
    sentences, labels, lines = [], [] if label_lines is not None else None, []
    for n, text in enumerate(texts):
        words = text.split()
        tags = label_lines[n].split() if label_lines is not None else None
        if not words and not tags:
            summary.blank_lines += 1
            continue
        summary.rows += 1
        if tags is not None:
            if len(words) != len(tags):
                summary.warn(n + 1, f"{len(words)} words in {text_file.name} but {len(tags)} labels")
                continue
            unknown = sorted(set(tags) - known) if known is not None else []
            if unknown:
                summary.warn(n + 1, f"label(s) {', '.join(unknown)} are not among the model's labels "
                                    f"({', '.join(sorted(known))})")
                continue
            labels.append(tags)
        sentences.append(words)
        lines.append(n + 1)
    summary.finish(len(sentences), TokenClassificationFormatError, "sentences", "every line is blank", source=text_file)
    return TokenClassificationData(str(text_file), None if label_file is None else str(label_file),
                                   digest + label_digest, sentences, labels, lines, summary)


def build_label_ids(labels: Iterable[Iterable[str]], none_label: str = "O") -> dict[str, int]:
    """{label: id}: `none_label` is 0 (even if no word carries it), the other labels follow sorted."""
    seen = {tag for tags in labels for tag in tags}
    seen.discard(none_label)
    return {none_label: 0, **{tag: i + 1 for i, tag in enumerate(sorted(seen))}}


def write_label_ids(path: str | Path, label_ids: dict[str, int]) -> Path:
    """NeMo's `label_ids.csv`: one label per line, line i holding the label of id i."""
    path = Path(path)
    names = sorted(label_ids, key=label_ids.get)
    if [label_ids[n] for n in names] != list(range(len(names))):
        raise ValueError(f"label ids must be 0..{len(names) - 1}, got {sorted(label_ids.values())}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(names) + "\n", encoding="utf-8")
    return path


def read_label_ids(path: str | Path) -> dict[str, int]:
    """The {label: id} a run saved with `write_label_ids` (also reads NeMo's `label_ids.csv`)."""
    path = Path(path)
    try:
        lines, _ = read_tsv_lines(path, "label ids file")
    except DataFormatError as e:
        raise TokenClassificationFormatError(str(e)) from None
    names = [line.strip() for line in lines if line.strip()]
    if len(set(names)) != len(names):
        raise TokenClassificationFormatError(f"{path} names a label twice; expected one label per line, in id order")
    return {name: i for i, name in enumerate(names)}
