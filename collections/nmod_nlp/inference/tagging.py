"""Word-level tasks from a model folder: named entities, punctuation and capitalization, intents and slots.

    from nmod_nlp.inference import IntentSlotTagger, PunctuationCapitalizer, TokenTagger

    TokenTagger.from_model_dir("work_dir/ner/model")("anna lives in paris")
    # {'words': ['anna', 'lives', 'in', 'paris'], 'labels': ['B-PER', 'O', 'O', 'B-LOC'], 'tagged': 'anna[B-PER] ...'}
    PunctuationCapitalizer.from_model_dir("work_dir/punct/model")("how are you")   # {'text': 'How are you?', ...}
    IntentSlotTagger.from_model_dir("work_dir/atis/model")("book a flight to rome")
    # {'intent': 'book_flight', 'intent_score': 0.93, 'slots': ['O', 'O', 'O', 'O', 'B-city']}

A query is split into words on white space, as the training files were; each word is tokenized on
its own and gets the label predicted on its first sub-token (``features.encode_words``, the recipes'
windows: a query longer than the run's ``max_seq_length`` is read in consecutive windows, and every
word is predicted once).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from nmod.core.errors import DataFormatError

from ..data.punctuation_capitalization import punctuate
from ..data.token_classification.dataset import TokenClassificationDataset, token_collate
from ..data.token_classification.features import encode_words, word_lengths
from ._base import Predictor, as_list, batched

__all__ = ["TokenTagger", "PunctuationCapitalizer", "IntentSlotTagger"]


class _WordPredictor(Predictor):
    """Runs the windows of many queries and gathers, per head output, one prediction per word."""

    def _words(self, queries: Iterable[str]) -> tuple[list[str], list[list[str]]]:
        queries = as_list(queries, str)
        for i, q in enumerate(queries):
            if not isinstance(q, str):
                raise DataFormatError(f"query {i}: expected a text, got {type(q).__name__}")
            if not q.split():
                raise DataFormatError(f"query {i} is empty: there is no word to label")
        return queries, [q.split() for q in queries]

    @torch.no_grad()
    def _run(self, words: list[list[str]], word_outputs: tuple[str, ...], sentence_outputs: tuple[str, ...] = ()
             ) -> tuple[dict, dict]:
        """``{output: [per query (num_words, classes) probabilities]}`` for the token outputs and
        ``{output: [per query (classes,) probabilities of its first window]}`` for the sentence ones."""
        features = encode_words(self.tokenizer, words, None, int(self.setting("max_seq_length", 128)))
        dataset = TokenClassificationDataset(features, ())
        per_word = {name: [] for name in word_outputs}
        per_window = {name: [] for name in sentence_outputs}
        for batch in batched(dataset, token_collate(self.tokenizer.pad_id, 0), self.batch_size):
            input_ids, type_ids, mask, _loss_mask, first = batch
            outs = self.outputs(input_ids, type_ids, mask)
            first = first.bool()
            for name in word_outputs:  # rows are windows in query order, words in order within each
                per_word[name].append(torch.softmax(outs[name].float(), -1).cpu()[first])
            for name in sentence_outputs:
                per_window[name].append(torch.softmax(outs[name].float(), -1).cpu())
        counts = word_lengths(features, len(words))
        split = np.cumsum(counts)[:-1]
        words_out = {name: np.split(torch.cat(rows).numpy(), split) for name, rows in per_word.items()}
        first_window = np.searchsorted(features.sentence_index, np.arange(len(words)))
        sentences_out = {name: list(torch.cat(rows).numpy()[first_window]) for name, rows in per_window.items()}
        return words_out, sentences_out


class TokenTagger(_WordPredictor):
    """A label per word (NER): ``{"words", "labels", "scores", "tagged"}``, ``tagged`` as NeMo's NER
    inference prints it (``santa[B-LOC] clara[I-LOC]``; words with the none label stay bare)."""

    TASKS = ("ner",)

    def __call__(self, query: str) -> dict:
        return self.predict([query])[0]

    def predict(self, queries: Iterable[str]) -> list[dict]:
        queries, words = self._words(queries)
        names, none = self.labels("labels"), self.setting("none_label", "O")
        probs, _ = self._run(words, ("logits",))
        results = []
        for ws, p in zip(words, probs["logits"]):
            labels = [names[i] for i in p.argmax(-1)]
            results.append({"words": ws, "labels": labels, "scores": [float(x) for x in p.max(-1)],
                            "tagged": " ".join(w if lab == none else f"{w}[{lab}]" for w, lab in zip(ws, labels))})
        return results


class PunctuationCapitalizer(_WordPredictor):
    """Punctuation and capitals restored: ``{"text", "punct", "capit"}`` (the labels per word); ``U``
    capitalizes a word, a mark other than the none label follows it."""

    TASKS = ("punctuation_capitalization",)

    def __call__(self, query: str) -> dict:
        return self.predict([query])[0]

    def predict(self, queries: Iterable[str]) -> list[dict]:
        queries, words = self._words(queries)
        punct_names, capit_names = self.labels("punct"), self.labels("capit")
        none = self.setting("none_label", "O")
        probs, _ = self._run(words, ("punct_logits", "capit_logits"))
        results = []
        for ws, p, c in zip(words, probs["punct_logits"], probs["capit_logits"]):
            punct = [punct_names[i] for i in p.argmax(-1)]
            capit = [capit_names[i] for i in c.argmax(-1)]
            results.append({"text": punctuate(ws, punct, capit, none_label=none), "punct": punct, "capit": capit})
        return results


class IntentSlotTagger(_WordPredictor):
    """An intent per query and a slot per word: ``{"intent", "intent_score", "slots"}``. A query read
    in several windows takes its first window's intent, as the recipe's inference does."""

    TASKS = ("intent_slot",)

    def __call__(self, query: str) -> dict:
        return self.predict([query])[0]

    def predict(self, queries: Iterable[str]) -> list[dict]:
        queries, words = self._words(queries)
        intents, slots = self.labels("intents"), self.labels("slots")
        per_word, per_query = self._run(words, ("slot_logits",), ("intent_logits",))
        results = []
        for s, i in zip(per_word["slot_logits"], per_query["intent_logits"]):
            results.append({"intent": intents[int(i.argmax())], "intent_score": float(i.max()),
                            "slots": [slots[k] for k in s.argmax(-1)]})
        return results
