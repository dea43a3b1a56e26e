"""Reading SQuAD v1.1 / v2.0 JSON into examples, with every problem either raised or counted.

What is an error and what is a counted warning follows one rule: a problem that makes the whole file
unusable or ambiguous (bad JSON, missing or duplicate ids, v2.0 data read as v1.1) stops the run with
the file and the place; a problem with one question (its answer text is not in the context at
`answer_start`, an empty context) skips that question in training, keeps it for prediction in
eval/test (a prediction is still owed for it), and is counted in `SquadReadSummary`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from nmod.core.errors import DataFormatError
from nmod.log import get_logger

__all__ = ["SquadFormatError", "SquadExample", "SquadReadSummary", "SquadData", "read_squad_file", "MODES"]

logger = get_logger(__name__)

MODES = ("train", "eval", "test")
_MAX_LOGGED_WARNINGS = 10


class SquadFormatError(DataFormatError):
    """The file cannot be read as SQuAD: the message names the file and where."""


@dataclass
class SquadExample:
    """One question. `answer_start`/`answer_end` are the character span (end exclusive) in the context
    of the answer used for training labels, or None when the question has none that fits."""

    qas_id: str
    question: str
    context_index: int
    answers: list = field(default_factory=list)
    is_impossible: bool = False
    answer_start: Optional[int] = None
    answer_end: Optional[int] = None
    title: str = ""


@dataclass
class SquadReadSummary:
    """Counts of what was read and of what was skipped or could not be labelled, and why."""

    articles: int = 0
    paragraphs: int = 0
    questions: int = 0
    kept: int = 0
    answerable: int = 0
    unanswerable: int = 0
    answer_mismatch: int = 0  # answer text not found at answer_start
    no_answers: int = 0  # answerable question with an empty answers list
    empty_context: int = 0  # questions whose context is empty or whitespace
    skipped_ids: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.skipped_ids)

    def __str__(self) -> str:
        return (f"{self.questions} questions in {self.paragraphs} paragraphs of {self.articles} articles; "
                f"kept {self.kept} ({self.answerable} answerable, {self.unanswerable} unanswerable), "
                f"skipped {self.skipped}; problems: {self.answer_mismatch} answers not matching the context "
                f"at answer_start, {self.no_answers} without answers, {self.empty_context} with an empty context")


@dataclass
class SquadData:
    """A read file: `examples` index into `contexts`; `articles` is the parsed `data` list, which the
    official metrics take as the gold standard."""

    path: str
    sha256: str
    version_2_with_negative: bool
    mode: str
    examples: list
    contexts: list
    articles: list
    summary: SquadReadSummary


def _where(i: int, j: Optional[int] = None, k: Optional[int] = None) -> str:
    s = f"data[{i}]"
    if j is not None:
        s += f".paragraphs[{j}]"
    if k is not None:
        s += f".qas[{k}]"
    return s


def _load_json(path: Path) -> tuple[Any, str]:
    if not path.is_file():
        raise FileNotFoundError(f"SQuAD file {path} does not exist")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SquadFormatError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); SQuAD files are UTF-8 JSON") \
            from None
    try:
        return json.loads(text), digest
    except json.JSONDecodeError as e:
        raise SquadFormatError(f"{path}:{e.lineno}:{e.colno}: malformed JSON: {e.msg} (character {e.pos})") \
            from None


def _answer_span(context: str, answer: Any) -> Optional[tuple[int, int]]:
    """The character span of `answer` if its text is at its answer_start, trimmed of outer whitespace."""
    if not isinstance(answer, dict):
        return None
    text, start = answer.get("text"), answer.get("answer_start")
    if not isinstance(text, str) or not text.strip() or isinstance(start, bool) or not isinstance(start, int):
        return None
    end = start + len(text)
    if start < 0 or end > len(context) or context[start:end] != text:
        return None
    while start < end and context[start].isspace():
        start += 1
    while end > start and context[end - 1].isspace():
        end -= 1
    return start, end


def read_squad_file(data_file: str | Path, version_2_with_negative: bool = False, mode: str = "train") -> SquadData:
    """Parse and check a SQuAD file. Raises `SquadFormatError` for problems that concern the whole file."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    path = Path(data_file)
    doc, digest = _load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        found = type(doc).__name__ if not isinstance(doc, dict) else f"keys {sorted(doc)[:5]}"
        raise SquadFormatError(f"{path}: expected a JSON object with a 'data' list of articles (SQuAD format), "
                               f"found {found}")

    summary = SquadReadSummary()
    examples: list[SquadExample] = []
    contexts: list[str] = []
    seen_ids: dict[str, str] = {}
    impossible_ids: list[str] = []
    has_impossible_key = False

    def warn(message: str) -> None:
        summary.warnings.append(message)
        if len(summary.warnings) <= _MAX_LOGGED_WARNINGS:
            logger.warning("%s: %s", path, message)

    for i, article in enumerate(doc["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise SquadFormatError(f"{path}: {_where(i)} must be an object with a 'paragraphs' list")
        summary.articles += 1
        title = article.get("title", "") if isinstance(article.get("title", ""), str) else ""
        for j, paragraph in enumerate(article["paragraphs"]):
            if not isinstance(paragraph, dict):
                raise SquadFormatError(f"{path}: {_where(i, j)} must be an object with 'context' and 'qas'")
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise SquadFormatError(f"{path}: {_where(i, j)} has no 'context' string "
                                       f"(found {type(context).__name__})")
            qas = paragraph.get("qas", [])
            if not isinstance(qas, list):
                raise SquadFormatError(f"{path}: {_where(i, j)}.qas must be a list, found {type(qas).__name__}")
            summary.paragraphs += 1
            context_index = len(contexts)
            contexts.append(context)
            empty_context = not context.strip()

            for k, qa in enumerate(qas):
                where = _where(i, j, k)
                if not isinstance(qa, dict):
                    raise SquadFormatError(f"{path}: {where} must be an object with 'id' and 'question'")
                qid = qa.get("id")
                if isinstance(qid, int) and not isinstance(qid, bool):
                    qid = str(qid)
                if not isinstance(qid, str) or not qid:
                    raise SquadFormatError(f"{path}: {where} has no 'id' (question: {str(qa.get('question'))[:80]!r}); "
                                           f"every question needs a unique id to be predicted and scored")
                if qid in seen_ids:
                    raise SquadFormatError(f"{path}: {where} repeats the id {qid!r} of {seen_ids[qid]}")
                seen_ids[qid] = where
                question = qa.get("question")
                if not isinstance(question, str) or not question.strip():
                    raise SquadFormatError(f"{path}: {where} (id {qid}) has no 'question' text")
                summary.questions += 1

                if "is_impossible" in qa:
                    has_impossible_key = True
                is_impossible = bool(qa.get("is_impossible", False))
                if is_impossible:
                    impossible_ids.append(qid)
                answers = qa.get("answers", [])
                if not isinstance(answers, list):
                    raise SquadFormatError(f"{path}: {where} (id {qid}): 'answers' must be a list")

                example = SquadExample(qid, question, context_index, answers, is_impossible, title=title)
                if empty_context:
                    summary.empty_context += 1
                    warn(f"question {qid} ({where}) has an empty context")
                    if mode == "train":
                        summary.skipped_ids.append(qid)
                        continue
                elif mode != "test" and not is_impossible:
                    if not answers:
                        summary.no_answers += 1
                        warn(f"question {qid} ({where}) is answerable but has no answers")
                        if mode == "train":
                            summary.skipped_ids.append(qid)
                            continue
                    else:
                        span = next((s for s in map(lambda a: _answer_span(context, a), answers) if s), None)
                        if span is None:
                            summary.answer_mismatch += 1
                            a = answers[0] if isinstance(answers[0], dict) else {}
                            warn(f"question {qid} ({where}): answer {str(a.get('text'))[:60]!r} is not in the "
                                 f"context at answer_start={a.get('answer_start')!r}")
                            if mode == "train":
                                summary.skipped_ids.append(qid)
                                continue
                        else:
                            example.answer_start, example.answer_end = span
                summary.kept += 1
                if is_impossible:
                    summary.unanswerable += 1
                else:
                    summary.answerable += 1
                examples.append(example)

    if impossible_ids and not version_2_with_negative:
        raise SquadFormatError(
            f"{path} has {len(impossible_ids)} unanswerable questions (is_impossible: true, e.g. id "
            f"{impossible_ids[0]}): it is SQuAD v2.0 data, read with version_2_with_negative=False; "
            f"pass --version_2_with_negative")
    if version_2_with_negative and mode != "test" and summary.questions and not has_impossible_key:
        raise SquadFormatError(
            f"{path} has no 'is_impossible' field on any question: it is SQuAD v1.1 data, read with "
            f"version_2_with_negative=True; drop --version_2_with_negative")
    if summary.skipped or summary.warnings:
        logger.warning("%s: %s", path, summary)
    return SquadData(str(path), digest, version_2_with_negative, mode, examples, contexts, doc["data"], summary)
