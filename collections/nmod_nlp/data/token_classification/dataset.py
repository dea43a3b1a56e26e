"""A torch Dataset over `TokenFeatures`: one window per item, unpadded (`PadCollate` pads a batch)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..batching import PadCollate
from .features import TokenFeatures

__all__ = ["TokenClassificationDataset", "token_collate"]


class TokenClassificationDataset(torch.utils.data.Dataset):
    """Item i = (input_ids, token_type_ids, attention_mask, loss_mask, subtokens_mask, *labels), all int64
    of the window's length; `label_names` picks the label sets and their order (none for inference)."""

    def __init__(self, features: TokenFeatures, label_names: Sequence[str] = ("labels",)):
        missing = [n for n in label_names if n not in features.labels]
        if missing:
            raise ValueError(f"the features hold label sets {sorted(features.labels)}, not {missing}")
        self.features = features
        self.label_names = tuple(label_names)
        self.lengths = features.lengths

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> tuple:
        f = self.features
        row = slice(int(f.offsets[i]), int(f.offsets[i + 1]))
        n = row.stop - row.start

        def tensor(flat: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(flat[row].astype(np.int64))

        return (tensor(f.input_ids_flat), torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long),
                tensor(f.loss_mask_flat), tensor(f.subtokens_mask_flat),
                *(tensor(f.labels[name]) for name in self.label_names))


def token_collate(pad_id: int, num_label_sets: int = 1, pad_label: int = 0, pad_to_multiple_of: int = 1) -> PadCollate:
    """Pads every field of a batch to its longest window: ids with `pad_id`, masks with 0 (padding is
    never attended, scored or counted in the loss), labels with `pad_label`."""
    return PadCollate((pad_id, 0, 0, 0, 0, *([pad_label] * num_label_sets)), pad_to_multiple_of=pad_to_multiple_of)
