"""Reading one GLUE file (train, dev, test) into examples, with the counted-warning rules of `tsv`.

The header row is skipped where the task has one (CoLA's labelled files have none; every test file
has one). If the first line of a file that should start with a header parses as a valid row, the
file evidently lacks the header: that line is read as data and a warning says so, rather than
silently losing it. Every row must have as many fields as the header (or, for CoLA, 4): a tab inside
a sentence shifts the columns, and a row read with shifted columns would train on the wrong text.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from .tasks import GlueTask, get_task
from .tsv import DataFormatError, ReadSummary, read_tsv_lines

__all__ = ["GlueFormatError", "GlueExample", "GlueData", "read_glue_file", "glue_file_path"]


class GlueFormatError(DataFormatError):
    """A GLUE file cannot be used at all (missing, unreadable, empty, or no usable row)."""


@dataclass
class GlueExample:
    """One row. `label` is the label string (classification) or the score (STS-B), None in test files;
    `index` is the row's id column where the file has one (test files always: GLUE's submission
    format keys on it), else None; `line` is the 1-based line in the file."""

    guid: str
    text_a: str
    text_b: Optional[str]
    label: Union[str, float, None]
    line: int
    index: Optional[str] = None


@dataclass
class GlueData:
    path: str
    sha256: str
    task: GlueTask
    split: str
    has_labels: bool
    examples: list
    summary: ReadSummary


def glue_file_path(data_dir: str | Path, task: GlueTask | str, split: str) -> Path:
    """`{data_dir}/{split}.tsv` as the GLUE download script names the files (MNLI: dev_matched.tsv ...)."""
    task = get_task(task) if isinstance(task, str) else task
    return Path(data_dir) / f"{task.check_split(split)}.tsv"


def _parse(task: GlueTask, fields: list[str], labelled: bool) -> tuple[Optional[tuple], Optional[str]]:
    """((text_a, text_b, label, index), None) for a good row, or (None, why) for a bad one."""
    a_col, b_col = (task.text_a, task.text_b) if labelled else (task.test_text_a, task.test_text_b)
    index_col = task.index_col if labelled else 0
    label = None
    if labelled:
        raw = fields[task.label_col].strip()
        if task.is_regression:
            try:
                label = float(raw)
            except ValueError:
                label = math.nan
            if not math.isfinite(label):
                return None, f"score {raw!r} (last field) is not a number"
        elif raw not in task.labels:
            col = "last field" if task.label_col == -1 else f"field {task.label_col}"
            return None, f"label {raw!r} ({col}) is not one of {list(task.labels)}"
        else:
            label = raw
    text_b = fields[b_col] if b_col is not None else None
    index = fields[index_col].strip() if index_col is not None else None
    return (fields[a_col], text_b, label, index), None


def read_glue_file(path: str | Path, task: GlueTask | str, split: str) -> GlueData:
    """Read `path` as `split` of `task`. Raises `GlueFormatError` (or FileNotFoundError) up front for a
    file that cannot be used; counts and skips malformed lines."""
    task = get_task(task) if isinstance(task, str) else task
    task.check_split(split)
    labelled = task.has_labels(split)
    path = Path(path)
    what = f"GLUE {task.name} {split} file"
    try:
        lines, digest = read_tsv_lines(path, what)
    except DataFormatError as e:
        raise GlueFormatError(str(e)) from None
    summary = ReadSummary(str(path))
    first = 0
    columns = (task.text_a, task.text_b, task.label_col) if labelled else (task.test_text_a, task.test_text_b)
    expected = max(c for c in columns if c is not None) + 1  # CoLA's 4; other tasks take the header's count
    if task.has_header or not labelled:
        header_fields = lines[0].split("\t")
        if labelled:
            looks_like_data = len(header_fields) >= expected and _parse(task, header_fields, True)[0] is not None
        else:
            looks_like_data = header_fields[0].strip().isdigit()  # test rows start with a numeric index
        if len(header_fields) < expected:
            raise GlueFormatError(
                f"{path}:1: {len(header_fields)} tab-separated fields, but {task.folder} {split} files have at "
                f"least {expected} ({task.name} reads {'the label and ' if labelled else ''}text from columns "
                f"{', '.join(str(c) for c in columns if c is not None and c >= 0)}); is this the right task and split?")
        expected = len(header_fields)
        if looks_like_data:
            summary.warn(1, f"looks like a data row, not the header {task.folder} {split} files start with; "
                            f"reading it as data", skip=False)
        else:
            summary.header, first = lines[0], 1
    where = "as the header has" if summary.header is not None else f"as {task.folder} rows have"

    examples = []
    for n in range(first, len(lines)):
        line_no, line = n + 1, lines[n]
        if not line.strip():
            summary.blank_lines += 1
            continue
        summary.rows += 1
        fields = line.split("\t")
        if len(fields) != expected:
            summary.warn(line_no, f"expected {expected} tab-separated fields ({where}), found {len(fields)}")
            continue
        parsed, why = _parse(task, fields, labelled)
        if parsed is None:
            summary.warn(line_no, why)
            continue
        text_a, text_b, label, index = parsed
        examples.append(GlueExample(f"{split}-{index if index is not None else line_no}", text_a, text_b, label,
                                    line_no, index))
    summary.finish(len(examples), GlueFormatError, f"{task.folder} {split} rows", "the file holds only a header",
                   source=path)
    return GlueData(str(path), digest, task, split, labelled, examples, summary)
