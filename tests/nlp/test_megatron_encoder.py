"""MegatronBERT against transformers.MegatronBertModel on the same (random, tiny) weights, loaded
through every Megatron checkpoint layout: bare state dict, model_optim_rng.pt with each QKV ordering,
a 2-way tensor-parallel release folder, and a HF megatron-bert folder."""
import argparse
import fractions
import json
import random

import numpy as np
import pytest
import torch
import transformers

from nmod.backends.pytorch.serialization import UnsafeCheckpointError
from nmod_nlp.modules.encoders import (
    MegatronBERT,
    MegatronBertConfig,
    get_pretrained_lm_model,
    padded_vocab_size,
)
from nmod_nlp.modules.encoders.megatron_checkpoint import qkv_axes, qkv_from_current, qkv_to_current
from nmod_nlp.testing import save_megatron_checkpoint

VOCAB, PADDED, HIDDEN, HEADS, LAYERS, MAX_POS = 100, 128, 32, 4, 2, 64
SIZES = dict(hidden_size=HIDDEN, num_layers=LAYERS, num_attention_heads=HEADS, max_seq_length=MAX_POS, vocab_size=VOCAB)


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(0)
    config = transformers.MegatronBertConfig(
        vocab_size=PADDED,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=4 * HIDDEN,
        max_position_embeddings=MAX_POS,
        layer_norm_eps=1e-5,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = transformers.MegatronBertModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():  # LayerNorms at 1/0 and zero biases would hide mapping mistakes
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(1)
    ids = torch.randint(0, VOCAB, (3, 12))
    types = torch.randint(0, 2, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[0, 7:] = 0
    mask[2, 4:] = 0
    return ids, types, mask


def reference(hf_model, batch):
    ids, types, mask = batch
    with torch.no_grad():
        return hf_model(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state


def qkv(hf_state, layer, kind, version):
    """The fused QKV rows Megatron stores, built straight from HF's separate q, k, v."""
    q, k, v = (hf_state[f"encoder.layer.{layer}.attention.self.{n}.{kind}"] for n in ("query", "key", "value"))
    per_head = [t.reshape(HEADS, HIDDEN // HEADS, *t.shape[1:]) for t in (q, k, v)]
    if version == 0:  # [3, heads, head_dim]
        return torch.cat([q, k, v])
    if version == 1.0:  # [heads, head_dim, 3]
        return torch.stack(per_head, dim=2).reshape(3 * HIDDEN, *q.shape[1:])
    return torch.stack(per_head, dim=1).reshape(3 * HIDDEN, *q.shape[1:])  # [heads, 3, head_dim]


def megatron_layers(hf_state, version=3.0, legacy_names=False):
    """HF weights under Megatron's transformer/encoder names (without the 'encoder.' prefix)."""
    attention = "attention" if legacy_names else "self_attention"
    out = {}
    for i in range(LAYERS):
        hf = f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            out[f"layers.{i}.input_layernorm.{kind}"] = hf_state[hf + f"attention.ln.{kind}"]
            out[f"layers.{i}.{attention}.query_key_value.{kind}"] = qkv(hf_state, i, kind, version)
            out[f"layers.{i}.{attention}.dense.{kind}"] = hf_state[hf + f"attention.output.dense.{kind}"]
            out[f"layers.{i}.post_attention_layernorm.{kind}"] = hf_state[hf + f"ln.{kind}"]
            out[f"layers.{i}.mlp.dense_h_to_4h.{kind}"] = hf_state[hf + f"intermediate.dense.{kind}"]
            out[f"layers.{i}.mlp.dense_4h_to_h.{kind}"] = hf_state[hf + f"output.dense.{kind}"]
            out[f"final_layernorm.{kind}"] = hf_state[f"encoder.ln.{kind}"]
    return out


def megatron_embedding(hf_state):
    return {
        "word_embeddings": {"weight": hf_state["embeddings.word_embeddings.weight"]},
        "position_embeddings": {"weight": hf_state["embeddings.position_embeddings.weight"]},
        "tokentype_embeddings": {"weight": hf_state["embeddings.token_type_embeddings.weight"]},
    }


def bare_state_dict(hf_state):
    """Megatron names, flat, current QKV ordering: what ``MegatronBertModel.state_dict()`` holds."""
    flat = {f"embedding.{k}.weight": v["weight"] for k, v in megatron_embedding(hf_state).items()}
    flat.update({f"encoder.{k}": v for k, v in megatron_layers(hf_state).items()})
    return flat


def model_optim_rng(hf_state, version, legacy_names):
    """A Megatron-LM ``model_optim_rng.pt`` as Megatron writes it, pretraining heads and RNG state too."""
    checkpoint = {
        "iteration": 1000,
        "args": argparse.Namespace(hidden_size=HIDDEN, num_layers=LAYERS, num_attention_heads=HEADS, max_position_embeddings=MAX_POS),
        "rng_state": [{"random_rng_state": random.getstate(), "np_rng_state": np.random.get_state(), "torch_rng_state": torch.get_rng_state()}],
        "model": {
            "language_model": {
                "embedding": megatron_embedding(hf_state),
                "transformer" if legacy_names else "encoder": megatron_layers(hf_state, version, legacy_names),
                "pooler": {"dense.weight": torch.randn(HIDDEN, HIDDEN), "dense.bias": torch.randn(HIDDEN)},
            },
            "lm_head": {"bias": torch.randn(PADDED), "dense.weight": torch.randn(HIDDEN, HIDDEN)},
            "binary_head": {"weight": torch.randn(2, HIDDEN), "bias": torch.randn(2)},
        },
    }
    if version is not None:
        checkpoint["checkpoint_version"] = version
    return checkpoint


def run(model, batch):
    ids, types, mask = batch
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, token_type_ids=types, attention_mask=mask)


def assert_matches(model, hf_model, batch, atol=1e-5):
    mask = batch[2].bool()
    ours, ref = run(model, batch), reference(hf_model, batch)
    torch.testing.assert_close(ours[mask], ref[mask], atol=atol, rtol=1e-5)
    assert torch.all(ours[~mask] == 0)


@pytest.mark.parametrize("impl", ["padded", "unpadded"])
def test_bare_state_dict_matches_hf(tmp_path, hf_model, batch, impl):
    path = tmp_path / "megatron_bert.pt"
    torch.save(bare_state_dict(hf_model.state_dict()), path)
    model = MegatronBERT(checkpoint=str(path), attention_impl=impl, **SIZES)
    assert_matches(model, hf_model, batch)


@pytest.mark.parametrize(
    "version,legacy_names", [(0, True), (1.0, True), (2.0, True), (3.0, False), (None, True)]
)
def test_model_optim_rng_each_qkv_ordering(tmp_path, hf_model, batch, version, legacy_names):
    stored = 0 if version is None else version  # Megatron reads a missing checkpoint_version as 0
    checkpoint = model_optim_rng(hf_model.state_dict(), stored, legacy_names)
    if version is None:
        del checkpoint["checkpoint_version"]
    path = tmp_path / "release" / "mp_rank_00" / "model_optim_rng.pt"
    path.parent.mkdir(parents=True)
    torch.save(checkpoint, path)
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("release")
    for where in (path, tmp_path, tmp_path / "release"):
        model = MegatronBERT(checkpoint=str(where), vocab_size=VOCAB, max_seq_length=MAX_POS)  # sizes from args
        assert (model.config.hidden_size, model.config.num_layers, model.config.num_attention_heads) == (HIDDEN, LAYERS, HEADS)
        assert_matches(model, hf_model, batch)


def test_wrong_qkv_ordering_does_not_match(tmp_path, hf_model, batch):
    """The ordering matters: reading a version-0 file as version 3 gives other numbers."""
    path = tmp_path / "model_optim_rng.pt"
    torch.save(model_optim_rng(hf_model.state_dict(), 0, True), path)
    model = MegatronBERT(checkpoint=str(path), checkpoint_version=3.0, **SIZES)
    mask = batch[2].bool()
    assert (run(model, batch)[mask] - reference(hf_model, batch)[mask]).abs().max() > 1e-2


@pytest.mark.parametrize("version", [0, 1.0, 3.0])
def test_two_way_tensor_parallel_written_and_merged(tmp_path, hf_model, batch, version):
    hf_state = hf_model.state_dict()
    files = save_megatron_checkpoint(
        bare_state_dict(hf_state), tmp_path, num_attention_heads=HEADS, tensor_parallel_size=2, checkpoint_version=version
    )
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "release/mp_rank_00/model_optim_rng.pt",
        "release/mp_rank_01/model_optim_rng.pt",
    ]
    assert (tmp_path / "latest_checkpointed_iteration.txt").read_text() == "release"
    model = MegatronBERT(checkpoint=str(tmp_path), vocab_size=VOCAB)  # sizes from the args it wrote
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_layers, cfg.num_attention_heads, cfg.max_position_embeddings) == (HIDDEN, LAYERS, HEADS, MAX_POS)
    assert_matches(model, hf_model, batch)


def test_tensor_parallel_shards_hold_megatrons_split(tmp_path, hf_model):
    """Each rank holds its half of the heads (column-parallel), half of the input dim of the
    row-parallel weights, half of the (padded to 128 * 2) vocab, and full copies of the rest."""
    hf_state = hf_model.state_dict()
    save_megatron_checkpoint(bare_state_dict(hf_state), tmp_path, num_attention_heads=HEADS, tensor_parallel_size=2)
    half, head_dim = HEADS // 2, HIDDEN // HEADS
    q, k, v = (hf_state[f"encoder.layer.1.attention.self.{n}.weight"] for n in ("query", "key", "value"))
    words = hf_state["embeddings.word_embeddings.weight"]
    for rank in range(2):
        shard = torch.load(tmp_path / "release" / f"mp_rank_{rank:02d}" / "model_optim_rng.pt", weights_only=False)
        assert shard["args"].tensor_model_parallel_size == 2 and shard["checkpoint_version"] == 3.0
        encoder = shard["model"]["language_model"]["encoder"]
        heads = slice(rank * half * head_dim, (rank + 1) * half * head_dim)
        expected_qkv = torch.stack([t[heads].reshape(half, head_dim, HIDDEN) for t in (q, k, v)], dim=1)
        torch.testing.assert_close(encoder["layers.1.self_attention.query_key_value.weight"], expected_qkv.reshape(-1, HIDDEN))
        dense = hf_state["encoder.layer.1.attention.output.dense.weight"]
        torch.testing.assert_close(encoder["layers.1.self_attention.dense.weight"], dense[:, rank * HIDDEN // 2 : (rank + 1) * HIDDEN // 2])
        torch.testing.assert_close(encoder["layers.1.self_attention.dense.bias"], hf_state["encoder.layer.1.attention.output.dense.bias"])
        fc2 = hf_state["encoder.layer.1.output.dense.weight"]
        torch.testing.assert_close(encoder["layers.1.mlp.dense_4h_to_h.weight"], fc2[:, rank * 2 * HIDDEN : (rank + 1) * 2 * HIDDEN])
        rows = shard["model"]["language_model"]["embedding"]["word_embeddings"]["weight"]
        assert rows.shape == (128, HIDDEN)  # 256 padded rows (128 * tp) split in two
        padded_words = torch.cat([words, words.new_zeros(256 - PADDED, HIDDEN)])
        torch.testing.assert_close(rows, padded_words[rank * 128 : (rank + 1) * 128])


def test_hf_megatron_bert_folder(tmp_path, hf_model, batch):
    hf_model.save_pretrained(tmp_path)
    model = MegatronBERT(checkpoint=str(tmp_path), vocab_size=VOCAB)
    assert model.config.layernorm_epsilon == 1e-5 and model.config.padded_vocab_size == PADDED
    assert_matches(model, hf_model, batch)
    by_folder = get_pretrained_lm_model(str(tmp_path))
    assert isinstance(by_folder, MegatronBERT)
    assert_matches(by_folder, hf_model, batch)


def test_arguments_override_config_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden-size": 64, "num-attention-heads": 4, "num-layers": 3, "hidden-dropout": 0.2}))
    cfg = MegatronBERT(config_file=str(path), vocab_size=10, hidden_dropout=0.0, num_layers=1).config
    assert (cfg.hidden_size, cfg.num_layers, cfg.hidden_dropout, cfg.attention_dropout) == (64, 1, 0.0, 0.1)
    assert MegatronBERT(config_file=str(path), vocab_size=10).config.hidden_dropout == 0.2


def test_nmod_saved_weights_round_trip(tmp_path, hf_model, batch):
    first = MegatronBERT(checkpoint=_save(tmp_path / "a.pt", bare_state_dict(hf_model.state_dict())), **SIZES)
    first.save_to(str(tmp_path / "MegatronBERT.pt"))
    second = MegatronBERT(checkpoint=str(tmp_path / "MegatronBERT.pt"), **SIZES)
    assert_matches(second, hf_model, batch)


def _save(path, obj):
    torch.save(obj, path)
    return str(path)


def test_vocab_padding_rows_fitted_and_hidden(tmp_path, hf_model, batch):
    state = bare_state_dict(hf_model.state_dict())
    words = state["embedding.word_embeddings.weight"]
    # An unpadded checkpoint (rows == vocab) and one padded for tp=2 (256 rows) both load.
    for rows in (VOCAB, 256):
        state["embedding.word_embeddings.weight"] = torch.cat([words, words.new_ones(256 - PADDED, HIDDEN)])[:rows]
        model = MegatronBERT(checkpoint=_save(tmp_path / f"{rows}.pt", state), **SIZES)
        loaded = model.language_model.embedding.word_embeddings.weight
        assert loaded.shape == (PADDED, HIDDEN)
        torch.testing.assert_close(loaded[:VOCAB], words[:VOCAB])
        assert model.language_model.word_embeddings_weight.shape == (VOCAB, HIDDEN)
        assert_matches(model, hf_model, batch)  # the ids stay below VOCAB
    state["embedding.word_embeddings.weight"] = words[:50]
    with pytest.raises(ValueError, match=r"50 rows but the vocabulary has 100 tokens"):
        MegatronBERT(checkpoint=_save(tmp_path / "small.pt", state), **SIZES)


def test_missing_and_unexpected_keys_are_listed(tmp_path, hf_model):
    state = bare_state_dict(hf_model.state_dict())
    del state["encoder.layers.1.mlp.dense_h_to_4h.bias"]
    state["encoder.layers.1.mlp.surprise.weight"] = torch.zeros(3)
    with pytest.raises(ValueError) as err:
        MegatronBERT(checkpoint=_save(tmp_path / "bad.pt", state), **SIZES)
    message = str(err.value)
    assert "bad.pt" in message
    assert "missing keys (1): ['encoder.layers.1.mlp.dense_h_to_4h.bias']" in message
    assert "unexpected keys (1): ['encoder.layers.1.mlp.surprise.weight']" in message


def test_shape_mismatch_names_key_and_shapes(tmp_path, hf_model):
    path = _save(tmp_path / "ok.pt", bare_state_dict(hf_model.state_dict()))
    with pytest.raises(ValueError, match=r"encoder\.layers\.0\.mlp\.dense_h_to_4h\.weight: checkpoint \(128, 32\), model \(64, 32\)"):
        MegatronBERT(checkpoint=path, ffn_hidden_size=64, **SIZES)


def test_unsafe_pickle_refused_with_the_opt_in(tmp_path, hf_model):
    checkpoint = model_optim_rng(hf_model.state_dict(), 3.0, False)
    checkpoint["args"].ratio = fractions.Fraction(1, 3)  # a Python object beyond tensors
    path = _save(tmp_path / "model_optim_rng.pt", checkpoint)
    with pytest.raises(UnsafeCheckpointError, match="allow_unsafe_checkpoint=True"):
        MegatronBERT(checkpoint=path, **SIZES)
    assert MegatronBERT(checkpoint=path, allow_unsafe_checkpoint=True, **SIZES).config.hidden_size == HIDDEN


def test_config_json_spellings(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"tok{i}\n" for i in range(30522)))
    spellings = [
        {"hidden-size": 64, "num-attention-heads": 4, "num-layers": 3, "max-seq-length": 128},
        {"hidden_size": 64, "num_attention_heads": 4, "num_layers": 3, "max_position_embeddings": 128},
        {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 3, "max_position_embeddings": 128},
    ]
    configs = []
    for i, values in enumerate(spellings):
        path = tmp_path / f"config{i}.json"
        path.write_text(json.dumps(values))
        configs.append(MegatronBERT.from_config_file(str(path), vocab_file=str(vocab)).config)
    assert configs[0] == configs[1] == configs[2]
    cfg = configs[0]
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.num_layers, cfg.max_position_embeddings) == (64, 4, 3, 128)
    assert (cfg.vocab_size, cfg.padded_vocab_size, cfg.ffn_hidden_size) == (30522, 30592, 256)
    divisible = MegatronBertConfig.from_dict({**spellings[0], "make-vocab-size-divisible-by": 256}, vocab_size=30522)
    assert divisible.padded_vocab_size == 30720
    assert padded_vocab_size(28996) == 29056 and padded_vocab_size(30522, 128, 2) == 30720


def test_config_missing_keys_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden-size": 64}))
    with pytest.raises(ValueError, match=r"config\.json: missing \['num_layers', 'num_attention_heads'\].*num-layers"):
        MegatronBERT(config_file=str(path), vocab_size=100)


def test_get_pretrained_megatron_needs_a_checkpoint_and_sizes(tmp_path, hf_model, batch):
    with pytest.raises(ValueError, match=r"--bert_checkpoint.*unless the checkpoint records its sizes.*--bert_config"):
        get_pretrained_lm_model("megatron-uncased")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hidden-size": HIDDEN, "num-attention-heads": HEADS, "num-layers": LAYERS, "max-seq-length": MAX_POS}))
    with pytest.raises(ValueError, match=r"missing: --bert_checkpoint"):
        get_pretrained_lm_model("megatron-cased", config=str(config))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"tok{i}\n" for i in range(VOCAB)))
    save_megatron_checkpoint(bare_state_dict(hf_model.state_dict()), tmp_path / "ckpt", num_attention_heads=HEADS)
    model = get_pretrained_lm_model("megatron-uncased", config=str(config), vocab=str(vocab), checkpoint=str(tmp_path / "ckpt"))
    assert isinstance(model, MegatronBERT) and model.config.vocab_size == VOCAB
    assert model.init_params["checkpoint"] == str(tmp_path / "ckpt")
    assert_matches(model, hf_model, batch)
    # the save folder records its sizes in its args: --bert_config may be left out
    assert_matches(get_pretrained_lm_model("megatron-uncased", vocab=str(vocab), checkpoint=str(tmp_path / "ckpt")),
                   hf_model, batch)
    # but a config.json that contradicts them is an error naming both
    config.write_text(json.dumps({"hidden-size": HIDDEN * 2, "num-attention-heads": HEADS, "num-layers": LAYERS}))
    with pytest.raises(ValueError, match=rf"disagree on the model's shape: hidden_size {HIDDEN * 2} there, {HIDDEN} in"):
        get_pretrained_lm_model("megatron-uncased", config=str(config), vocab=str(vocab), checkpoint=str(tmp_path / "ckpt"))


