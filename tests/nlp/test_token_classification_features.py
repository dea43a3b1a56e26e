"""Words -> sub-token windows (`encode_words`), the NeMo-format reader, label ids, the data layers."""
import logging
import random
import runpy
from pathlib import Path

import numpy as np
import pytest
from recipe_runner import VOCAB

import nmod_nlp
from nmod_nlp.data.token_classification import (
    BertTokenClassificationDataLayer,
    BertTokenClassificationInferDataLayer,
    TokenClassificationFormatError,
    build_label_ids,
    encode_words,
    read_label_ids,
    read_token_classification_files,
    write_label_ids,
)
from nmod_nlp.tokenizers import BertWordPieceTokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return BertWordPieceTokenizer(VOCAB, do_lower_case=True)


def tokens(tokenizer, f, i):
    return tokenizer.ids_to_tokens(f.row("input_ids", i))


def test_label_on_first_subtoken_and_nemo_masks(tokenizer):
    f = encode_words(tokenizer, [["John", "Smithsonianism", "lives"]], {"labels": [[1, 2, 0]]}, max_seq_length=16)
    assert tokens(tokenizer, f, 0) == ["[CLS]", "john", "smithsonian", "##ism", "lives", "[SEP]"]
    assert f.row("subtokens_mask", 0).tolist() == [0, 1, 1, 0, 1, 0]
    assert f.row("loss_mask", 0).tolist() == [0, 1, 1, 0, 1, 0]  # ignore_extra_tokens, ignore_start_end
    assert f.row("labels", 0).tolist() == [0, 1, 2, 2, 0, 0]  # the word's label copied (NeMo), scored once
    g = encode_words(tokenizer, [["John", "Smithsonianism", "lives"]], {"labels": [[1, 2, 0]]}, max_seq_length=16,
                     ignore_extra_tokens=False, ignore_start_end=False)
    assert g.row("loss_mask", 0).tolist() == [1, 1, 1, 1, 1, 1]
    assert g.row("subtokens_mask", 0).tolist() == [0, 1, 1, 0, 1, 0]


def test_long_sentences_become_consecutive_windows_between_words(tokenizer, caplog):
    words = ["alpha", "beta", "gamma", "delta", "Smithsonianism", "x"]
    with caplog.at_level(logging.WARNING):
        f = encode_words(tokenizer, [words, ["short"]], {"labels": [list(range(6)), [0]]}, max_seq_length=5)
    assert "1 of 2 sentences are longer than max_seq_length=5" in caplog.text
    assert f.sentences_split == 1 and f.words_cut == 0
    # 3 sub-tokens a window: alpha beta gamma | delta smithsonian ##ism | x
    assert f.sentence_index.tolist() == [0, 0, 0, 1]
    assert f.first_word.tolist() == [0, 3, 5, 0] and f.num_words.tolist() == [3, 2, 1, 1]
    assert all(len(f.row("input_ids", i)) <= 5 for i in range(len(f)))
    firsts = np.concatenate([f.row("labels", i)[f.row("subtokens_mask", i) == 1] for i in range(3)])
    assert firsts.tolist() == list(range(6))  # every word once, in order


def test_a_word_longer_than_a_window_keeps_its_first_subtokens(tokenizer, caplog):
    with caplog.at_level(logging.WARNING):
        f = encode_words(tokenizer, [["Smithsonianism"]], {"labels": [[3]]}, max_seq_length=3)
    assert f.words_cut == 1 and "longer than a whole window" in caplog.text
    assert tokens(tokenizer, f, 0) == ["[CLS]", "smithsonian", "[SEP]"] and f.row("labels", 0).tolist() == [0, 3, 0]


def test_a_word_that_tokenizes_to_nothing_is_unk(tokenizer):
    f = encode_words(tokenizer, [["a", "\u200b", "b"]], {"labels": [[0, 1, 0]]}, max_seq_length=16)
    assert f.empty_words == 1 and tokens(tokenizer, f, 0) == ["[CLS]", "a", "[UNK]", "b", "[SEP]"]


