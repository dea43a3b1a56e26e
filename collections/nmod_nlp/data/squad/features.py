"""SQuAD examples -> model features: doc_stride windows, char->token answers, and the feature cache.

Each feature is `[CLS] question [SEP] window-of-context [SEP]`. Windows follow Google's BERT
`run_squad.py`: a window holds `max_seq_length - len(question) - 3` context tokens and the next one
starts `doc_stride` tokens later, so `doc_stride` is the step between windows (not the overlap as in
Hugging Face's `stride`). Every context and every question is tokenized once, in one batched call to
the Rust tokenizer; the character offsets it returns map answers to tokens here and predicted tokens
back to the original text in post-processing.

Features are kept as flat numpy arrays (one ragged `input_ids` array plus row offsets) so a cache of
SQuAD train is one `torch.save` of a few tensors and loads in well under a second.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from nmod.progress import progress

from ..feature_cache import feature_cache_path  # noqa: F401 (re-exported)
from ..feature_cache import load_or_build_features as load_or_build_cached
from .reader import SquadData

__all__ = ["SquadFeatures", "convert_examples_to_features", "feature_cache_key", "feature_cache_path",
           "load_or_create_features", "UNIQUE_ID_BASE"]


UNIQUE_ID_BASE = 1000000000  # as BERT's run_squad.py numbers features
_CACHE_FORMAT = 1


@dataclass
class SquadFeatures:
    """All features of one file. Row `i` of the ragged arrays is `x_flat[x_offsets[i]:x_offsets[i+1]]`.

    `segment_a_len[i]` = len([CLS] question [SEP]): the first context token's position, and where token
    type ids switch from 0 to 1. `doc_start`/`doc_len` say which context tokens the window holds, and
    `context_token_offsets` rows are the (start, end) characters of every context token in its context.
    """

    input_ids_flat: np.ndarray  # int32 (total tokens,)
    input_offsets: np.ndarray  # int64 (F + 1,)
    segment_a_len: np.ndarray  # int32 (F,)
    start_positions: np.ndarray  # int64 (F,); 0 ([CLS]) when the window misses the answer / no answer
    end_positions: np.ndarray  # int64 (F,)
    unique_ids: np.ndarray  # int64 (F,)
    example_index: np.ndarray  # int64 (F,)
    doc_start: np.ndarray  # int32 (F,)
    doc_len: np.ndarray  # int32 (F,)
    context_token_offsets: np.ndarray  # int32 (total context tokens, 2)
    context_token_rows: np.ndarray  # int64 (C + 1,): context c's tokens are rows [rows[c], rows[c+1])

    def __len__(self) -> int:
        return len(self.unique_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.input_offsets)

    def input_ids(self, i: int) -> np.ndarray:
        return self.input_ids_flat[self.input_offsets[i]:self.input_offsets[i + 1]]

    def context_offsets(self, context_index: int) -> np.ndarray:
        rows = self.context_token_rows
        return self.context_token_offsets[rows[context_index]:rows[context_index + 1]]

    def to_tensors(self) -> dict:
        return {f.name: torch.from_numpy(np.ascontiguousarray(getattr(self, f.name))) for f in fields(self)}

    @classmethod
    def from_tensors(cls, tensors: dict) -> "SquadFeatures":
        return cls(**{f.name: tensors[f.name].numpy() for f in fields(cls)})


def _check_lengths(max_seq_length: int, max_query_length: int, doc_stride: int) -> None:
    if max_seq_length - max_query_length - 3 < 1:
        raise ValueError(f"max_seq_length={max_seq_length} leaves no room for context after a question of up to "
                         f"max_query_length={max_query_length} tokens and 3 special tokens; raise --max_seq_length "
                         f"or lower --max_query_length")
    if doc_stride < 1:
        raise ValueError(f"doc_stride must be a positive number of tokens, got {doc_stride}")


def _windows(num_tokens: int, max_tokens_for_doc: int, doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) of each window; one empty window for an empty context so it is still predicted."""
    spans, start = [], 0
    while True:
        length = min(num_tokens - start, max_tokens_for_doc)
        spans.append((start, length))
        if start + length >= num_tokens:
            return spans
        start += min(length, doc_stride)


