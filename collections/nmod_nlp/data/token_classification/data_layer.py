"""`BertTokenClassificationDataLayer` (NER and other one-label-per-word tasks) and its inference twin."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from nmod.log import get_logger
from nmod.types import LabelsType, MaskType, NeuralType

from ...ports import bert_input_ports
from ..batching import PadCollate
from ..feature_cache import load_or_build_features
from ..glue.data_layer import SentenceDataLayer
from .dataset import TokenClassificationDataset
from .features import TokenFeatures, encode_words, word_lengths
from .reader import TokenClassificationData, build_label_ids, read_token_classification_files

__all__ = ["TokenDataLayer", "BertTokenClassificationDataLayer", "BertTokenClassificationInferDataLayer",
           "pad_label_id"]

logger = get_logger(__name__)

_FEATURES_VERSION = 1  # bump when encode_words or the reader change what a file yields


class TokenDataLayer(SentenceDataLayer):
    """What every one-label-per-word layer shares (NER, punctuation and capitalization, slots): the
    ports, the sub-token windows (``features.encode_words``), the feature cache, the dataset and its
    collation. A subclass reads its files, then calls ``_build_windows`` with its label sets.

    Ports: the encoder's inputs, ``loss_mask``, ``subtokens_mask``, then one ``(B, T)`` port per label
    set (``LABEL_PORTS``) and the subclass's ``extra_ports()`` (the intent of a query, say).
    """

    LABEL_PORTS: tuple[str, ...] = ("labels",)

    @property
    def output_ports(self):
        return {
            **bert_input_ports(),
            "loss_mask": NeuralType(("B", "T"), MaskType()),
            "subtokens_mask": NeuralType(("B", "T"), MaskType()),
            **{name: NeuralType(("B", "T"), LabelsType()) for name in self.LABEL_PORTS},
            **self.extra_ports(),
        }

    def extra_ports(self) -> dict:
        return {}

    @staticmethod
    def _first(items: list, num_samples: int, what: str) -> list:
        """``num_samples=-1``: every item; a positive number: the first N."""
        if num_samples == 0 or num_samples < -1:
            raise ValueError(f"num_samples must be -1 (all {what}) or a positive number, got {num_samples}")
        return items if num_samples == -1 else items[:num_samples]

    def _build_windows(self, sentences: list, labels: Optional[dict], max_seq_length: int, batch_size: int,
                       shuffle: bool, ignore_extra_tokens: bool = True, ignore_start_end: bool = True,
                       bucket_by_length: bool = False, pad_to_multiple_of: int = 1,
                       cache: Optional[tuple[Path, dict]] = None, pad_label: int = 0) -> None:
        """Windows of ``sentences`` (lists of words) with ``labels`` ({label set: ids per word per
        sentence}); ``cache``: (data file, the settings that change the features) to cache them beside it."""
        def build() -> TokenFeatures:
            return encode_words(self.tokenizer, sentences, labels, max_seq_length, pad_label=pad_label,
                                ignore_extra_tokens=ignore_extra_tokens, ignore_start_end=ignore_start_end)

        key = None if cache is None else {
            **cache[1], "features": _FEATURES_VERSION, "tokenizer": self.tokenizer.fingerprint,
            "max_seq_length": int(max_seq_length), "ignore_extra_tokens": bool(ignore_extra_tokens),
            "ignore_start_end": bool(ignore_start_end), "pad_label": int(pad_label)}
        self.features, self.cache_path = load_or_build_features(cache[0] if cache else "", key or {}, build,
                                                                TokenFeatures, use_cache=cache is not None)
        self.sentences, self.word_labels = sentences, dict(labels or {})
        self.max_seq_length, self.pad_label_id = max_seq_length, int(pad_label)
        self.dataset = self._dataset(TokenClassificationDataset(self.features, tuple(labels or ())))
        self.batch_size, self.shuffle = batch_size, shuffle
        self.bucket_by_length, self.drop_last = bucket_by_length, False
        pads = (self.tokenizer.pad_id, 0, 0, 0, 0, *self._label_pads(len(labels or ()), int(pad_label)))
        self.collate_fn = PadCollate(pads, pad_to_multiple_of=pad_to_multiple_of)

    def _dataset(self, windows: TokenClassificationDataset) -> torch.utils.data.Dataset:
        return windows

    def _label_pads(self, num_label_sets: int, pad_label: int) -> tuple:
        return (pad_label,) * num_label_sets

    @property
    def words_per_sentence(self) -> np.ndarray:
        """How many words each sentence has (all of them are predicted: windows never drop a word)."""
        return word_lengths(self.features, len(self.sentences))

    def word_label_ids(self, label_set: Optional[str] = None) -> np.ndarray:
        """Every word's label id in ``label_set`` (default: the only one), sentences concatenated (for
        class weights)."""
        if label_set is None:
            (label_set,) = self.word_labels  # the only label set
        return np.fromiter((i for s in self.word_labels[label_set] for i in s), dtype=np.int64)

    @property
    def summary(self):
        """What reading the files found: lines kept and skipped, and a warning per problem."""
        return self.data.summary


def pad_label_id(pad_label: str | int, label_ids: dict, where: str) -> int:
    """The id of ``pad_label``: a label name, or (NeMo's intent/slot flag) already an id."""
    if isinstance(pad_label, int) and not isinstance(pad_label, bool):
        if pad_label not in label_ids.values():
            raise ValueError(f"pad_label id {pad_label} is not one of {where}'s ids {sorted(label_ids.values())}")
        return pad_label
    if pad_label not in label_ids:
        raise ValueError(f"pad_label {pad_label!r} is not one of {where}'s labels {sorted(label_ids)}")
    return label_ids[pad_label]


class BertTokenClassificationDataLayer(TokenDataLayer):
    """Sentences from `text_file` and their per-word labels from `label_file` (NeMo's
    `text_{split}.txt` / `labels_{split}.txt`), as windows of sub-tokens (see `features.encode_words`).

    `label_ids` ({label: id}) fixes the ids; without it they are built from this file's labels with
    `pad_label` (the none label, NeMo's name) as id 0 and the rest sorted. A line holding a label
    outside given `label_ids` is skipped with a counted warning. `num_samples=-1` reads every
    sentence, a positive number the first N. `use_cache` keeps the features beside the text file.
    """

    def __init__(
        self,
        text_file: str,
        label_file: str,
        tokenizer=None,
        vocab_file: Optional[str] = None,
        do_lower_case: Optional[bool] = None,
        tokenizer_name: str = "nemobert",
        pretrained_model_name: Optional[str] = None,
        max_seq_length: int = 128,
        label_ids: Optional[dict] = None,
        pad_label: str = "O",
        ignore_extra_tokens: bool = True,
        ignore_start_end: bool = True,
        num_samples: int = -1,
        batch_size: int = 8,
        shuffle: bool = False,
        use_cache: bool = True,
        bucket_by_length: bool = False,
        pad_to_multiple_of: int = 1,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        self._set_tokenizer(tokenizer, tokenizer_name, pretrained_model_name, vocab_file, do_lower_case)
        self.text_file, self.label_file = str(text_file), str(label_file)
        self.data: TokenClassificationData = read_token_classification_files(
            text_file, label_file, known_labels=None if label_ids is None else list(label_ids))
        sentences = self._first(self.data.sentences, num_samples, "sentences")
        tags = self.data.labels[:len(sentences)]
        self.label_ids = dict(label_ids) if label_ids is not None else build_label_ids(tags, pad_label)
        if self.label_ids.get(pad_label) != 0:
            raise ValueError(f"the none label {pad_label!r} must have id 0 in label_ids, found "
                             f"{self.label_ids.get(pad_label)}")
        self.pad_label = pad_label
        ids = [[self.label_ids[t] for t in sentence] for sentence in tags]
        self._build_windows(sentences, {"labels": ids}, max_seq_length, batch_size, shuffle, ignore_extra_tokens,
                            ignore_start_end, bucket_by_length, pad_to_multiple_of,
                            (Path(text_file), {"tag": "token_classification", "data_sha256": self.data.sha256,
                                               "label_ids": self.label_ids, "num_samples": int(num_samples)})
                            if use_cache else None)

    @property
    def label_names(self) -> list[str]:
        """Labels in id order (what `label_ids.csv` holds)."""
        return sorted(self.label_ids, key=self.label_ids.get)

    @property
    def num_labels(self) -> int:
        return len(self.label_ids)



class BertTokenClassificationInferDataLayer(TokenDataLayer):
    """Queries (strings; words split on white space) as windows, for inference: the training layer's
    ports without `labels`. A long query is split into windows like a long training sentence."""

    LABEL_PORTS = ()

    def __init__(self, queries: Sequence[str], tokenizer=None, vocab_file: Optional[str] = None,
                 do_lower_case: Optional[bool] = None, tokenizer_name: str = "nemobert",
                 pretrained_model_name: Optional[str] = None, max_seq_length: int = 128, batch_size: int = 32,
                 name: Optional[str] = None):
        super().__init__(name=name)
        self._set_tokenizer(tokenizer, tokenizer_name, pretrained_model_name, vocab_file, do_lower_case)
        self.queries = list(queries)
        self._build_windows([q.split() for q in self.queries], None, max_seq_length, batch_size, shuffle=False)
