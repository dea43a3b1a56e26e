"""Sentences and sentence pairs -> BERT inputs, and the feature cache (GLUE and text classification).

A single sentence becomes `[CLS] a [SEP]`, a pair `[CLS] a [SEP] b [SEP]` with token types 0 up to
and including the first [SEP] and 1 after it. Too-long inputs are cut as BERT's `run_classifier.py`
does (`_truncate_seq_pair`, "longest first"): one token at a time from the end of whichever text is
longer (the second on a tie), so a short premise is never cut to save a long hypothesis. All texts
are tokenized in one batched call to the Rust tokenizer.

Features are flat numpy arrays (one ragged id array plus row offsets), cached next to the data file
with `torch.save` under a name that hashes everything that changes them, written atomically, and
built by rank 0 alone under torch.distributed, as the SQuAD cache is.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from nmod.log import get_logger
from nmod.progress import progress

from ..feature_cache import feature_cache_path  # noqa: F401 (re-exported)
from ..feature_cache import load_or_build_features as load_or_build_cached

__all__ = ["SentenceFeatures", "truncate_pair_lengths", "encode_sentences", "load_or_build_features",
           "feature_cache_path"]

logger = get_logger(__name__)

CACHE_FORMAT = 1


@dataclass
class SentenceFeatures:
    """Row i: ids `input_ids_flat[input_offsets[i]:input_offsets[i+1]]`; token types switch to 1 at
    `segment_a_len[i]` (= the row length for a single sentence); `labels[i]` (class id, score, or
    the "no label" value in test files); `example_index[i]` the example the row came from."""

    input_ids_flat: np.ndarray  # int32 (total tokens,)
    input_offsets: np.ndarray  # int64 (N + 1,)
    segment_a_len: np.ndarray  # int32 (N,)
    labels: np.ndarray  # int64 (N,) or float32 (N,)
    example_index: np.ndarray  # int64 (N,)
    truncated: int = 0  # rows cut to max_seq_length (not an array: kept out of the cached tensors)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.input_offsets)

    def input_ids(self, i: int) -> np.ndarray:
        return self.input_ids_flat[self.input_offsets[i]:self.input_offsets[i + 1]]

    def to_tensors(self) -> dict:
        out = {f.name: torch.from_numpy(np.ascontiguousarray(getattr(self, f.name))) for f in fields(self)
               if f.name != "truncated"}
        out["truncated"] = torch.tensor(self.truncated)
        return out

    @classmethod
    def from_tensors(cls, tensors: dict) -> "SentenceFeatures":
        arrays = {f.name: tensors[f.name].numpy() for f in fields(cls) if f.name != "truncated"}
        return cls(**arrays, truncated=int(tensors["truncated"]))


def truncate_pair_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths after BERT's longest-first pair truncation to `budget` tokens in all.

    Closed form of: while a + b > budget, drop a token from a if a > b else from b.
    """
    if len_a + len_b <= budget:
        return len_a, len_b
    short = min(len_a, len_b)
    if budget - short >= short:  # only the longer text is cut, down to what the shorter one leaves
        return (budget - short, len_b) if len_a > len_b else (len_a, budget - short)
    # Both end up (about) half: cutting alternates, the second text first on a tie.
    return (budget + 1) // 2, budget // 2


def encode_sentences(tokenizer, texts_a: Sequence[str], texts_b: Optional[Sequence[str]], labels: np.ndarray,
                     max_seq_length: int) -> SentenceFeatures:
    """Tokenize every text once (batched, in Rust) and assemble the BERT inputs of each row."""
    specials = 2 if texts_b is None else 3
    if max_seq_length < specials + 1:
        raise ValueError(f"max_seq_length={max_seq_length} leaves no room for text after the {specials} special "
                         f"tokens of a {'pair' if texts_b is not None else 'sentence'}; raise --max_seq_length")
    budget = max_seq_length - specials
    cls_id, sep_id = tokenizer.cls_id, tokenizer.sep_id
    ids_a = [e.ids for e in tokenizer.encode_batch(list(texts_a))]
    ids_b = [e.ids for e in tokenizer.encode_batch(list(texts_b))] if texts_b is not None else None

    rows, seg_a, truncated = [], [], 0
    for i, a in enumerate(progress(ids_a, desc="features", unit="rows")):
        if ids_b is None:
            truncated += len(a) > budget
            row = [cls_id, *a[:budget], sep_id]
            seg_a.append(len(row))
        else:
            b = ids_b[i]
            la, lb = truncate_pair_lengths(len(a), len(b), budget)
            truncated += (la, lb) != (len(a), len(b))
            row = [cls_id, *a[:la], sep_id, *b[:lb], sep_id]
            seg_a.append(la + 2)
        rows.append(row)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    flat = np.fromiter((t for r in rows for t in r), dtype=np.int32, count=int(offsets[-1]))
    if truncated:
        logger.warning("%d of %d rows were cut to max_seq_length=%d tokens (raise --max_seq_length to keep them whole)",
                       truncated, len(rows), max_seq_length)
    return SentenceFeatures(flat, offsets, np.asarray(seg_a, dtype=np.int32), labels,
                            np.arange(len(rows), dtype=np.int64), truncated)


def load_or_build_features(data_file: str | Path, key: dict, build: Callable[[], SentenceFeatures],
                           use_cache: bool = True) -> tuple[SentenceFeatures, Optional[Path]]:
    """Sentence features from the shared feature cache (`nmod_nlp.data.feature_cache`), or `build()`.

    `key` must hold everything that changes the features (the data file's hash, the reader's
    settings, the tokenizer's fingerprint, max_seq_length); the cache format is added here.
    """
    return load_or_build_cached(data_file, {**key, "format": CACHE_FORMAT}, build, SentenceFeatures, use_cache)
