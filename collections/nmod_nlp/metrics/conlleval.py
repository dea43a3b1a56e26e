"""Entity-level precision, recall and F1 exactly as the CoNLL shared tasks' `conlleval` Perl script counts them.

This is the number NER papers report. The rules, as the script has them:

- A tag is `PREFIX-TYPE` (split at the first hyphen, so types may hold hyphens) or a bare tag
  (`O`, or `[`/`]`) with an empty type. Prefixes: B, I, E (IOB1, IOB2 and IOE all read the same way).
- A chunk *starts* at a B; at an I or E after O; at an E or I after E; at any tag other than O or
  `.` whose type differs from the previous tag's; and at every `[` or `]` (one-token chunks).
- A chunk *ends* before a B after B or I, before an O after B or I, before an E or I or O after E;
  after any tag other than O or `.` when the type changes; and after every `[` or `]`.
  So `I-PER I-PER` is one entity in IOB1, `B-PER B-PER` two, and `O I-LOC` starts one.
- A predicted chunk is correct when a gold chunk starts at the same token, ends at the same token
  and has the same type. Sentence boundaries (blank lines) end every chunk.
- precision = correct / found predicted, recall = correct / found gold, FB1 = 2PR / (P + R), in
  percent, 0 where undefined; accuracy = tokens whose gold and predicted tags are equal / tokens.

The script prints these with two decimals (`format_conlleval` writes the same report); the values
returned here are unrounded.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

__all__ = ["is_iob_tagging", "split_tag", "start_of_chunk", "end_of_chunk", "ConllevalCounts", "conlleval", "conlleval_lines",
           "format_conlleval"]


def is_iob_tagging(label_names: Sequence[str], none_label: str = "O") -> bool:
    """True when the labels are IOB-style tags (`B-PER`, `I-LOC`, ... and `O`), the tags conlleval
    scores as entities; conlleval's outside tag is `O`, so another none label is not one."""
    return none_label == "O" and all(n == none_label or ("-" in n and n.partition("-")[0] in ("B", "I", "E", "S"))
                                     for n in label_names)


def split_tag(tag: str) -> tuple[str, str]:
    """`B-PER` -> ("B", "PER"); `B-SOME-TYPE` -> ("B", "SOME-TYPE"); `O` -> ("O", "")."""
    prefix, hyphen, kind = tag.partition("-")
    return (prefix, kind) if hyphen else (tag, "")


