"""`PunctCapitDataLayer`: NeMo 0.11's punctuation-and-capitalization files as typed ports."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..token_classification import TokenDataLayer
from .reader import PunctCapitData, label_ids_from, read_punct_capit_files

__all__ = ["PunctCapitDataLayer"]


class PunctCapitDataLayer(TokenDataLayer):
    """Texts and their per-word punctuation and capitalization labels, as sub-token windows.

    Windows, `subtokens_mask` and `loss_mask` come from the shared `TokenDataLayer` (labels on each
    word's first sub-token; NeMo's `ignore_extra_tokens` / `ignore_start_end`; a long text split
    between words). `punct_label_ids` / `capit_label_ids` ({label: id}) fix the ids (an eval set
    takes the training set's); without them they are built from this file, `pad_label` first.
    `num_samples=-1` reads every line, a positive number the first N.
    """

    LABEL_PORTS = ("punct_labels", "capit_labels")

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
        self._set_tokenizer(tokenizer, tokenizer_name, pretrained_model_name, vocab_file, do_lower_case)
        self.text_file, self.label_file = str(text_file), str(label_file)
        self.data: PunctCapitData = read_punct_capit_files(text_file, label_file, punct_label_ids, capit_label_ids)
        sentences = self._first(self.data.sentences, num_samples, "lines")
        punct, capit = self.data.punct[:len(sentences)], self.data.capit[:len(sentences)]
        self.punct_label_ids = dict(punct_label_ids) if punct_label_ids else label_ids_from(punct, pad_label)
        self.capit_label_ids = dict(capit_label_ids) if capit_label_ids else label_ids_from(capit, pad_label)
        for head, ids in (("punct", self.punct_label_ids), ("capit", self.capit_label_ids)):
            if ids.get(pad_label) != 0:
                raise ValueError(f"the none label {pad_label!r} must have id 0 in {head}_label_ids, found "
                                 f"{ids.get(pad_label)}")
        labels = {"punct_labels": [[self.punct_label_ids[t] for t in s] for s in punct],
                  "capit_labels": [[self.capit_label_ids[t] for t in s] for s in capit]}
        key = {"tag": "punct_capit", "data_sha256": self.data.sha256, "punct_label_ids": self.punct_label_ids,
               "capit_label_ids": self.capit_label_ids, "num_samples": int(num_samples)}
        self._build_windows(sentences, labels, max_seq_length, batch_size, shuffle, ignore_extra_tokens,
                            ignore_start_end, bucket_by_length, pad_to_multiple_of,
                            (Path(text_file), key) if use_cache else None)

    @property
    def punct_label_names(self) -> list[str]:
        """Punctuation labels in id order (what `punct_label_ids.csv` holds)."""
        return sorted(self.punct_label_ids, key=self.punct_label_ids.get)

    @property
    def capit_label_names(self) -> list[str]:
        return sorted(self.capit_label_ids, key=self.capit_label_ids.get)

    def word_label_ids(self, label_set: Optional[str] = None) -> np.ndarray:
        """Every word's label id for ``label_set`` ("punct_labels" or "capit_labels"; "punct" and
        "capit" name them too), texts concatenated (for class weights)."""
        if label_set in ("punct", "capit"):
            label_set = f"{label_set}_labels"
        return super().word_label_ids(label_set)
