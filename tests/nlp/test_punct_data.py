"""Punctuation and capitalization data: NeMo's two-character labels, label ids, counted warnings, windows."""
import random
import runpy

import numpy as np
import pytest

from nmod_nlp.data.punctuation_capitalization import (PunctCapitDataLayer, PunctCapitFormatError, punctuate,
                                                      read_punct_capit_files)
from nmod_nlp.tokenizers import get_tokenizer
from recipe_runner import ROOT, VOCAB

SAMPLES = ROOT / "collections" / "nmod_nlp" / "data" / "punctuation_capitalization" / "samples"


@pytest.fixture(scope="module")
def tokenizer():
    return get_tokenizer("nemobert", None, str(VOCAB), True)


def write(tmp_path, text, labels):
    (tmp_path / "text.txt").write_text(text)
    (tmp_path / "labels.txt").write_text(labels)
    return tmp_path / "text.txt", tmp_path / "labels.txt"


def test_labels_split_into_punctuation_and_capitalization(tmp_path):
    data = read_punct_capit_files(*write(tmp_path, "hello anna how are you\n", ",U .U OU OO ?O\n"))
    assert data.sentences == [["hello", "anna", "how", "are", "you"]]
    assert data.punct == [[",", ".", "O", "O", "?"]] and data.capit == [["U", "U", "U", "O", "O"]]
    assert punctuate(data.sentences[0], data.punct[0], data.capit[0]) == "Hello, Anna. How are you?"


def test_bad_lines_are_skipped_counted_and_named(tmp_path, caplog):
    text, labels = write(tmp_path, "how are you\nfine thanks\nok\ngood\n", "OU OO ?O\nOU\nOKU\n!U\n")
    data = read_punct_capit_files(text, labels, punct_label_ids={"O": 0, "?": 1}, capit_label_ids={"O": 0, "U": 1})
    assert data.sentences == [["how", "are", "you"]] and data.lines == [1]
    warnings = data.summary.warnings
    assert len(warnings) == 3 and all(str(labels) in w for w in warnings)
    assert ":2: 2 words" in warnings[0] and "'OKU' is not two characters" in warnings[1]
    assert "punctuation label(s) ! are not among" in warnings[2]
    assert data.summary.skipped == 3


def test_misaligned_files_raise_naming_both(tmp_path):
    with pytest.raises(PunctCapitFormatError, match="has 2 lines but .* has 1"):
        read_punct_capit_files(*write(tmp_path, "a b\nc\n", "OU .O\n"))


def test_data_layer_ids_none_label_first_and_labels_on_first_subtokens(tokenizer, tmp_path):
    layer = PunctCapitDataLayer(SAMPLES / "text_dev.txt", SAMPLES / "labels_dev.txt", tokenizer=tokenizer,
                                use_cache=False)
    assert layer.punct_label_names == ["O", ",", ".", "?"] and layer.capit_label_names == ["O", "U"]
    words = layer.sentences[0]
    ids, _, _, loss_mask, first, punct, capit = (t.numpy() for t in layer.dataset[0])
    assert first.sum() == len(words) and ids[0] == tokenizer.cls_id
    got = [layer.punct_label_names[p] for p in punct[first == 1]]
    assert got == layer.data.punct[0]
    assert np.all(loss_mask[[0, -1]] == 0)  # ignore_start_end, NeMo's default
    batch = layer.collate_fn([layer.dataset[i] for i in range(4)])
    assert len(batch) == len(layer.output_ports) == 7


def test_eval_layer_takes_the_training_ids(tokenizer, tmp_path):
    text, labels = write(tmp_path, "why\nyes\n", "?U\nOU\n")
    layer = PunctCapitDataLayer(text, labels, tokenizer=tokenizer, use_cache=False,
                                punct_label_ids={"O": 0, ",": 1, ".": 2, "?": 3}, capit_label_ids={"O": 0, "U": 1})
    assert layer.dataset[0][5].tolist() == [0, 3, 0]


def test_samples_are_what_make_samples_writes():
    make = runpy.run_path(str(SAMPLES / "make_samples.py"))
    files = make["make"](random.Random(make["SEED"]), make["SIZES"])
    for name, text in files.items():
        assert (SAMPLES / name).read_text() == text, name
