"""A torch Dataset over `SentenceFeatures`: one row per item, unpadded unless asked."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..batching import encoder_row
from .features import SentenceFeatures

__all__ = ["SentenceDataset", "NO_LABEL_ID"]

NO_LABEL_ID = -100  # a test row's class label: CrossEntropyLoss's ignore_index, so a loss over it is 0


class SentenceDataset(torch.utils.data.Dataset):
    """Item i = (input_ids, token_type_ids, attention_mask, label), ids as int64.

    `label` is an int64 class id, or a float32 score when the features hold float labels (STS-B).
    Rows are unpadded unless `pad_to_length` is given; `PadCollate` pads a batch to its longest row.
    """

    def __init__(self, features: SentenceFeatures, pad_id: int, pad_to_length: Optional[int] = None):
        self.features = features
        self.pad_id = pad_id
        self.pad_to_length = pad_to_length
        self.lengths = features.lengths
        self._labels = torch.from_numpy(np.ascontiguousarray(features.labels))

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> tuple:
        f = self.features
        return (*encoder_row(f.input_ids(i), int(f.segment_a_len[i]), self.pad_id, self.pad_to_length),
                self._labels[i])
