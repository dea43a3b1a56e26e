"""Words -> BERT inputs for token tasks (NER, punctuation and capitalization, slots): one label per word.

Each word is tokenized on its own (NeMo's rule) into sub-tokens. A window is
`[CLS] sub-tokens of whole words [SEP]`; per sub-token it carries:

- the word's label, on every sub-token of the word (NeMo copies it; only the first one is scored);
- `subtokens_mask`: 1 on each word's first sub-token, 0 on the others and on [CLS]/[SEP]. Predictions
  are read there, so there is exactly one per word;
- `loss_mask`: 1 where the loss counts. First sub-tokens always; the other sub-tokens unless
  `ignore_extra_tokens`; [CLS] and [SEP] (label `pad_label`) unless `ignore_start_end`.

A sentence longer than `max_seq_length - 2` sub-tokens is split, between words, into several
windows that follow each other (no overlap, so every word is predicted once); the split is counted
and logged, never silent. A single word longer than a whole window keeps its first sub-tokens (its
label sits on the first one) and is counted too. A word the tokenizer turns into nothing (a stray
control character) becomes [UNK], so it still gets a prediction. The windows of all sentences are
in sentence order, so window order is word order, which evaluators use to restore the file.

Features are flat numpy arrays with row offsets, cached like the GLUE ones (`load_or_build_features`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from nmod.log import get_logger
from nmod.progress import progress

__all__ = ["TokenFeatures", "encode_words", "word_lengths"]

logger = get_logger(__name__)

_COUNTS = ("sentences_split", "words_cut", "empty_words")


@dataclass
class TokenFeatures:
    """Window i spans `offsets[i]:offsets[i+1]` of every `*_flat` array (one entry per sub-token,
    [CLS] and [SEP] included); it holds words `first_word[i] : first_word[i] + num_words[i]` of
    sentence `sentence_index[i]`. `labels[name]` is one flat int64 array per label set ("labels" for
    NER; "punct_labels" and "capit_labels" for punctuation, say)."""

    input_ids_flat: np.ndarray  # int32 (total sub-tokens,)
    loss_mask_flat: np.ndarray  # int8
    subtokens_mask_flat: np.ndarray  # int8
    offsets: np.ndarray  # int64 (N + 1,)
    sentence_index: np.ndarray  # int64 (N,)
    first_word: np.ndarray  # int64 (N,)
    num_words: np.ndarray  # int64 (N,)
    labels: dict = field(default_factory=dict)  # name -> int64 (total sub-tokens,)
    sentences_split: int = 0  # sentences cut into more than one window
    words_cut: int = 0  # words longer than a window, cut to their first sub-tokens
    empty_words: int = 0  # words the tokenizer made nothing of, encoded as [UNK]

    def __len__(self) -> int:
        return len(self.sentence_index)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, name: str, i: int) -> np.ndarray:
        """Window i of the flat array `name` ("input_ids", "loss_mask", "subtokens_mask") or of a label set."""
        flat = self.labels[name] if name in self.labels else getattr(self, f"{name}_flat")
        return flat[self.offsets[i]:self.offsets[i + 1]]

    def to_tensors(self) -> dict:
        out = {k: torch.from_numpy(np.ascontiguousarray(getattr(self, k)))
               for k in ("input_ids_flat", "loss_mask_flat", "subtokens_mask_flat", "offsets", "sentence_index",
                         "first_word", "num_words")}
        out.update({f"labels.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.labels.items()})
        out.update({k: torch.tensor(getattr(self, k)) for k in _COUNTS})
        return out

    @classmethod
    def from_tensors(cls, tensors: dict) -> "TokenFeatures":
        arrays = {k: v.numpy() for k, v in tensors.items() if not k.startswith("labels.") and k not in _COUNTS}
        labels = {k[len("labels."):]: v.numpy() for k, v in tensors.items() if k.startswith("labels.")}
        return cls(**arrays, labels=labels, **{k: int(tensors[k]) for k in _COUNTS})


def word_lengths(features: TokenFeatures, num_sentences: int) -> np.ndarray:
    """Words per sentence, as the windows cover them (each word is in exactly one window)."""
    return np.bincount(features.sentence_index, weights=features.num_words, minlength=num_sentences).astype(np.int64)


def encode_words(
    tokenizer,
    sentences: Sequence[Sequence[str]],
    labels: Optional[Mapping[str, Sequence[Sequence[int]]]] = None,
    max_seq_length: int = 128,
    ignore_extra_tokens: bool = True,
    ignore_start_end: bool = True,
    pad_label: int = 0,
) -> TokenFeatures:
    """Sub-token windows for `sentences` (lists of words) and their per-word label ids.

    `labels` maps a label-set name to one list of ids per sentence, one id per word (check lengths
    before: a mismatch raises ValueError naming the sentence). With no labels (inference) the
    features carry none. NeMo's flags keep their sense: `ignore_extra_tokens=True` leaves a word's
    sub-tokens after the first out of the loss, `ignore_start_end=True` leaves [CLS] and [SEP] out.
    """
    if max_seq_length < 3:
        raise ValueError(f"max_seq_length={max_seq_length} leaves no room for a word between [CLS] and [SEP]; "
                         f"raise --max_seq_length")
    labels = dict(labels or {})
    for name, per_sentence in labels.items():
        if len(per_sentence) != len(sentences):
            raise ValueError(f"{len(per_sentence)} label lists in '{name}' for {len(sentences)} sentences")
        for s, (words, ids) in enumerate(zip(sentences, per_sentence)):
            if len(words) != len(ids):
                raise ValueError(f"sentence {s}: {len(words)} words but {len(ids)} labels in '{name}'")
    budget = max_seq_length - 2
    vocab = {w: i for i, w in enumerate(dict.fromkeys(w for words in sentences for w in words))}
    pieces = [e.ids for e in tokenizer.encode_batch(list(vocab))] if vocab else []  # one batched Rust call
    unk, cls_id, sep_id = tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id
    empty = sum(1 for words in sentences for w in words if not pieces[vocab[w]])
    extra_loss = int(not ignore_extra_tokens)
    edge_loss = int(not ignore_start_end)

    ids, loss, first = [], [], []
    label_out = {name: [] for name in labels}
    offsets, sentence_index, first_word, num_words = [0], [], [], []
    split = cut = 0

    def close(s: int, start: int, end: int, window: list) -> None:
        # window: (sub-token ids, word index) of whole words start..end-1
        ids.append(cls_id), loss.append(edge_loss), first.append(0)
        for name in labels:
            label_out[name].append(pad_label)
        for sub, w in window:
            ids.extend(sub)
            loss.append(1), loss.extend([extra_loss] * (len(sub) - 1))
            first.append(1), first.extend([0] * (len(sub) - 1))
            for name, per_sentence in labels.items():
                label_out[name].extend([per_sentence[s][w]] * len(sub))
        ids.append(sep_id), loss.append(edge_loss), first.append(0)
        for name in labels:
            label_out[name].append(pad_label)
        offsets.append(len(ids))
        sentence_index.append(s), first_word.append(start), num_words.append(end - start)

    for s, words in enumerate(progress(sentences, desc="features", unit="sentences")):
        windows_before = len(sentence_index)
        window, used, start = [], 0, 0
        for w, word in enumerate(words):
            sub = pieces[vocab[word]] or [unk]
            if len(sub) > budget:
                sub, cut = sub[:budget], cut + 1
            if used + len(sub) > budget and window:
                close(s, start, w, window)
                window, used, start = [], 0, w
            window.append((sub, w))
            used += len(sub)
        if window or not words:
            close(s, start, len(words), window)
        split += len(sentence_index) - windows_before > 1
    n_tokens = len(ids)
    features = TokenFeatures(
        input_ids_flat=np.asarray(ids, dtype=np.int32).reshape(n_tokens),
        loss_mask_flat=np.asarray(loss, dtype=np.int8).reshape(n_tokens),
        subtokens_mask_flat=np.asarray(first, dtype=np.int8).reshape(n_tokens),
        offsets=np.asarray(offsets, dtype=np.int64),
        sentence_index=np.asarray(sentence_index, dtype=np.int64),
        first_word=np.asarray(first_word, dtype=np.int64),
        num_words=np.asarray(num_words, dtype=np.int64),
        labels={name: np.asarray(v, dtype=np.int64).reshape(n_tokens) for name, v in label_out.items()},
        sentences_split=int(split), words_cut=cut, empty_words=empty,
    )
    if split:
        logger.warning("%d of %d sentences are longer than max_seq_length=%d sub-tokens and were split into "
                       "consecutive windows between words (%d windows in all); raise --max_seq_length to keep "
                       "them whole", split, len(sentences), max_seq_length, len(features))
    if cut:
        logger.warning("%d words are longer than a whole window (%d sub-tokens) and keep only their first "
                       "sub-tokens", cut, budget)
    if empty:
        logger.warning("%d words tokenize to nothing and are encoded as [UNK]", empty)
    return features
