"""Reading NeMo's punctuation-and-capitalization files, and writing text back from predicted labels.

`text_{split}.txt` holds one lower-cased text per line with no punctuation; `labels_{split}.txt`, on
the matching line, one two-character label per word: the punctuation mark that follows the word
(`O` for none), then `U` if the word is capitalized or `O` if not. `Hello, Anna. How are you?` is
`hello anna how are you` with `,U .U OU OO ?O`.

The line-level rules are the token-classification reader's (`read_token_classification_files`:
misaligned files raise, a line whose word and label counts differ is skipped and counted); on top
of them a label that is not two characters, or whose half is not among given label ids (an eval set
with a mark the model never saw), skips its line with a counted warning naming file and line.

The label ids are two NeMo files, `punct_label_ids.csv` and `capit_label_ids.csv`, one label per line
in id order, the none label `O` first (id 0 in both), the others sorted.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..glue.tsv import DataFormatError, ReadSummary
from ..token_classification import build_label_ids, read_token_classification_files

__all__ = ["PunctCapitFormatError", "PunctCapitData", "read_punct_capit_files", "punctuate",
           "PUNCT_LABEL_IDS_FILE", "CAPIT_LABEL_IDS_FILE"]

PUNCT_LABEL_IDS_FILE = "punct_label_ids.csv"
CAPIT_LABEL_IDS_FILE = "capit_label_ids.csv"


class PunctCapitFormatError(DataFormatError):
    """A punctuation/capitalization file cannot be used at all (missing, empty, misaligned, no usable line)."""


@dataclass
class PunctCapitData:
    """Text i (its words) was on line `lines[i]` of both files; `punct[i]` and `capit[i]` hold one
    label per word, as written."""

    text_file: str
    label_file: str
    sha256: str
    sentences: list
    punct: list
    capit: list
    lines: list
    summary: ReadSummary


def read_punct_capit_files(text_file: str | Path, label_file: str | Path,
                           punct_label_ids: Optional[dict] = None, capit_label_ids: Optional[dict] = None
                           ) -> PunctCapitData:
    """Every usable text of `text_file` with its labels split into punctuation and capitalization."""
    try:
        data = read_token_classification_files(text_file, label_file)
    except DataFormatError as e:
        raise PunctCapitFormatError(str(e)) from None
    summary = data.summary
    sentences, punct, capit, lines = [], [], [], []
    for words, tags, line in zip(data.sentences, data.labels, data.lines):
        bad = next((t for t in tags if len(t) != 2), None)
        if bad is not None:
            summary.warn(line, f"label {bad!r} is not two characters (punctuation, then O or U)")
            continue
        p, c = [t[0] for t in tags], [t[1] for t in tags]
        unknown = [(name, sorted(set(labels) - set(ids))) for name, labels, ids in
                   (("punctuation", p, punct_label_ids), ("capitalization", c, capit_label_ids)) if ids is not None]
        unknown = [(name, u) for name, u in unknown if u]
        if unknown:
            name, u = unknown[0]
            summary.warn(line, f"{name} label(s) {', '.join(u)} are not among the model's labels")
            continue
        sentences.append(words)
        punct.append(p)
        capit.append(c)
        lines.append(line)
    summary.finish(len(sentences), PunctCapitFormatError, "lines", source=label_file,
                   log=len(sentences) < len(data.sentences))
    return PunctCapitData(data.text_file, str(label_file), data.sha256, sentences, punct, capit, lines, summary)


def label_ids_from(labels: Sequence[Sequence[str]], pad_label: str = "O") -> dict[str, int]:
    """NeMo's ids for one head: `pad_label` 0, the others sorted (`, . ?` -> 1 2 3)."""
    return build_label_ids(labels, pad_label)


def punctuate(words: Sequence[str], punct: Sequence[str], capit: Sequence[str], none_label: str = "O") -> str:
    """Text from words and their predicted labels: `U` capitalizes a word, a mark other than the none
    label follows it. `punctuate("how are you".split(), "OO?", "UOO") == "How are you?"`."""
    out = []
    for word, p, c in zip(words, punct, capit):
        if c != none_label:
            word = word[:1].upper() + word[1:]
        out.append(word if p == none_label else word + p)
    return " ".join(out)
