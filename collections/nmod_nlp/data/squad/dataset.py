"""The SQuAD torch Dataset: reads a file, gets features (cached), serves one feature per item."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from nmod.log import get_logger

from ..batching import encoder_row
from .features import SquadFeatures, load_or_create_features
from .reader import SquadData, read_squad_file

__all__ = ["SquadDataset"]

logger = get_logger(__name__)


class SquadDataset(torch.utils.data.Dataset):
    """Item i = (input_ids, token_type_ids, attention_mask, unique_id, start_position, end_position).

    Rows are unpadded unless `pad_to_length` is given; `PadCollate` pads a batch to its longest row.
    `examples`, `contexts`, `articles` and `features` are what post-processing and metrics read.
    """

    def __init__(self, data_file: str | Path, tokenizer, version_2_with_negative: bool = False, mode: str = "train",
                 max_seq_length: int = 384, doc_stride: int = 128, max_query_length: int = 64,
                 use_cache: bool = True, pad_to_length: Optional[int] = None):
        self.tokenizer = tokenizer
        self.mode = mode
        self.version_2_with_negative = version_2_with_negative
        self.max_seq_length = max_seq_length
        self.pad_to_length = pad_to_length
        self.data: SquadData = read_squad_file(data_file, version_2_with_negative, mode)
        self.features: SquadFeatures
        self.features, self.cache_path = load_or_create_features(
            self.data, tokenizer, max_seq_length, doc_stride, max_query_length, use_cache)
        if mode == "train" and len(self.features) == 0:
            raise ValueError(f"{data_file} gave no training features ({self.data.summary})")
        self.lengths = self.features.lengths

    @property
    def examples(self) -> list:
        return self.data.examples

    @property
    def contexts(self) -> list:
        return self.data.contexts

    @property
    def articles(self) -> list:
        return self.data.articles

    @property
    def summary(self):
        return self.data.summary

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> tuple:
        f = self.features
        row = encoder_row(f.input_ids(i), int(f.segment_a_len[i]), self.tokenizer.pad_id, self.pad_to_length)
        return (*row, torch.tensor(int(f.unique_ids[i])),
                torch.tensor(int(f.start_positions[i])), torch.tensor(int(f.end_positions[i])))
