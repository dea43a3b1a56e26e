"""Every Megatron BERT checkpoint format, written by nmod_nlp.testing from transformers' own MegatronBertModel
weights and read back without Megatron or NeMo installed: the hidden states and the pooled output equal
transformers' within 1e-4; the seed's SQuAD command and a GLUE command run from each; what is wrong with
a broken one is one line naming the file."""
import json
import runpy
import shutil
import sys
from pathlib import Path

import pytest
import torch
import transformers

from nmod_nlp import recipe
from nmod_nlp.convert.__main__ import main as convert
from nmod_nlp.modules.encoders import MegatronBERT, recognise
from nmod_nlp.testing import save_megatron_checkpoint, save_nemo2_folder, save_nemo_archive, save_torch_dist
from recipe_runner import ROOT, VOCAB

HEADS, LAYERS = 4, 4
SAMPLES = ROOT / "collections" / "nmod_nlp" / "data"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """transformers' MegatronBertModel (random weights far from the init), and nmod's encoder read from its folder."""
    torch.manual_seed(0)
    config = transformers.MegatronBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=LAYERS,
                                             num_attention_heads=HEADS, intermediate_size=64,
                                             max_position_embeddings=128, hidden_dropout_prob=0.0,
                                             attention_probs_dropout_prob=0.0)
    model = transformers.MegatronBertModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    folder = tmp_path_factory.mktemp("hf")
    model.save_pretrained(str(folder))
    encoder = MegatronBERT(checkpoint=str(folder), vocab_file=str(VOCAB), add_pooler=True)
    return model, encoder


@pytest.fixture(scope="module")
def batch():
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(VOCAB.parent), local_files_only=True)
    encoded = tokenizer(["Megatron-core stacks its layers.", "Hi!"], ["NeMo archives hold a vocabulary.", "Yes."],
                        padding=True, return_tensors="pt")
    return {k: encoded[k] for k in ("input_ids", "token_type_ids", "attention_mask")}


def write(kind: str, encoder, out: Path) -> Path:
    """``encoder``'s weights in the format ``kind``; returns what --bert_checkpoint names."""
    out.mkdir(parents=True, exist_ok=True)
    if kind == "nemo":
        return save_nemo_archive(encoder, out / "bert.nemo", HEADS, VOCAB)
    if kind == "nemo_gzip_tp2":
        return save_nemo_archive(encoder, out / "bert.nemo", HEADS, VOCAB, tensor_parallel_size=2, gzip=True)
    if kind == "nemo_mcore_o2_tp2_pp2":
        return save_nemo_archive(encoder, out / "bert.nemo", HEADS, VOCAB, tensor_parallel_size=2,
                                 pipeline_parallel_size=2, mcore=True, o2=True)
    if kind == "torch_dist":
        save_torch_dist(encoder, out / "save", HEADS)
        return out / "save"
    if kind == "torch_dist_per_layer":
        save_torch_dist(encoder, out / "save", HEADS, stack_layers=False)
        return out / "save"
    if kind == "mcore_torch_tp2_pp2":
        save_megatron_checkpoint(encoder, out / "save", HEADS, tensor_parallel_size=2, pipeline_parallel_size=2,
                                 names="megatron-core", iteration=7)
        return out / "save"
    if kind == "megatron_lm_tp2_pp2":
        save_megatron_checkpoint(encoder, out / "save", HEADS, tensor_parallel_size=2, pipeline_parallel_size=2)
        return out / "save"
    if kind == "nemo2":
        return save_nemo2_folder(encoder, out / "nemo2", HEADS, VOCAB)
    raise ValueError(kind)


