"""`TextClassificationDataLayer`: NeMo 0.11's sentence-classification TSV as typed ports."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from nmod.types import LabelsType

from ..glue.data_layer import SentenceDataLayer
from .reader import TextClassificationData, read_text_classification_file, select_samples

__all__ = ["TextClassificationDataLayer"]


class TextClassificationDataLayer(SentenceDataLayer):
    """Sentences and integer labels from `input_file` (`{data_dir}/{prefix}.tsv` in NeMo's recipes).

    Each row becomes `[CLS] sentence [SEP]`, cut to `max_seq_length` by dropping the end of the
    sentence (BERT's rule; NeMo 0.11 kept the end instead). `num_samples=-1` reads every row; a
    positive number a seeded random subset of that many, kept in file order (`num_samples_seed`).
    `num_classes` (optional) marks labels >= it as malformed lines; otherwise `num_labels` is the
    largest label in the file + 1, as NeMo counted it. `labels` (int64, one per row) feeds
    `class_weights`. NeMo's default `shuffle=False` is kept: pass shuffle=True for training.
    """

    label_type = LabelsType

    def __init__(
        self,
        input_file: str,
        tokenizer=None,
        vocab_file: Optional[str] = None,
        do_lower_case: Optional[bool] = None,
        tokenizer_name: str = "nemobert",
        pretrained_model_name: Optional[str] = None,
        max_seq_length: int = 36,
        num_samples: int = -1,
        num_samples_seed: int = 0,
        num_classes: Optional[int] = None,
        batch_size: int = 64,
        shuffle: bool = False,
        use_cache: bool = True,
        dynamic_padding: bool = True,
        bucket_by_length: bool = False,
        pad_to_multiple_of: int = 1,
        drop_last: bool = False,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        self.input_file = str(input_file)
        if num_samples == 0 or num_samples < -1:
            raise ValueError(f"num_samples must be -1 (all rows) or a positive number, got {num_samples}")
        self._set_tokenizer(tokenizer, tokenizer_name, pretrained_model_name, vocab_file, do_lower_case)
        self.data: TextClassificationData = read_text_classification_file(self.input_file, num_classes)
        rows = select_samples(len(self.data.texts), num_samples, num_samples_seed)
        self.texts = [self.data.texts[i] for i in rows]
        self.lines = [self.data.lines[i] for i in rows]
        labels = self.data.labels[rows]
        self.num_labels = int(num_classes) if num_classes is not None else int(self.data.labels.max()) + 1
        self._build(Path(self.input_file), self.texts, None, labels,
                    {"tag": "text_classification", "data_sha256": self.data.sha256, "num_classes": num_classes,
                     "rows": len(rows), "num_samples": int(num_samples), "seed": int(num_samples_seed)},
                    max_seq_length, batch_size, shuffle, use_cache, dynamic_padding, bucket_by_length,
                    pad_to_multiple_of, drop_last)

    @property
    def labels(self) -> np.ndarray:
        """The label of each row used (after `num_samples`), int64."""
        return self.features.labels

    @property
    def label_counts(self) -> np.ndarray:
        """How many rows of each class, `num_labels` long."""
        return np.bincount(self.labels, minlength=self.num_labels)

    @property
    def summary(self):
        """What reading the file found: rows kept and skipped, and a warning per problem."""
        return self.data.summary