def end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Did a chunk end between the previous token and this one? (conlleval's endOfChunk)"""
    if prev_tag in ("B", "I") and tag in ("B", "O"):
        return True
    if prev_tag == "E" and tag in ("E", "I", "O"):
        return True
    if prev_tag not in ("O", ".") and prev_type != type_:
        return True
    return prev_tag in ("[", "]")  # such chunks are one token long


def start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Did a chunk start at this token? (conlleval's startOfChunk)"""
    if tag == "B" and prev_tag in ("B", "I", "O"):
        return True
    if prev_tag == "O" and tag in ("I", "E"):
        return True
    if prev_tag == "E" and tag in ("E", "I"):
        return True
    if tag not in ("O", ".") and prev_type != type_:
        return True
    return tag in ("[", "]")


@dataclass
class ConllevalCounts:
    """What conlleval counts: tokens, tags right, and chunks (overall and per type)."""

    tokens: int = 0
    correct_tags: int = 0
    found_gold: Counter = field(default_factory=Counter)
    found_pred: Counter = field(default_factory=Counter)
    correct: Counter = field(default_factory=Counter)

    @staticmethod
    def _prf(correct: int, pred: int, gold: int) -> dict:
        p = 100.0 * correct / pred if pred else 0.0
        r = 100.0 * correct / gold if gold else 0.0
        return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct_tags / self.tokens if self.tokens else 0.0

    def overall(self) -> dict:
        """precision, recall and f1 over all chunk types, in percent."""
        return self._prf(sum(self.correct.values()), sum(self.found_pred.values()), sum(self.found_gold.values()))

    def per_type(self) -> dict:
        """{type: precision, recall, f1 (percent) and `found` (predicted chunks, what conlleval prints)}."""
        types = sorted(set(self.found_gold) | set(self.found_pred))
        return {t: {**self._prf(self.correct[t], self.found_pred[t], self.found_gold[t]),
                    "found": self.found_pred[t], "support": self.found_gold[t]} for t in types}

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, **self.overall(), "per_type": self.per_type(), "tokens": self.tokens,
                "gold_chunks": sum(self.found_gold.values()), "predicted_chunks": sum(self.found_pred.values()),
                "correct_chunks": sum(self.correct.values())}


def _count(tokens: Iterable[tuple[str, str] | None]) -> ConllevalCounts:
    """Run conlleval's loop over (gold, predicted) tags; None is a sentence boundary."""
    c = ConllevalCounts()
    last_gold, last_pred, last_gold_type, last_pred_type = "O", "O", "", ""
    in_correct = False
    for token in tokens:
        if token is None:  # conlleval reads a boundary as a token tagged O O that is not counted
            gold, gold_type, pred, pred_type = "O", "", "O", ""
        else:
            (gold, gold_type), (pred, pred_type) = split_tag(token[0]), split_tag(token[1])
        gold_end = end_of_chunk(last_gold, gold, last_gold_type, gold_type)
        pred_end = end_of_chunk(last_pred, pred, last_pred_type, pred_type)
        gold_start = start_of_chunk(last_gold, gold, last_gold_type, gold_type)
        pred_start = start_of_chunk(last_pred, pred, last_pred_type, pred_type)
        if in_correct:
            if gold_end and pred_end and last_pred_type == last_gold_type:
                in_correct = False
                c.correct[last_gold_type] += 1
            elif gold_end != pred_end or pred_type != gold_type:
                in_correct = False
        if gold_start and pred_start and pred_type == gold_type:
            in_correct = True
        if gold_start:
            c.found_gold[gold_type] += 1
        if pred_start:
            c.found_pred[pred_type] += 1
        if token is not None:
            c.correct_tags += gold == pred and gold_type == pred_type
            c.tokens += 1
        last_gold, last_pred, last_gold_type, last_pred_type = gold, pred, gold_type, pred_type
    if in_correct:
        c.correct[last_gold_type] += 1
    return c


def conlleval(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Score predicted tag sequences against gold ones, one pair of sequences per sentence.

    Returns accuracy, precision, recall, f1 (percent), `per_type` scores and the chunk counts.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted ones")

    def tokens():
        for i, (g, p) in enumerate(zip(gold, predicted)):
            if len(g) != len(p):
                raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
            yield from zip(g, p)
            yield None

    return _count(tokens()).as_dict()


def conlleval_lines(lines: Iterable[str], delimiter: str | None = None) -> dict:
    """Score a file in conlleval's own input format: `token ... gold predicted` per line (the last
    two fields), a blank line (or a first field `-X-`, as after -DOCSTART-) between sentences."""

    def tokens():
        for line in lines:
            fields = line.rstrip("\r\n").split(delimiter)
            if not fields or fields == [""] or fields[0] == "-X-":
                yield None
                continue
            if len(fields) < 3:
                raise ValueError(f"conlleval expects `token ... gold predicted`, found {line.rstrip()!r}")
            yield fields[-2], fields[-1]

    return _count(tokens()).as_dict()


def format_conlleval(result: dict) -> str:
    """The report conlleval prints, from `conlleval(...)`'s result."""
    lines = [f"processed {result['tokens']} tokens with {result['gold_chunks']} phrases; found: "
             f"{result['predicted_chunks']} phrases; correct: {result['correct_chunks']}.",
             f"accuracy: {result['accuracy']:6.2f}%; precision: {result['precision']:6.2f}%; "
             f"recall: {result['recall']:6.2f}%; FB1: {result['f1']:6.2f}"]
    for kind, r in result["per_type"].items():
        lines.append(f"{kind:>17}: precision: {r['precision']:6.2f}%; recall: {r['recall']:6.2f}%; "
                     f"FB1: {r['f1']:6.2f}  {r['found']}")
    return "\n".join(lines)
