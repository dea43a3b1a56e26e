"""`IntentSlotDataLayer`: NeMo 0.11's joint intent-and-slot files as typed ports."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from nmod.types import LabelsType, MaskType, NeuralType

from ...ports import bert_input_ports
from ..batching import PadCollate
from ..glue.data_layer import SentenceDataLayer
from ..token_classification import TokenClassificationDataset, encode_words, load_or_build_token_features
from .reader import INTENTS_FILE, SLOTS_FILE, IntentSlotData, read_intent_slot_files, read_label_dict

__all__ = ["IntentSlotDataLayer"]

_FEATURES_VERSION = 1


class _IntentSlotDataset(torch.utils.data.Dataset):
    """Item i = (input_ids, token_type_ids, attention_mask, loss_mask, subtokens_mask, intent, slots)."""

    def __init__(self, windows: TokenClassificationDataset, intents: np.ndarray):
        self.windows = windows
        self.lengths = windows.lengths
        self._intents = torch.from_numpy(intents[windows.features.sentence_index])  # the window's query's intent

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> tuple:
        *inputs, slots = self.windows[i]
        return (*inputs, self._intents[i], slots)


class IntentSlotDataLayer(SentenceDataLayer):
    """Queries, their intents and per-word slots from `{data_dir}/{prefix}.tsv` and `{prefix}_slots.tsv`.

    The label names come from `{data_dir}/dict.intents.csv` and `dict.slots.csv` (`intent_names`,
    `slot_names`). Windows, `subtokens_mask` and `loss_mask` come from the shared `encode_words`
    (slots on each word's first sub-token; NeMo's `ignore_extra_tokens` / `ignore_start_end`); a
    query longer than `max_seq_length` is split between words and every window keeps the query's
    intent. `pad_label` (the slot id given to [CLS], [SEP] and padding) defaults, as NeMo's
    `--pad_label -1` did, to the id of `none_slot_label`. `num_samples=-1` reads every query, a
    positive number the first N.
    """

    @property
    def output_ports(self):
        return {
            **bert_input_ports(),
            "loss_mask": NeuralType(("B", "T"), MaskType()),
            "subtokens_mask": NeuralType(("B", "T"), MaskType()),
            "intents": NeuralType(("B",), LabelsType()),
            "slots": NeuralType(("B", "T"), LabelsType()),
        }

    def __init__(
        self,
        data_dir: str,
        prefix: str = "train",
        tokenizer=None,
        vocab_file: Optional[str] = None,
        do_lower_case: Optional[bool] = None,
        tokenizer_name: str = "nemobert",
        pretrained_model_name: Optional[str] = None,
        max_seq_length: int = 50,
        none_slot_label: str = "O",
        pad_label: Optional[int] = None,
        ignore_extra_tokens: bool = True,
        ignore_start_end: bool = True,
        num_samples: int = -1,
        batch_size: int = 128,
        shuffle: bool = False,
        use_cache: bool = True,
        bucket_by_length: bool = False,
        pad_to_multiple_of: int = 1,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        if num_samples == 0 or num_samples < -1:
            raise ValueError(f"num_samples must be -1 (all queries) or a positive number, got {num_samples}")
        self._set_tokenizer(tokenizer, tokenizer_name, pretrained_model_name, vocab_file, do_lower_case)
        folder = Path(data_dir)
        self.intent_names = read_label_dict(folder / INTENTS_FILE)
        self.slot_names = read_label_dict(folder / SLOTS_FILE)
        if pad_label is None:
            if none_slot_label not in self.slot_names:
                raise ValueError(f"the none slot label {none_slot_label!r} is not in {folder / SLOTS_FILE}; name it "
                                 f"with --none_slot_label or give --pad_label")
            pad_label = self.slot_names.index(none_slot_label)
        self.pad_label = int(pad_label)
        self.query_file, self.slot_file = str(folder / f"{prefix}.tsv"), str(folder / f"{prefix}_slots.tsv")
        self.data: IntentSlotData = read_intent_slot_files(self.query_file, self.slot_file, len(self.intent_names),
                                                           len(self.slot_names))
        n = len(self.data.sentences) if num_samples == -1 else min(num_samples, len(self.data.sentences))
        self.sentences, self.word_slots = self.data.sentences[:n], self.data.slots[:n]
        self.intents = self.data.intents[:n]

        def build():
            return encode_words(self.tokenizer, self.sentences, {"slots": self.word_slots}, max_seq_length,
                                ignore_extra_tokens=ignore_extra_tokens, ignore_start_end=ignore_start_end,
                                pad_label=self.pad_label)

        if use_cache:
            key = {"tag": f"intent_slot-{prefix}", "features": _FEATURES_VERSION, "data_sha256": self.data.sha256,
                   "tokenizer": self.tokenizer.fingerprint, "max_seq_length": int(max_seq_length),
                   "pad_label": self.pad_label, "ignore_extra_tokens": bool(ignore_extra_tokens),
                   "ignore_start_end": bool(ignore_start_end), "num_samples": int(num_samples)}
            self.features, self.cache_path = load_or_build_token_features(Path(self.query_file), key, build)
        else:
            self.features, self.cache_path = build(), None
        self.dataset = _IntentSlotDataset(TokenClassificationDataset(self.features, ("slots",)), self.intents)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.bucket_by_length, self.drop_last = bucket_by_length, False
        self.collate_fn = PadCollate((self.tokenizer.pad_id, 0, 0, 0, 0, 0, self.pad_label),
                                     pad_to_multiple_of=pad_to_multiple_of)

    @property
    def num_intents(self) -> int:
        return len(self.intent_names)

    @property
    def num_slots(self) -> int:
        return len(self.slot_names)

    @property
    def word_slot_ids(self) -> np.ndarray:
        """Every word's slot id, queries concatenated (for class weights)."""
        return np.fromiter((i for s in self.word_slots for i in s), dtype=np.int64)

    @property
    def summary(self):
        """What reading the files found: queries kept and skipped, and a warning per problem."""
        return self.data.summary
