"""Joint intent and slot filling in NeMo 0.11's format: `dict.intents.csv`, `dict.slots.csv`,
`{prefix}.tsv` (`sentence<TAB>label`) and `{prefix}_slots.tsv` (a slot id per word)."""
from .data_layer import IntentSlotDataLayer
from .reader import (
                     INTENTS_FILE,
                     SLOTS_FILE,
                     IntentSlotData,
                     IntentSlotFormatError,
                     read_intent_slot_files,
                     read_label_dict,
)

__all__ = ["IntentSlotDataLayer", "read_intent_slot_files", "read_label_dict", "IntentSlotData",
           "IntentSlotFormatError", "INTENTS_FILE", "SLOTS_FILE"]
