"""`PunctCapitDataLayer`: NeMo 0.11's punctuation-and-capitalization files as typed ports."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from nmod.types import LabelsType, MaskType, NeuralType

from ...ports import bert_input_ports
from ..glue.data_layer import SentenceDataLayer
from ..token_classification import TokenClassificationDataset, encode_words, load_or_build_token_features, token_collate
from .reader import PunctCapitData, label_ids_from, read_punct_capit_files

__all__ = ["PunctCapitDataLayer"]

_FEATURES_VERSION = 1  # bump when reading or encoding changes what the files yield


class PunctCapitDataLayer(SentenceDataLayer):
    """Texts and their per-word punctuation and capitalization labels, as sub-token windows.

    Windows, `subtokens_mask` and `loss_mask` come from the shared `encode_words` (labels on each
    word's first sub-token; NeMo's `ignore_extra_tokens` / `ignore_start_end`; a long text split
    between words). `punct_label_ids` / `capit_label_ids` ({label: id}) fix the ids (an eval set
    takes the training set's); without them they are built from this file, `pad_label` first.
    `num_samples=-1` reads every line, a positive number the first N.
    """

    @property
    def output_ports(self):
        return {
            **bert_input_ports(),
            "loss_mask": NeuralType(("B", "T"), MaskType()),
            "subtokens_mask": NeuralType(("B", "T"), MaskType()),
            "punct_labels": NeuralType(("B", "T"), LabelsType()),
            "capit_labels": NeuralType(("B", "T"), LabelsType()),
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
        punct_label_ids: Optional[dict] = None,
        capit_label_ids: Optional[dict] = None,
        pad_label: str = "O",
        ignore_extra_tokens: bool = True,
        ignore_start_end: bool = True,
        num_samples: int = -1,
        batch_size: int = 64,
        shuffle: bool = False,
        use_cache: bool = True,
        bucket_by_length: bool = False,
        pad_to_multiple_of: int = 1,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        if num_samples == 0 or num_samples < -1:
            raise ValueError(f"num_samples must be -1 (all lines) or a positive number, got {num_samples}")
        self._set_tokenizer(tokenizer, tokenizer_name, pretrained_model_name, vocab_file, do_lower_case)
        self.text_file, self.label_file = str(text_file), str(label_file)
        self.data: PunctCapitData = read_punct_capit_files(text_file, label_file, punct_label_ids, capit_label_ids)
        keep = slice(None) if num_samples == -1 else slice(0, num_samples)
        self.sentences = self.data.sentences[keep]
        punct, capit = self.data.punct[keep], self.data.capit[keep]
        self.punct_label_ids = dict(punct_label_ids) if punct_label_ids else label_ids_from(punct, pad_label)
        self.capit_label_ids = dict(capit_label_ids) if capit_label_ids else label_ids_from(capit, pad_label)
        for head, ids in (("punct", self.punct_label_ids), ("capit", self.capit_label_ids)):
            if ids.get(pad_label) != 0:
                raise ValueError(f"the none label {pad_label!r} must have id 0 in {head}_label_ids, found "
                                 f"{ids.get(pad_label)}")
        labels = {"punct_labels": [[self.punct_label_ids[t] for t in s] for s in punct],
                  "capit_labels": [[self.capit_label_ids[t] for t in s] for s in capit]}
        self.word_labels = labels

        def build():
            return encode_words(self.tokenizer, self.sentences, labels, max_seq_length,
                                ignore_extra_tokens=ignore_extra_tokens, ignore_start_end=ignore_start_end)

        if use_cache:
            key = {"tag": "punct_capit", "features": _FEATURES_VERSION, "data_sha256": self.data.sha256,
                   "tokenizer": self.tokenizer.fingerprint, "max_seq_length": int(max_seq_length),
                   "punct_label_ids": self.punct_label_ids, "capit_label_ids": self.capit_label_ids,
                   "ignore_extra_tokens": bool(ignore_extra_tokens), "ignore_start_end": bool(ignore_start_end),
                   "num_samples": int(num_samples)}
            self.features, self.cache_path = load_or_build_token_features(Path(text_file), key, build)
        else:
            self.features, self.cache_path = build(), None
        self.dataset = TokenClassificationDataset(self.features, ("punct_labels", "capit_labels"))
        self.batch_size, self.shuffle = batch_size, shuffle
        self.bucket_by_length, self.drop_last = bucket_by_length, False
        self.collate_fn = token_collate(self.tokenizer.pad_id, 2, pad_to_multiple_of=pad_to_multiple_of)

    @property
    def punct_label_names(self) -> list[str]:
        """Punctuation labels in id order (what `punct_label_ids.csv` holds)."""
        return sorted(self.punct_label_ids, key=self.punct_label_ids.get)

    @property
    def capit_label_names(self) -> list[str]:
        return sorted(self.capit_label_ids, key=self.capit_label_ids.get)

    def word_label_ids(self, head: str) -> np.ndarray:
        """Every word's label id for `head` ("punct" or "capit"), texts concatenated (for class weights)."""
        return np.fromiter((i for s in self.word_labels[f"{head}_labels"] for i in s), dtype=np.int64)

    @property
    def summary(self):
        """What reading the files found: lines kept and skipped, and a warning per problem."""
        return self.data.summary
