"""Inference on raw text from a model folder (``nmod_nlp.model_folder``).

Question answering::

    from nmod_nlp.inference import QuestionAnswerer

    qa = QuestionAnswerer.from_model_dir("work_dir/squad/model")
    qa("Who wrote it?", "It was written by Ada in 1843.")
    # {'answer': 'Ada', 'start': 18, 'end': 21, 'score': 0.93}

The question and context become SQuAD examples in memory and take the recipe's own path: the same
feature windows (``convert_examples_to_features``, with the run's ``max_seq_length``, ``doc_stride``
and ``max_query_length`` as the folder records them), the same batching, the same split of the QA
head's logits (``SpanningLoss``) and the same n-best decoding (``SquadEvaluator`` ->
``postprocess_predictions``). So a question in the recipe's eval file gets the answer the recipe
wrote to ``predictions.json``, and ``context[start:end] == answer`` always holds.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Optional

import torch

from nmod.core.errors import ConfigError, DataFormatError
from nmod.progress import progress

from ..data.batching import PadCollate
from ..data.squad import SquadData, SquadDataset, SquadEvaluator, SquadExample, SquadReadSummary, read_squad_file
from ..data.squad.features import load_or_create_features
from ..model_folder import ModelFolder, load_model_folder
from ..modules.losses import SpanningLoss
from .runtime import inference_model

__all__ = ["QuestionAnswerer", "SQUAD_SETTINGS"]

# The settings a SQuAD model folder records (``extra``) and their defaults, NeMo's and the recipe's.
SQUAD_SETTINGS = {
    "version_2_with_negative": False,
    "max_seq_length": 384,
    "doc_stride": 128,
    "max_query_length": 64,
    "n_best_size": 20,
    "max_answer_length": 30,
    "null_score_diff_threshold": 0.0,
}


class _InMemorySquadDataset(SquadDataset):
    """``SquadDataset`` over examples already in memory (no file, no feature cache)."""

    def __init__(self, data: SquadData, tokenizer, max_seq_length: int, doc_stride: int, max_query_length: int):
        self.tokenizer = tokenizer
        self.mode = data.mode
        self.version_2_with_negative = data.version_2_with_negative
        self.max_seq_length = max_seq_length
        self.pad_to_length = None
        self.data = data
        self.features, self.cache_path = load_or_create_features(
            data, tokenizer, max_seq_length, doc_stride, max_query_length, use_cache=False)
        self.lengths = self.features.lengths


def squad_data(items: Iterable[Mapping[str, str]], version_2_with_negative: bool = False) -> SquadData:
    """SQuAD test data from ``{"id", "question", "context"}`` items (``id`` optional: "0", "1", ...)."""
    examples, contexts, paragraphs, seen = [], [], [], set()
    for n, item in enumerate(items):
        qid = str(item.get("id", n))
        question, context = item.get("question"), item.get("context")
        if not isinstance(question, str) or not question.strip():
            raise DataFormatError(f"question {qid}: the question is empty or not text ({question!r})")
        if not isinstance(context, str):
            raise DataFormatError(f"question {qid}: the context must be text, got {type(context).__name__}")
        if qid in seen:
            raise DataFormatError(f"question id {qid!r} is given twice; ids must be unique")
        seen.add(qid)
        examples.append(SquadExample(qid, question, len(contexts)))
        contexts.append(context)
        paragraphs.append({"context": context, "qas": [{"id": qid, "question": question}]})
    summary = SquadReadSummary(articles=1, paragraphs=len(contexts), questions=len(examples), kept=len(examples))
    return SquadData("<memory>", "", version_2_with_negative, "test", examples, contexts,
                     [{"title": "", "paragraphs": paragraphs}], summary)


class QuestionAnswerer:
    """Extractive QA with an encoder and a QA head (``TokenClassifier(num_classes=2)``), run eagerly
    (``runtime="torch"``) or by ONNX Runtime (``runtime="onnxruntime"``; ``inference.runtime``).

    ``__call__(question, context)`` answers one question; ``answer(items)`` and ``answer_file(path)``
    answer many, batched. Each answer is ``{"answer", "start", "end", "score"}`` (plus ``"id"`` for
    many): ``start``/``end`` are character offsets into the context (``context[start:end] ==
    answer``), ``score`` is the answer's probability among the n-best candidates. With a SQuAD v2.0
    model a question may get no answer: ``answer`` is ``""`` and ``start``/``end`` are ``None``.
    """

    def __init__(self, encoder, qa_head, tokenizer, batch_size: int = 8, device: Optional[str] = None,
                 precision: str = "fp32", runtime: str = "torch", **settings):
        unknown = sorted(set(settings) - set(SQUAD_SETTINGS))
        if unknown:
            raise TypeError(f"QuestionAnswerer: unknown settings {unknown}; expected {sorted(SQUAD_SETTINGS)}")
        self.settings = {**SQUAD_SETTINGS, **settings}
        self.encoder, self.qa_head, self.tokenizer = encoder, qa_head, tokenizer
        self.batch_size = int(batch_size)
        self.split = SpanningLoss()  # splits the head's (B, T, 2) logits as the recipe does, masking padding
        self.precision, self.runtime = precision, runtime
        self.forward = inference_model(encoder, qa_head, device, precision, runtime)
        self.device = self.forward.device

    @classmethod
    def from_model_dir(cls, path: str | os.PathLike, batch_size: int = 8, device: Optional[str] = None,
                       precision: str = "fp32", runtime: str = "torch", **settings) -> "QuestionAnswerer":
        """From a SQuAD model folder (``work_dir/model`` of ``question_answering_squad.py``).

        The windowing and decoding settings are the folder's (those of the run that trained it);
        ``settings`` override them, e.g. ``n_best_size=5``.
        """
        return cls.from_model_folder(load_model_folder(path), batch_size, device, precision, runtime, **settings)

    @classmethod
    def from_model_folder(cls, model: ModelFolder, batch_size: int = 8, device: Optional[str] = None,
                          precision: str = "fp32", runtime: str = "torch", **settings) -> "QuestionAnswerer":
        if model.task != "squad":
            raise ConfigError(f"{model.path} holds a {model.task!r} model, not a question-answering one "
                              f"(task 'squad', written by question_answering_squad.py)")
        missing = [n for n in ("encoder", "qa_head") if n not in model.modules]
        if missing:
            raise ConfigError(f"{model.path}: a SQuAD model folder needs the modules 'encoder' and 'qa_head'; "
                              f"missing {missing}, found {sorted(model.modules)}")
        recorded = {k: v for k, v in model.extra.items() if k in SQUAD_SETTINGS}
        return cls(model["encoder"], model["qa_head"], model.tokenizer, batch_size, device, precision, runtime,
                   **{**recorded, **settings})

    def __call__(self, question: str, context: str) -> dict:
        (result,) = self.answer([{"id": "0", "question": question, "context": context}])
        del result["id"]
        return result

    def answer(self, items: Iterable[Mapping[str, str]]) -> list[dict]:
        """``{"id", "question", "context"}`` items -> ``{"id", "answer", "start", "end", "score"}``, in order."""
        return self.predict(squad_data(items, self.settings["version_2_with_negative"]))

    def answer_file(self, path: str | os.PathLike) -> list[dict]:
        """Every question of a SQuAD-format JSON file (answers not needed), in file order."""
        return self.predict(read_squad_file(Path(path), self.settings["version_2_with_negative"], mode="test"))

    @torch.no_grad()
    def predict(self, data: SquadData) -> list[dict]:
        s = self.settings
        dataset = _InMemorySquadDataset(data, self.tokenizer, s["max_seq_length"], s["doc_stride"],
                                        s["max_query_length"])
        evaluator = SquadEvaluator(dataset, s["n_best_size"], s["max_answer_length"], s["null_score_diff_threshold"])
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, shuffle=False,
                                             collate_fn=PadCollate((self.tokenizer.pad_id, 0, 0, 0, 0, 0)))
        for input_ids, type_ids, mask, unique_ids, starts, ends in progress(loader, desc="infer", unit="batches"):
            input_ids, type_ids, mask = (t.to(self.device) for t in (input_ids, type_ids, mask))
            (logits,) = self.forward(input_ids, type_ids, mask)
            _, start_logits, end_logits = self.split(logits=logits, start_positions=starts.to(self.device),
                                                     end_positions=ends.to(self.device), attention_mask=mask)
            evaluator.add(unique_ids, start_logits, end_logits)
        preds = evaluator.predictions()
        return [_result(ex.qas_id, preds) for ex in data.examples]


def _result(qid: str, preds) -> dict:
    answer = preds.predictions[qid]
    span = preds.spans.get(qid)
    score = next((e["probability"] for e in preds.nbest[qid] if e["text"] == answer), 0.0)
    start, end = (span if span is not None else (None, None))
    return {"id": qid, "answer": answer, "start": start, "end": end, "score": float(score)}
