"""The model folder: save -> load gives the same weights and outputs, needs no outside file, and a
broken folder says which file is wrong."""
import json
import shutil

import pytest
import torch

from nmod.core.errors import CheckpointError, ConfigError, ConfigExportError, MissingFileError
from nmod.core.config import read_yaml, write_yaml
from nmod_nlp.model_folder import load_model_folder, save_model_folder
from nmod_nlp.modules.encoders import BERT, MegatronBERT
from nmod_nlp.modules.heads import SequenceClassifier, TokenClassifier
from nmod_nlp.tokenizers import BertWordPieceTokenizer

from recipe_runner import ROOT, VOCAB, megatron_flags, run_recipe


@pytest.fixture()
def megatron_files(tmp_path):
    config = tmp_path / "megatron" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"hidden-size": 32, "num-attention-heads": 2, "num-layers": 2,
                                  "max-seq-length": 64}))
    vocab = tmp_path / "megatron" / "vocab.txt"
    shutil.copyfile(VOCAB, vocab)
    return config, vocab


def _inputs():
    torch.manual_seed(1)
    ids = torch.randint(0, 1000, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": mask}


def _save(tmp_path, megatron_files, **kwargs):
    config, vocab = megatron_files
    torch.manual_seed(0)
    encoder = MegatronBERT(config_file=str(config), vocab_file=str(vocab))
    head = TokenClassifier(32, num_classes=2, num_layers=1, log_softmax=False)
    tokenizer = BertWordPieceTokenizer(vocab, do_lower_case=True)
    folder = save_model_folder(tmp_path / "work" / "model", "squad", {"encoder": encoder, "qa_head": head},
                               tokenizer, extra={"max_seq_length": 64}, **kwargs)
    return folder, encoder, head


def test_round_trip_same_weights_and_outputs_without_the_original_files(tmp_path, megatron_files):
    folder, encoder, head = _save(tmp_path, megatron_files, labels={"labels": ["a", "b"]})
    shutil.rmtree(megatron_files[0].parent)  # the Megatron config and vocab are gone
    assert sorted(p.name for p in folder.iterdir()) == ["encoder.safetensors", "model.yaml", "qa_head.safetensors",
                                                        "vocab.txt"]
    assert str(tmp_path / "megatron") not in (folder / "model.yaml").read_text()  # no path points outside

    model = load_model_folder(folder)
    assert model.task == "squad" and model.labels == {"labels": ["a", "b"]} and model.extra == {"max_seq_length": 64}
    assert set(model.modules) == {"encoder", "qa_head"}
    assert isinstance(model["encoder"], MegatronBERT) and model["encoder"].config == encoder.config
    assert not model["encoder"].training and not model["qa_head"].training
    for original, loaded in ((encoder, model["encoder"]), (head, model["qa_head"])):
        a, b = original.state_dict(), loaded.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    encoder.eval(), head.eval()
    x = _inputs()
    assert torch.equal(head(hidden_states=encoder(**x)), model["qa_head"](hidden_states=model["encoder"](**x)))
    assert model.tokenizer.do_lower_case and model.tokenizer.vocab_size == BertWordPieceTokenizer(VOCAB).vocab_size
    assert model.tokenizer.text_to_ids("Hello world") == BertWordPieceTokenizer(VOCAB).text_to_ids("Hello world")


def test_bert_encoder_exports_a_self_contained_config(tmp_path):
    encoder = BERT(vocab_size=120, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                   hidden_dropout_prob=0.0)
    head = SequenceClassifier(32, num_classes=3, num_layers=2, log_softmax=False)
    tokenizer = BertWordPieceTokenizer(VOCAB, do_lower_case=False)
    folder = save_model_folder(tmp_path / "model", "glue", {"encoder": encoder, "head": head}, tokenizer,
                               labels={"labels": ["x", "y", "z"]})
    model = load_model_folder(folder)
    assert model["encoder"].config == encoder.config and model.tokenizer.do_lower_case is False
    encoder.eval(), head.eval()
    x = {**_inputs(), "input_ids": _inputs()["input_ids"] % 120}
    assert torch.equal(head(hidden_states=encoder(**x)), model["head"](hidden_states=model["encoder"](**x)))


def test_saving_again_replaces_the_folder_and_leaves_no_temporary_files(tmp_path, megatron_files):
    folder, _, _ = _save(tmp_path, megatron_files)
    (folder / "stale.txt").write_text("from an older run")
    _save(tmp_path, megatron_files)
    assert not (folder / "stale.txt").exists()
    assert [p.name for p in folder.parent.iterdir()] == ["model"]


def test_a_failed_save_leaves_the_previous_folder(tmp_path, megatron_files, monkeypatch):
    folder, _, _ = _save(tmp_path, megatron_files)
    before = sorted(p.name for p in folder.iterdir()), (folder / "model.yaml").read_text()
    with pytest.raises(ConfigExportError, match="extra.bad is a builtins.object"):
        save_model_folder(folder, "squad", {"head": TokenClassifier(32, 2)}, BertWordPieceTokenizer(VOCAB),
                          extra={"bad": object()})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("nmod.core.config.write_yaml", crash)  # weights written, then the crash
    with pytest.raises(OSError, match="disk full"):
        save_model_folder(folder, "squad", {"head": TokenClassifier(32, 2)}, BertWordPieceTokenizer(VOCAB))
    assert (sorted(p.name for p in folder.iterdir()), (folder / "model.yaml").read_text()) == before
    assert [p.name for p in folder.parent.iterdir()] == ["model"]


def test_a_module_that_points_at_files_is_refused(tmp_path, megatron_files):
    class FileHead(TokenClassifier):
        def __init__(self, hidden_size: int, num_classes: int, checkpoint: str = "", name=None):
            super().__init__(hidden_size, num_classes, name=name)

    with pytest.raises(ConfigExportError, match="built from files.*self_contained_init_params"):
        save_model_folder(tmp_path / "model", "x", {"head": FileHead(8, 2, checkpoint="/data/head.pt")},
                          BertWordPieceTokenizer(VOCAB))


@pytest.mark.parametrize("damage, error, message", [
    (lambda f: shutil.rmtree(f), MissingFileError, "does not exist"),
    (lambda f: (f / "model.yaml").unlink(), MissingFileError, "no model.yaml"),
    (lambda f: (f / "qa_head.safetensors").unlink(), MissingFileError, "qa_head.safetensors is missing"),
    (lambda f: (f / "vocab.txt").unlink(), MissingFileError, "vocab.txt is missing"),
    (lambda f: (f / "encoder.safetensors").write_bytes(b"not safetensors"), CheckpointError,
     "encoder.safetensors: not a readable safetensors file"),
    (lambda f: shutil.copyfile(f / "qa_head.safetensors", f / "encoder.safetensors"), CheckpointError,
     "encoder.safetensors does not fit module 'encoder'"),
    (lambda f: (f / "model.yaml").write_text("task: [unclosed"), ConfigError, "model.yaml:1"),
    (lambda f: _edit(f, format_version=99), ConfigError, "format_version 99 was written by a newer nmod"),
    (lambda f: _edit(f, format="other"), ConfigError, "'format' is 'other'"),
    (lambda f: _edit(f, modules={}), ConfigError, "'modules' is empty"),
    (lambda f: _edit_module(f, "qa_head", "nmod_nlp.modules.heads.NoSuchHead"), ConfigError,
     "modules.qa_head.config: cannot import class"),
])
def test_a_broken_folder_names_the_file_and_the_problem(tmp_path, megatron_files, damage, error, message):
    folder, _, _ = _save(tmp_path, megatron_files)
    damage(folder)
    with pytest.raises(error, match=message):
        load_model_folder(folder)


def test_shape_mismatch_names_the_tensor(tmp_path, megatron_files):
    folder, _, _ = _save(tmp_path, megatron_files)
    doc = read_yaml(folder / "model.yaml")
    doc["modules"]["qa_head"]["config"]["init_params"]["num_classes"] = 3
    write_yaml(folder / "model.yaml", doc)
    with pytest.raises(CheckpointError, match=r"qa_head.safetensors does not fit module 'qa_head'.*other shapes"):
        load_model_folder(folder)


def _edit(folder, **fields):
    doc = read_yaml(folder / "model.yaml")
    doc.update(fields)
    write_yaml(folder / "model.yaml", doc)


def _edit_module(folder, name, spec):
    doc = read_yaml(folder / "model.yaml")
    doc["modules"][name]["config"]["header"]["full_spec"] = spec
    write_yaml(folder / "model.yaml", doc)


@pytest.mark.parametrize("script, args, task, labels", [
    ("glue_benchmark/glue_benchmark_with_bert.py", ["--data_dir", "{data}/SST-2", "--task_name", "sst-2"], "glue",
     {"labels": ["0", "1"]}),
    ("text_classification/text_classification_with_bert.py", ["--data_dir", "{data}"], "text_classification",
     {"labels": ["0", "1", "2"]}),
])
def test_sentence_recipes_write_the_model_folder(megatron, tmp_path, script, args, task, labels):
    samples = {"glue": "glue/samples", "text_classification": "text_classification/samples"}[task]
    data = shutil.copytree(ROOT / "collections" / "nmod_nlp" / "data" / samples, tmp_path / "data")
    args = [a.replace("{data}", str(data)) for a in args]
    result = run_recipe(ROOT / "examples" / "nlp" / script, [*args, *megatron_flags(megatron), "--max_steps", "1",
                                                             "--batch_size", "4", "--max_seq_length", "32"], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    model = load_model_folder(tmp_path / "work" / "model")
    assert model.task == task and model.labels == labels and model.extra["max_seq_length"] == 32
    assert isinstance(model["encoder"], MegatronBERT) and isinstance(model["head"], SequenceClassifier)
    assert model["head"].init_params["num_classes"] == len(labels["labels"])
    assert str(megatron["checkpoint"].parent) not in (tmp_path / "work" / "model" / "model.yaml").read_text()