def test_megatron_core_names(tmp_path, hf_model, batch):
    """Megatron-core's legacy torch format: linear_qkv / linear_proj / linear_fc1 / linear_fc2, the
    LayerNorms fused into the following linear, and _extra_state entries that are not tensors."""
    renames = [(".self_attention.query_key_value.", ".self_attention.linear_qkv."), (".self_attention.dense.", ".self_attention.linear_proj."),
               (".mlp.dense_h_to_4h.", ".mlp.linear_fc1."), (".mlp.dense_4h_to_h.", ".mlp.linear_fc2."),
               (".input_layernorm.", ".self_attention.linear_qkv.layer_norm_"), (".post_attention_layernorm.", ".mlp.linear_fc1.layer_norm_")]
    state = {}
    for key, value in bare_state_dict(hf_model.state_dict()).items():
        for old, new in renames:
            key = key.replace(old, new)
        state[key] = value
    state["encoder.layers.0.self_attention.linear_qkv._extra_state"] = None
    state["output_layer.weight"] = torch.zeros(PADDED, HIDDEN)
    assert "encoder.layers.0.self_attention.linear_qkv.layer_norm_weight" in state
    model = MegatronBERT(checkpoint=_save(tmp_path / "mcore.pt", {"model": state, "checkpoint_version": 3.0}), **SIZES)
    assert_matches(model, hf_model, batch)


