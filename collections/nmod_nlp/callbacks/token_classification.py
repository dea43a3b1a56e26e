"""An EvaluatorCallback for one-label-per-word tasks (NER, punctuation, capitalization, slots).

Scores are read on each word's first sub-token (`subtokens_mask`), so every word is scored once
whatever the tokenizer made of it. Each rank holds a contiguous block of the eval windows, and the
windows follow the words of the file in order, so concatenating the gathered values rank by rank,
batch by batch, row by row gives one prediction per word in file order: the order the prediction
file is written in and the order conlleval reads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from nmod.callbacks import EvaluatorCallback
from nmod.log import get_logger

from ..metrics import classification_report, conlleval, format_conlleval, format_report
from ._evaluator import is_main, task_evaluator

__all__ = ["token_classification_evaluator_callback", "first_subtoken_values", "write_conll_predictions"]

logger = get_logger(__name__)


def first_subtoken_values(logits: torch.Tensor, labels: torch.Tensor, subtokens_mask: torch.Tensor
                          ) -> tuple[np.ndarray, np.ndarray]:
    """(predicted ids, gold ids) of the first sub-token of every word in a batch, row by row (word order)."""
    keep = subtokens_mask.bool()
    return logits.argmax(dim=-1)[keep].numpy(), labels[keep].numpy()


def write_conll_predictions(path: Path, sentences: Sequence[Sequence[str]], gold: Sequence[Sequence[str]],
                            predicted: Sequence[Sequence[str]]) -> Path:
    """The file conlleval reads: `word gold predicted` per word, a blank line after each sentence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for words, g, p in zip(sentences, gold, predicted):
            for line in zip(words, g, p):
                f.write(" ".join(line) + "\n")
            f.write("\n")
    return path


def token_classification_evaluator_callback(
    logits: Any,
    labels: Any,
    subtokens_mask: Any,
    label_names: Sequence[str],
    sentences: Optional[Sequence[Sequence[str]]] = None,
    predictions_file: Optional[str | Path] = None,
    entity_level: bool = False,
    name: str = "",
    print_report: bool = True,
    on_results: Optional[Callable[[np.ndarray, np.ndarray], None]] = None,
    **schedule: Any,
) -> EvaluatorCallback:
    """Evaluate a `TokenClassifier`'s `logits` (B, T, C) against `labels` (B, T) on first sub-tokens.

    Metrics (every rank computes them from the gathered values): NeMo's token-level report, as
    fractions: `accuracy`, `macro_f1`, `micro_f1`, `weighted_f1` (the per-label table is printed on
    rank 0 when `print_report`). With `entity_level`, also conlleval's entity scores in percent,
    as conlleval prints them: `entity_precision`, `entity_recall`, `entity_f1` (label names must be
    IOB tags). Keys are prefixed by `name` + "_" when given (a task with two heads: "punct", "capit").

    `sentences` (the eval set's words, in file order) lets rank 0 write `predictions_file`, one
    `word gold predicted` line per word and a blank line between sentences; the count of words is
    checked against the predictions. `on_results(preds, gold)` gets the word-level id arrays on
    rank 0 (a confusion matrix, say).

    ``schedule``: when it evaluates, `EvaluatorCallback`'s keywords (``eval_step``, ``eval_epoch``, ...).
    """
    label_names = [str(s) for s in label_names]
    if predictions_file is not None and sentences is None:
        raise ValueError("token_classification_evaluator_callback: predictions_file needs the eval sentences")
    prefix = f"{name}_" if name else ""

    def on_batch(values: dict, global_vars: dict) -> None:
        triples = zip(values[logits.name], values[labels.name], values[subtokens_mask.name])
        for rank, (scores, gold, mask) in enumerate(triples):
            global_vars.setdefault(rank, []).append(first_subtoken_values(scores, gold, mask))

    def on_done(global_vars: dict) -> dict:
        if not global_vars:
            return {}
        pairs = [p for rank in sorted(global_vars) for p in global_vars[rank]]
        preds = np.concatenate([p for p, _ in pairs]).astype(np.int64)
        gold = np.concatenate([g for _, g in pairs]).astype(np.int64)
        split = None
        if sentences is not None:
            lengths = [len(s) for s in sentences]
            if sum(lengths) != len(preds):
                raise ValueError(f"the eval data has {sum(lengths)} words but {len(preds)} first sub-tokens were "
                                 f"scored: the sentences passed do not match the data layer")
            split = np.cumsum(lengths)[:-1]
        report = classification_report(preds, gold, len(label_names), label_names)
        metrics = {"accuracy": report["accuracy"], "macro_f1": report["macro"]["f1"],
                   "micro_f1": report["micro"]["f1"], "weighted_f1": report["weighted"]["f1"]}
        names = np.asarray(label_names, dtype=object)
        entity = None
        if entity_level or predictions_file is not None:
            gold_tags = np.split(names[gold], split) if split is not None else [names[gold]]
            pred_tags = np.split(names[preds], split) if split is not None else [names[preds]]
            if entity_level:
                entity = conlleval(gold_tags, pred_tags)
                metrics.update(entity_precision=entity["precision"], entity_recall=entity["recall"],
                               entity_f1=entity["f1"])
        if is_main():
            if print_report:
                print(format_report(report))
                if entity is not None:
                    print(format_conlleval(entity))
            for key, value in metrics.items():
                logger.info(f"{prefix}{key} {value:.2f}" if key.startswith("entity_") else f"{prefix}{key} {value:.4f}")
            if predictions_file is not None:
                write_conll_predictions(Path(predictions_file), sentences, gold_tags, pred_tags)
            if on_results is not None:
                on_results(preds, gold)
        return {prefix + k: v for k, v in metrics.items()}

    return task_evaluator([logits, labels, subtokens_mask], on_batch, on_done, **schedule)
