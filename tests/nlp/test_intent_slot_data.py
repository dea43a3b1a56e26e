"""Joint intent/slot data: NeMo's dict files and TSVs, the none slot, counted warnings, windows."""
import random
import runpy
import shutil

import pytest

from nmod_nlp.data.intent_slot import IntentSlotDataLayer, IntentSlotFormatError, read_intent_slot_files
from nmod_nlp.tokenizers import get_tokenizer
from recipe_runner import ROOT, VOCAB

SAMPLES = ROOT / "collections" / "nmod_nlp" / "data" / "intent_slot" / "samples"


@pytest.fixture(scope="module")
def tokenizer():
    return get_tokenizer("nemobert", None, str(VOCAB), True)


def test_samples_follow_nemos_convention_none_slot_last():
    slots = (SAMPLES / "dict.slots.csv").read_text().split()
    assert slots[-1] == "O" and len((SAMPLES / "dict.intents.csv").read_text().split()) == 4
    make = runpy.run_path(str(SAMPLES / "make_samples.py"))
    for name, text in make["make"](random.Random(make["SEED"])).items():
        assert (SAMPLES / name).read_text() == text, name


def test_data_layer_slots_on_first_subtokens_and_pad_is_the_none_slot(tokenizer):
    layer = IntentSlotDataLayer(SAMPLES, "test", tokenizer=tokenizer, use_cache=False)
    assert layer.pad_label == layer.slot_names.index("O") == 8
    assert list(layer.output_ports) == ["input_ids", "token_type_ids", "attention_mask", "loss_mask", "subtokens_mask",
                                        "intents", "slots"]
    ids, _, _, loss_mask, first, intent, slots = layer.dataset[0]
    assert int(intent) == layer.intents[0]
    assert slots[first.bool()].tolist() == layer.word_slots[0]
    assert slots[0] == slots[-1] == 8 and loss_mask[0] == 0


def copy(tmp_path):
    return shutil.copytree(SAMPLES, tmp_path / "data", ignore=shutil.ignore_patterns("*.py", "*.cache.pt"))


def test_bad_queries_are_skipped_counted_and_named(tmp_path):
    data = copy(tmp_path)
    (data / "x.tsv").write_text("sentence\tlabel\nplay adele\t2\nwake me\t9\nhi there\t0\nrain\t0\nok\tx\n")
    (data / "x_slots.tsv").write_text("8 6\n8 8\n8\n8 a\n8\n")
    read = read_intent_slot_files(data / "x.tsv", data / "x_slots.tsv", num_intents=4, num_slots=9)
    assert read.sentences == [["play", "adele"]] and read.slots == [[8, 6]]
    w = read.summary.warnings
    assert len(w) == 4 and read.summary.skipped == 4
    assert any("x.tsv:3: intent 9 is not below the 4 intents" in s for s in w)
    assert any("x.tsv:6: label 'x'" in s for s in w)  # the query reader's own check
    assert any("x.tsv:4: 2 words but 1 slot ids on x_slots.tsv:3" in s for s in w)
    assert any("x_slots.tsv:4: slot ids must be non-negative integers" in s for s in w)


def test_misaligned_slot_file_raises_naming_both(tmp_path):
    data = copy(tmp_path)
    (data / "test_slots.tsv").write_text("8\n")
    with pytest.raises(IntentSlotFormatError, match="test_slots.tsv has 1 lines"):
        IntentSlotDataLayer(data, "test", vocab_file=str(VOCAB), do_lower_case=True, use_cache=False)


def test_missing_none_slot_names_the_flag(tmp_path):
    data = copy(tmp_path)
    with pytest.raises(ValueError, match="--none_slot_label"):
        IntentSlotDataLayer(data, "test", vocab_file=str(VOCAB), do_lower_case=True, none_slot_label="NONE")