def test_checkpoint_without_token_types_starts_them_at_zero(tmp_path, hf_model, caplog):
    state = bare_state_dict(hf_model.state_dict())
    del state["embedding.tokentype_embeddings.weight"]
    model = MegatronBERT(checkpoint=_save(tmp_path / "no_types.pt", state), **SIZES)
    assert torch.all(model.language_model.embedding.tokentype_embeddings.weight == 0)
    assert "no token-type embeddings" in caplog.text


def test_written_checkpoint_describes_itself_and_exports_to_yaml(tmp_path, batch):
    torch.manual_seed(0)
    original = MegatronBERT(activation="gelu_new", layernorm_epsilon=1e-6, **SIZES)
    save_megatron_checkpoint(original, tmp_path / "ckpt", num_attention_heads=HEADS, tensor_parallel_size=2)
    loaded = MegatronBERT(checkpoint=str(tmp_path / "ckpt"), vocab_size=VOCAB)
    assert loaded.config == original.config
    torch.testing.assert_close(run(loaded, batch), run(original, batch), atol=0, rtol=0)
    loaded.export_to_config(str(tmp_path / "encoder.yaml"))
    rebuilt = MegatronBERT.import_from_config(str(tmp_path / "encoder.yaml"))
    torch.testing.assert_close(run(rebuilt, batch), run(original, batch), atol=0, rtol=0)