def test_several_label_sets_for_two_headed_tasks(tokenizer):
    f = encode_words(tokenizer, [["hello", "world"]], {"punct": [[0, 1]], "capit": [[1, 0]]}, max_seq_length=8)
    assert f.row("punct", 0).tolist() == [0, 0, 1, 0] and f.row("capit", 0).tolist() == [0, 1, 0, 0]
    with pytest.raises(ValueError, match="sentence 0: 2 words but 1 labels in 'punct'"):
        encode_words(tokenizer, [["hello", "world"]], {"punct": [[0]]})


def test_label_ids_put_the_none_label_first_then_sorted(tmp_path):
    ids = build_label_ids([["B-PER", "O"], ["I-LOC", "B-LOC"]], "O")
    assert ids == {"O": 0, "B-LOC": 1, "B-PER": 2, "I-LOC": 3}
    path = write_label_ids(tmp_path / "label_ids.csv", ids)
    assert path.read_text() == "O\nB-LOC\nB-PER\nI-LOC\n" and read_label_ids(path) == ids


def test_reader_skips_mismatched_lines_with_a_counted_warning(tmp_path, caplog):
    (tmp_path / "text.txt").write_text("EU rejects German call\n\nPeter Blackburn\nBRUSSELS 1996\n")
    (tmp_path / "labels.txt").write_text("B-ORG O B-MISC O\n\nB-PER\nB-LOC O\n")
    with caplog.at_level(logging.WARNING):
        data = read_token_classification_files(tmp_path / "text.txt", tmp_path / "labels.txt")
    assert data.sentences == [["EU", "rejects", "German", "call"], ["BRUSSELS", "1996"]]
    assert data.lines == [1, 4] and data.summary.skipped_lines == [3] and data.summary.blank_lines == 1
    assert f"{tmp_path / 'labels.txt'}:3: 2 words in text.txt but 1 labels" in caplog.text
    skipped = read_token_classification_files(tmp_path / "text.txt", tmp_path / "labels.txt",
                                              known_labels=["O", "B-LOC"])
    assert skipped.lines == [4] and "B-MISC, B-ORG are not among the model's labels" in skipped.summary.warnings[0]


def test_files_of_different_lengths_are_an_error_naming_both(tmp_path):
    (tmp_path / "text.txt").write_text("a b\nc\n")
    (tmp_path / "labels.txt").write_text("O O\n")
    with pytest.raises(TokenClassificationFormatError, match="has 2 lines but .*labels.txt has 1"):
        read_token_classification_files(tmp_path / "text.txt", tmp_path / "labels.txt")


def test_data_layer_ports_batches_and_cache(tmp_path, tokenizer):
    (tmp_path / "text.txt").write_text("EU rejects German call\nPeter Blackburn\n")
    (tmp_path / "labels.txt").write_text("B-ORG O B-MISC O\nB-PER I-PER\n")
    layer = BertTokenClassificationDataLayer(str(tmp_path / "text.txt"), str(tmp_path / "labels.txt"),
                                             tokenizer=tokenizer, batch_size=2, use_cache=True)
    assert list(layer.output_ports) == ["input_ids", "token_type_ids", "attention_mask", "loss_mask",
                                        "subtokens_mask", "labels"]
    assert layer.label_names == ["O", "B-MISC", "B-ORG", "B-PER", "I-PER"]
    assert layer.words_per_sentence.tolist() == [4, 2] and layer.cache_path.is_file()
    batch = layer.collate_fn([layer.dataset[0], layer.dataset[1]])
    assert len(batch) == 6 and batch[0].shape == batch[5].shape == (2, 6)
    assert batch[2][1].tolist() == [1, 1, 1, 1, 0, 0]  # the shorter window is padded and masked
    again = BertTokenClassificationDataLayer(str(tmp_path / "text.txt"), str(tmp_path / "labels.txt"),
                                             tokenizer=tokenizer, use_cache=True)
    assert np.array_equal(again.features.input_ids_flat, layer.features.input_ids_flat)
    infer = BertTokenClassificationInferDataLayer(["hello world", "x"], tokenizer=tokenizer)
    assert "labels" not in infer.output_ports and len(infer.dataset[0]) == 5


def test_ner_samples_are_what_make_samples_writes():
    samples = Path(nmod_nlp.__file__).parent / "data" / "token_classification" / "samples"
    make = runpy.run_path(str(samples / "make_samples.py"))
    for name, text in make["make"](random.Random(make["SEED"])).items():
        assert (samples / name).read_bytes() == text.encode("utf-8"), name
