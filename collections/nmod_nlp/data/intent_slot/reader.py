"""Reading NeMo's joint intent-and-slot files.

- `dict.intents.csv`, `dict.slots.csv`: one label per line; the line index is the id. NeMo's
  conversions put the "no slot" label `O` last in dict.slots.csv; it is found by name, not place.
- `{prefix}.tsv`: a `sentence<TAB>label` header, then a query and its intent id per line (the
  text-classification reader reads it, with its counted warnings).
- `{prefix}_slots.tsv`: no header; on line i, the slot ids of the words of query i, space-separated.

The query and slot files must describe the same number of queries (otherwise every later query would
pair the wrong slots: that raises a `DataFormatError` naming both files). A query whose intent is not
below the number of intents, whose slot count differs from its word count, or whose slot ids are not
integers below the number of slots, is skipped, counted and logged with its file and line.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..glue.tsv import DataFormatError, ReadSummary, read_tsv_lines
from ..text_classification import read_text_classification_file
from ..token_classification import read_label_ids

__all__ = ["IntentSlotFormatError", "IntentSlotData", "read_intent_slot_files", "read_label_dict",
           "INTENTS_FILE", "SLOTS_FILE"]

INTENTS_FILE = "dict.intents.csv"
SLOTS_FILE = "dict.slots.csv"


class IntentSlotFormatError(DataFormatError):
    """An intent/slot file cannot be used at all (missing, empty, misaligned, no usable query)."""


def read_label_dict(path: str | Path) -> list[str]:
    """Label names in id order from a NeMo dict file (dict.intents.csv, dict.slots.csv)."""
    try:
        ids = read_label_ids(path)
    except DataFormatError as e:
        raise IntentSlotFormatError(str(e)) from None
    return sorted(ids, key=ids.get)


@dataclass
class IntentSlotData:
    """Query i (its words) has intent `intents[i]` and one slot id per word in `slots[i]`; it was on
    line `lines[i]` of the query file. `summary` covers both files."""

    query_file: str
    slot_file: str
    sha256: str
    sentences: list
    intents: np.ndarray  # int64
    slots: list
    lines: list
    summary: ReadSummary


def read_intent_slot_files(query_file: str | Path, slot_file: str | Path, num_intents: int,
                           num_slots: int) -> IntentSlotData:
    """Every usable query of `query_file` with its intent and the slots from `slot_file`."""
    try:
        queries = read_text_classification_file(query_file)
        slot_lines, slot_digest = read_tsv_lines(slot_file, "slot file")
    except DataFormatError as e:
        raise IntentSlotFormatError(str(e)) from None
    summary = queries.summary
    header = 1 if summary.header is not None else 0
    n_queries = summary.rows + summary.blank_lines
    if len(slot_lines) != n_queries:
        raise IntentSlotFormatError(
            f"{query_file} has {n_queries} query lines{' after its header' if header else ''} but {slot_file} has "
            f"{len(slot_lines)} lines: line i of the slot file must hold the slots of query i")
    sentences, intents, slots, lines = [], [], [], []
    skipped_before = summary.skipped
    for text, intent, line in zip(queries.texts, queries.labels.tolist(), queries.lines):
        slot_line = line - header
        words = text.split()
        raw = slot_lines[slot_line - 1].split()
        if intent >= num_intents:
            summary.warn(line, f"intent {intent} is not below the {num_intents} intents of dict.intents.csv")
            continue
        if not all(s.isascii() and s.isdigit() for s in raw):
            summary.warn(line, f"{Path(slot_file).name}:{slot_line}: slot ids must be non-negative integers, "
                               f"found {' '.join(raw)!r}")
            continue
        ids = [int(s) for s in raw]
        if len(ids) != len(words):
            summary.warn(line, f"{len(words)} words but {len(ids)} slot ids on {Path(slot_file).name}:{slot_line}")
            continue
        if ids and max(ids) >= num_slots:
            summary.warn(line, f"slot id {max(ids)} on {Path(slot_file).name}:{slot_line} is not below the "
                               f"{num_slots} slots of dict.slots.csv")
            continue
        sentences.append(words)
        intents.append(intent)
        slots.append(ids)
        lines.append(line)
    summary.finish(len(sentences), IntentSlotFormatError, "queries", source=query_file,
                   log=summary.skipped > skipped_before)
    return IntentSlotData(str(query_file), str(slot_file), queries.sha256 + slot_digest, sentences,
                          np.asarray(intents, dtype=np.int64), slots, lines, summary)