def test_resolve_takes_each_field_from_the_first_source_that_sets_it(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden-size": 64, "num-attention-heads": 4, "num-layers": 3, "hidden-dropout": 0.2}))
    recorded = {"hidden_size": 64, "num_attention_heads": 4, "hidden_dropout": 0.5, "attention_dropout": 0.3,
                "layernorm_epsilon": 1e-6, "vocab_size": 77}
    cfg = MegatronBertConfig.resolve({"num_layers": 1, "attention_dropout": 0.0, "hidden_dropout": None}, path, recorded)
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.num_layers) == (64, 4, 1)  # override over file over args
    assert (cfg.hidden_dropout, cfg.attention_dropout, cfg.layernorm_epsilon, cfg.vocab_size) == (0.2, 0.0, 1e-6, 77)
    with pytest.raises(ValueError, match=r"config.json and ckpt disagree on the model.s shape: hidden_size 64 there, 32 in the checkpoint"):
        MegatronBertConfig.resolve({}, path, {**recorded, "hidden_size": 32}, "ckpt")
    assert cfg.max_position_embeddings == 512  # Megatron's default
    assert MegatronBertConfig.resolve({"max_seq_length": 64, "vocab_size": 10}).max_position_embeddings == 64
    with pytest.raises(TypeError, match=r"unknown fields \['hiden_size'\]"):
        MegatronBertConfig.resolve({"hiden_size": 64, "vocab_size": 10})
    with pytest.raises(ValueError, match="no vocab size: pass vocab_size or vocab_file"):
        MegatronBertConfig.resolve({}, path)


