"""`IntentSlotDataLayer`: NeMo 0.11's joint intent-and-slot files as typed ports."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from nmod.types import LabelsType, NeuralType

from ..token_classification import TokenClassificationDataset, TokenDataLayer, pad_label_id
from .reader import INTENTS_FILE, SLOTS_FILE, IntentSlotData, read_intent_slot_files, read_label_dict

__all__ = ["IntentSlotDataLayer"]


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


class IntentSlotDataLayer(TokenDataLayer):
    """Queries, their intents and per-word slots from `{data_dir}/{prefix}.tsv` and `{prefix}_slots.tsv`.

    The label names come from `{data_dir}/dict.intents.csv` and `dict.slots.csv` (`intent_names`,
    `slot_names`). Windows, `subtokens_mask` and `loss_mask` come from the shared `TokenDataLayer`
    (slots on each word's first sub-token; NeMo's `ignore_extra_tokens` / `ignore_start_end`); a
    query longer than `max_seq_length` is split between words and every window keeps the query's
    intent. `pad_label`, the slot given to [CLS], [SEP] and padding, is a slot name (or, as NeMo's
    `--pad_label` was, its id); None: `none_slot_label`. `num_samples=-1` reads every query, a
    positive number the first N.
    """

    LABEL_PORTS = ("slots",)

    def extra_ports(self) -> dict:
        return {"intents": NeuralType(("B",), LabelsType())}

    @property
    def output_ports(self):  # NeMo's order: the intents before the slots
        ports = super().output_ports
        order = [p for p in ports if p not in ("intents", "slots")] + ["intents", "slots"]
        return {p: ports[p] for p in order}

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
        pad_label: Optional[str | int] = None,
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
        self._set_tokenizer(tokenizer, tokenizer_name, pretrained_model_name, vocab_file, do_lower_case)
        folder = Path(data_dir)
        self.intent_names = read_label_dict(folder / INTENTS_FILE)
        self.slot_names = read_label_dict(folder / SLOTS_FILE)
        slot_ids = {n: i for i, n in enumerate(self.slot_names)}
        try:
            self.pad_label = pad_label_id(none_slot_label if pad_label is None else pad_label, slot_ids,
                                          str(folder / SLOTS_FILE))
        except ValueError as e:
            raise ValueError(f"{e}; name the none slot with --none_slot_label or give --pad_label") from None
        self.query_file, self.slot_file = str(folder / f"{prefix}.tsv"), str(folder / f"{prefix}_slots.tsv")
        self.data: IntentSlotData = read_intent_slot_files(self.query_file, self.slot_file, len(self.intent_names),
                                                           len(self.slot_names))
        sentences = self._first(self.data.sentences, num_samples, "queries")
        self.intents = self.data.intents[:len(sentences)]
        key = {"tag": f"intent_slot-{prefix}", "data_sha256": self.data.sha256, "num_samples": int(num_samples)}
        self._build_windows(sentences, {"slots": self.data.slots[:len(sentences)]}, max_seq_length, batch_size,
                            shuffle, ignore_extra_tokens, ignore_start_end, bucket_by_length, pad_to_multiple_of,
                            (Path(self.query_file), key) if use_cache else None, pad_label=self.pad_label)

    def _dataset(self, windows: TokenClassificationDataset) -> torch.utils.data.Dataset:
        return _IntentSlotDataset(windows, self.intents)

    def _label_pads(self, num_label_sets: int, pad_label: int) -> tuple:
        return (0, pad_label)  # the intent (never padded: one per window), the slots

    @property
    def num_intents(self) -> int:
        return len(self.intent_names)

    @property
    def num_slots(self) -> int:
        return len(self.slot_names)

    @property
    def word_slots(self) -> list:
        return self.word_labels["slots"]