def convert_examples_to_features(data: SquadData, tokenizer, max_seq_length: int = 384, doc_stride: int = 128,
                                 max_query_length: int = 64) -> SquadFeatures:
    """Tokenize all contexts and questions in two batched Rust calls, then cut windows."""
    _check_lengths(max_seq_length, max_query_length, doc_stride)
    cls_id, sep_id = tokenizer.cls_id, tokenizer.sep_id

    ctx_enc = tokenizer.encode_batch(data.contexts)
    ctx_ids = [e.ids for e in ctx_enc]
    ctx_offsets = [np.asarray(e.offsets, dtype=np.int32).reshape(-1, 2) for e in ctx_enc]
    del ctx_enc
    q_ids = [e.ids[:max_query_length] for e in tokenizer.encode_batch([ex.question for ex in data.examples])]

    ids_rows, seg_a, starts, ends, ex_index, doc_starts, doc_lens = [], [], [], [], [], [], []
    for n, (ex, q) in enumerate(progress(zip(data.examples, q_ids), total=len(data.examples), desc="features",
                                          unit="questions")):
        c = ex.context_index
        context_ids, offsets = ctx_ids[c], ctx_offsets[c]
        tok_start = tok_end = -1
        if ex.answer_start is not None and not ex.is_impossible and len(offsets):
            # First token ending after the answer's first character; last token starting before its end.
            tok_start = int(np.searchsorted(offsets[:, 1], ex.answer_start, side="right"))
            tok_end = int(np.searchsorted(offsets[:, 0], ex.answer_end, side="left")) - 1
            if tok_start > tok_end:  # the answer covers no token (only characters BERT drops)
                tok_start = tok_end = -1
        head = [cls_id] + q + [sep_id]
        a_len = len(head)
        for start, length in _windows(len(context_ids), max_seq_length - len(q) - 3, doc_stride):
            ids_rows.append(head + context_ids[start:start + length] + [sep_id])
            seg_a.append(a_len)
            if tok_start >= start and tok_end < start + length and tok_start >= 0:
                starts.append(tok_start - start + a_len)
                ends.append(tok_end - start + a_len)
            else:
                starts.append(0)
                ends.append(0)
            ex_index.append(n)
            doc_starts.append(start)
            doc_lens.append(length)

    lengths = np.fromiter((len(r) for r in ids_rows), dtype=np.int64, count=len(ids_rows))
    input_offsets = np.zeros(len(ids_rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=input_offsets[1:])
    flat = np.fromiter((t for r in ids_rows for t in r), dtype=np.int32, count=int(input_offsets[-1]))
    ctx_rows = np.zeros(len(ctx_offsets) + 1, dtype=np.int64)
    np.cumsum([len(o) for o in ctx_offsets], out=ctx_rows[1:])
    return SquadFeatures(
        input_ids_flat=flat,
        input_offsets=input_offsets,
        segment_a_len=np.asarray(seg_a, dtype=np.int32),
        start_positions=np.asarray(starts, dtype=np.int64),
        end_positions=np.asarray(ends, dtype=np.int64),
        unique_ids=UNIQUE_ID_BASE + np.arange(len(ids_rows), dtype=np.int64),
        example_index=np.asarray(ex_index, dtype=np.int64),
        doc_start=np.asarray(doc_starts, dtype=np.int32),
        doc_len=np.asarray(doc_lens, dtype=np.int32),
        context_token_offsets=(np.concatenate(ctx_offsets) if ctx_offsets else np.zeros((0, 2), np.int32)),
        context_token_rows=ctx_rows,
    )


# ---- the cache --------------------------------------------------------------------------------------
def feature_cache_key(data: SquadData, tokenizer, max_seq_length: int, doc_stride: int,
                      max_query_length: int) -> dict:
    """Everything that changes the features; the file name carries its hash, the file the key itself."""
    return {
        "format": _CACHE_FORMAT,
        "data_sha256": data.sha256,
        "tokenizer": tokenizer.fingerprint,
        "do_lower_case": bool(getattr(tokenizer, "do_lower_case", True)),
        "max_seq_length": int(max_seq_length),
        "doc_stride": int(doc_stride),
        "max_query_length": int(max_query_length),
        "mode": data.mode,
        "tag": data.mode,  # names the cache file: train-v1.1.json.train-<hash>.cache.pt
        "version_2_with_negative": bool(data.version_2_with_negative),
    }


def load_or_create_features(data: SquadData, tokenizer, max_seq_length: int = 384, doc_stride: int = 128,
                            max_query_length: int = 64, use_cache: bool = True) -> tuple[SquadFeatures, Optional[Path]]:
    """Features from the shared feature cache next to the data file (`nmod_nlp.data.feature_cache`:
    rank 0 builds, the others read), or built now. Returns the features and the cache path (None when
    caching is off).
    """
    _check_lengths(max_seq_length, max_query_length, doc_stride)
    build = lambda: convert_examples_to_features(data, tokenizer, max_seq_length, doc_stride, max_query_length)  # noqa
    key = feature_cache_key(data, tokenizer, max_seq_length, doc_stride, max_query_length)
    return load_or_build_cached(data.path, key, build, SquadFeatures, use_cache)