CARRIES_VOCAB = {"nemo", "nemo_gzip_tp2", "nemo_mcore_o2_tp2_pp2", "nemo2"}
KINDS = ["nemo", "nemo_gzip_tp2", "nemo_mcore_o2_tp2_pp2", "torch_dist", "torch_dist_per_layer",
         "mcore_torch_tp2_pp2", "megatron_lm_tp2_pp2", "nemo2"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_format_gives_transformers_hidden_states(kind, reference, batch, tmp_path):
    model, encoder = reference
    path = write(kind, encoder, tmp_path)
    assert "megatron" not in sys.modules  # read as a user without megatron-core or NeMo does
    vocab = {} if kind in CARRIES_VOCAB else {"vocab_file": str(VOCAB)}
    loaded = MegatronBERT(checkpoint=str(path), add_pooler="if_pretrained", hidden_dropout=0.0,
                          attention_dropout=0.0, **vocab).eval()  # no config file: the checkpoint records its sizes
    assert loaded.has_pooler and loaded.config.num_layers == LAYERS and loaded.config.hidden_size == 32
    if kind in CARRIES_VOCAB:
        assert Path(loaded.vocab_file).read_text() == VOCAB.read_text() and loaded.recorded_lower_case is True
    with torch.no_grad():
        theirs = model(**batch)
        hidden, pooled = loaded(**batch)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(hidden[real], theirs.last_hidden_state[real], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(pooled, theirs.pooler_output, rtol=1e-4, atol=1e-4)


def test_inspect_says_what_a_checkpoint_is(reference, tmp_path, capsys):
    _, encoder = reference
    path = write("nemo_mcore_o2_tp2_pp2", encoder, tmp_path)
    convert(["inspect", str(path), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert info["format"].startswith("NeMo archive") and (info["tensor_parallel"], info["pipeline_parallel"]) == (2, 2)
    assert (info["hidden_size"], info["num_layers"], info["num_attention_heads"]) == (32, LAYERS, HEADS)
    assert info["pooler"] is True and info["vocab_rows"] == 30720 and info["lower_case"] is True
    save = write("torch_dist", encoder, tmp_path / "dist")
    convert(["inspect", str(save)])
    text = capsys.readouterr().out
    assert "format: megatron-core torch_dist" in text and "iteration: iter_0000100" in text and "pooler: True" in text


def test_megatron_to_hf_from_a_nemo_archive_needs_no_vocab_and_keeps_the_pooler(reference, batch, tmp_path):
    model, encoder = reference
    path = write("nemo", encoder, tmp_path)
    convert(["megatron-to-hf", "--bert_checkpoint", str(path), "--out", str(tmp_path / "hf")])
    hf = transformers.MegatronBertModel.from_pretrained(str(tmp_path / "hf"), local_files_only=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(hf(**batch).pooler_output, model(**batch).pooler_output, rtol=1e-4, atol=1e-4)
    assert (tmp_path / "hf" / "vocab.txt").read_text() == VOCAB.read_text()


def test_a_vocab_file_that_is_not_the_archives_is_an_error(reference, tmp_path):
    _, encoder = reference
    path = write("nemo", encoder, tmp_path)
    other = tmp_path / "other_vocab.txt"
    other.write_text("".join(VOCAB.read_text().splitlines(keepends=True)[:1000]))
    with pytest.raises(ValueError, match=r"other_vocab.txt \(1000 tokens\) is not the vocabulary .*bert.nemo carries "
                                         r"\(30522 tokens\)"):
        MegatronBERT(checkpoint=str(path), vocab_file=str(other))
    assert MegatronBERT(checkpoint=str(path), vocab_file=str(VOCAB)).config.vocab_size == 30522


def test_broken_checkpoints_name_what_is_wrong(reference, tmp_path):
    _, encoder = reference
    save = write("torch_dist", encoder, tmp_path / "a")
    shard = next(save.rglob("*.distcp"))
    shard.unlink()
    with pytest.raises(FileNotFoundError, match=rf"{shard.name} is missing: .*\.metadata lists it"):
        MegatronBERT(checkpoint=str(save), vocab_file=str(VOCAB))
    save = write("mcore_torch_tp2_pp2", encoder, tmp_path / "b")
    rank = save / "iter_0000007" / "mp_rank_01_001"
    (rank / "model_optim_rng.pt").unlink()
    with pytest.raises(FileNotFoundError, match=rf"{rank}: no model_optim_rng.pt"):
        MegatronBERT(checkpoint=str(save), vocab_file=str(VOCAB))
    shutil.rmtree(rank)
    with pytest.raises(ValueError, match=r"grid is incomplete.*missing \['tp 1 pp 1'\]"):
        MegatronBERT(checkpoint=str(save), vocab_file=str(VOCAB))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match=r"no Megatron checkpoint found \(it holds notes.txt\); nmod reads "
                                                r"NeMo 1 archive .*NeMo 2 folder .*torch_dist"):
        MegatronBERT(checkpoint=str(tmp_path / "c"), vocab_file=str(VOCAB))


def test_recognise_each_layout(reference, tmp_path):
    _, encoder = reference
    names = {kind: recognise(write(kind, encoder, tmp_path / kind)).name
             for kind in ("nemo", "torch_dist", "mcore_torch_tp2_pp2", "nemo2")}
    assert names == {"nemo": "NeMo 1 archive", "torch_dist": "megatron-core torch_dist",
                     "mcore_torch_tp2_pp2": "Megatron save folder", "nemo2": "NeMo 2 folder"}


def run_recipe_in_process(script: str, argv: list, capsys) -> tuple[int, str]:
    argv = [str(a) for a in argv]
    main = runpy.run_path(str(ROOT / "examples" / "nlp" / script))["main"]
    try:
        recipe.run(lambda: main(argv), argv)
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("kind", ["nemo", "torch_dist", "mcore_torch_tp2_pp2", "nemo2", "megatron_lm_tp2_pp2"])
def test_the_seed_squad_command_and_glue_run_from_each_format(kind, reference, tmp_path, capsys):
    _, encoder = reference
    path = write(kind, encoder, tmp_path)
    flags = ["--pretrained_model_name", "megatron-uncased", "--bert_checkpoint", path]
    if kind not in CARRIES_VOCAB:
        flags += ["--vocab_file", VOCAB, "--do_lower_case"]
    squad = SAMPLES / "squad" / "samples"
    code, err = run_recipe_in_process("question_answering/question_answering_squad.py", [
        "--train_file", squad / "train-v1.1.json", "--eval_file", squad / "dev-v1.1.json", *flags, "--max_steps", "1",
        "--max_seq_length", "96", "--doc_stride", "48", "--no_data_cache", "--work_dir", tmp_path / "squad"], capsys)
    assert code == 0, err
    glue = shutil.copytree(SAMPLES / "glue" / "samples" / "MRPC", tmp_path / "MRPC")
    code, err = run_recipe_in_process("glue_benchmark/glue_benchmark_with_bert.py", [
        "--data_dir", glue, "--task_name", "mrpc", *flags, "--max_steps", "1", "--work_dir", tmp_path / "glue"], capsys)
    assert code == 0, err
    from nmod_nlp.model_folder import load_model_folder

    model = load_model_folder(tmp_path / "glue" / "model")
    assert model["head"].pooled and model["encoder"].config.num_layers == LAYERS  # the checkpoint's pooler, its shape
