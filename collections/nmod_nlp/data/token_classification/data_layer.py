"""`BertTokenClassificationDataLayer` (NER and other one-label-per-word tasks) and its inference twin."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from nmod.log import get_logger
from nmod.types import LabelsType, MaskType, NeuralType

from ...ports import bert_input_ports
from ..glue.data_layer import SentenceDataLayer
from ..glue.features import feature_cache_path
from .dataset import TokenClassificationDataset, token_collate
from .features import TokenFeatures, encode_words, word_lengths
from .reader import TokenClassificationData, build_label_ids, read_token_classification_files

__all__ = ["BertTokenClassificationDataLayer", "BertTokenClassificationInferDataLayer",
           "load_or_build_token_features"]

logger = get_logger(__name__)

_FEATURES_VERSION = 1  # bump when encode_words or the reader change what a file yields


class _TokenLayer(SentenceDataLayer):
    """Shared by the training and inference layers: tokenizer, features, dataset, collation, buckets."""

    def _build_windows(self, sentences: list, labels: Optional[dict], max_seq_length: int, batch_size: int,
                       shuffle: bool, ignore_extra_tokens: bool, ignore_start_end: bool, bucket_by_length: bool,
                       pad_to_multiple_of: int, cache: Optional[tuple[Path, dict]]) -> None:
        def build() -> TokenFeatures:
            return encode_words(self.tokenizer, sentences, labels, max_seq_length,
                                ignore_extra_tokens=ignore_extra_tokens, ignore_start_end=ignore_start_end)

        if cache is None:
            self.features, self.cache_path = build(), None
        else:
            key = {**cache[1], "features": _FEATURES_VERSION, "tokenizer": self.tokenizer.fingerprint,
                   "max_seq_length": int(max_seq_length), "ignore_extra_tokens": bool(ignore_extra_tokens),
                   "ignore_start_end": bool(ignore_start_end)}
            self.features, self.cache_path = load_or_build_token_features(cache[0], key, build)
        self.sentences = sentences
        self.max_seq_length = max_seq_length
        label_names = tuple(labels or ())
        self.dataset = TokenClassificationDataset(self.features, label_names)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.bucket_by_length, self.drop_last = bucket_by_length, False
        self.collate_fn = token_collate(self.tokenizer.pad_id, len(label_names), pad_to_multiple_of=pad_to_multiple_of)

    @property
    def words_per_sentence(self) -> np.ndarray:
        """How many words each sentence has (all of them are predicted: windows never drop a word)."""
        return word_lengths(self.features, len(self.sentences))


class BertTokenClassificationDataLayer(_TokenLayer):
    """Sentences from `text_file` and their per-word labels from `label_file` (NeMo's
    `text_{split}.txt` / `labels_{split}.txt`), as windows of sub-tokens (see `features.encode_words`).

    `label_ids` ({label: id}) fixes the ids; without it they are built from this file's labels with
    `pad_label` (the none label, NeMo's name) as id 0 and the rest sorted. A line holding a label
    outside given `label_ids` is skipped with a counted warning. `num_samples=-1` reads every
    sentence, a positive number the first N. `use_cache` keeps the features beside the text file.
    """

    @property
    def output_ports(self):
        return {
            **bert_input_ports(),
            "loss_mask": NeuralType(("B", "T"), MaskType()),
            "subtokens_mask": NeuralType(("B", "T"), MaskType()),
            "labels": NeuralType(("B", "T"), LabelsType()),
        }

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
        use_cache: bool = False,
        bucket_by_length: bool = False,
        pad_to_multiple_of: int = 1,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        if num_samples == 0 or num_samples < -1:
            raise ValueError(f"num_samples must be -1 (all sentences) or a positive number, got {num_samples}")
        self._set_tokenizer(tokenizer, tokenizer_name, pretrained_model_name, vocab_file, do_lower_case)
        self.text_file, self.label_file = str(text_file), str(label_file)
        self.data: TokenClassificationData = read_token_classification_files(
            text_file, label_file, known_labels=None if label_ids is None else list(label_ids))
        keep = slice(None) if num_samples == -1 else slice(0, num_samples)
        sentences, tags = self.data.sentences[keep], self.data.labels[keep]
        self.label_ids = dict(label_ids) if label_ids is not None else build_label_ids(tags, pad_label)
        if self.label_ids.get(pad_label) != 0:
            raise ValueError(f"the none label {pad_label!r} must have id 0 in label_ids, found "
                             f"{self.label_ids.get(pad_label)}")
        self.pad_label = pad_label
        ids = [[self.label_ids[t] for t in sentence] for sentence in tags]
        self.word_labels = ids
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

    @property
    def word_label_ids(self) -> np.ndarray:
        """Every word's label id, sentences concatenated (for class weights)."""
        return np.fromiter((i for s in self.word_labels for i in s), dtype=np.int64)

    @property
    def summary(self):
        """What reading the files found: sentences kept and skipped, and a warning per problem."""
        return self.data.summary


class BertTokenClassificationInferDataLayer(_TokenLayer):
    """Queries (strings; words split on white space) as windows, for inference: the training layer's
    ports without `labels`. A long query is split into windows like a long training sentence."""

    @property
    def output_ports(self):
        ports = dict(BertTokenClassificationDataLayer.output_ports.fget(self))
        ports.pop("labels")
        return ports

    def __init__(self, queries: Sequence[str], tokenizer=None, vocab_file: Optional[str] = None,
                 do_lower_case: Optional[bool] = None, tokenizer_name: str = "nemobert",
                 pretrained_model_name: Optional[str] = None, max_seq_length: int = 128, batch_size: int = 32,
                 name: Optional[str] = None):
        super().__init__(name=name)
        self._set_tokenizer(tokenizer, tokenizer_name, pretrained_model_name, vocab_file, do_lower_case)
        self.queries = list(queries)
        self._build_windows([q.split() for q in self.queries], None, max_seq_length, batch_size, False, True, True,
                            False, 1, None)


def load_or_build_token_features(data_file: Path, key: dict, build: Callable[[], TokenFeatures]
                                 ) -> tuple[TokenFeatures, Path]:
    """Features from the cache beside `data_file` written for `key`, else `build()` and write it.

    Under torch.distributed rank 0 builds and writes while the others wait, then read its file (the
    GLUE cache's rule); a rank that cannot read it builds its own.
    """
    from nmod.backends.pytorch import atomic_torch_save

    path = feature_cache_path(data_file, key)
    dist = torch.distributed
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)

    def read() -> Optional[TokenFeatures]:
        if not path.is_file():
            return None
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            return TokenFeatures.from_tensors(blob["features"]) if blob.get("key") == key else None
        except Exception as e:  # a cache is never worth failing a run for
            logger.warning("feature cache %s is unreadable (%s); rebuilding it", path, e)
            return None

    features = read() if rank == 0 else None
    if rank == 0 and features is None:
        features = build()
        try:
            atomic_torch_save({"key": key, "features": features.to_tensors()}, path)
            logger.info("wrote feature cache %s", path)
        except OSError as e:
            logger.warning("could not write the feature cache %s (%s)", path, e)
    if world > 1:
        dist.barrier()
    if rank != 0:
        features = read() or build()
    return features, path