def test_module_from_a_config_object_round_trips_through_yaml(tmp_path, hf_model, batch):
    config = MegatronBertConfig.resolve(SIZES)
    path = _save(tmp_path / "bare.pt", bare_state_dict(hf_model.state_dict()))
    model = MegatronBERT(config, checkpoint=path, attention_impl="padded")
    assert model.config == config
    assert_matches(model, hf_model, batch)
    model.export_to_config(str(tmp_path / "encoder.yaml"))
    rebuilt = MegatronBERT.import_from_config(str(tmp_path / "encoder.yaml"))
    assert rebuilt.config == config and rebuilt.attention_impl == "padded"
    torch.testing.assert_close(run(rebuilt, batch), run(model, batch), atol=0, rtol=0)
    with pytest.raises(ValueError, match=r"either config or \['hidden_dropout'\], not both.*dataclasses\.replace"):
        MegatronBERT(config, hidden_dropout=0.0)
    with pytest.raises(TypeError, match="pass a Megatron config.json as config_file="):
        MegatronBERT(str(tmp_path / "config.json"))


@pytest.mark.parametrize("version", [0, 1, 1.0, 2.0, 3.0])
def test_qkv_orderings_by_version_range_invert(version):
    t = torch.randn(3 * HIDDEN, HIDDEN)
    assert torch.equal(qkv_to_current(qkv_from_current(t, version, HEADS), version, HEADS), t)
    assert qkv_axes(version) == {0: ("qkv", "heads", "head_dim"), 1: ("heads", "head_dim", "qkv")}.get(
        int(version), ("heads", "qkv", "head_dim"))
    with pytest.raises(ValueError, match="unknown Megatron checkpoint_version -1"):
        qkv_axes(-1)
