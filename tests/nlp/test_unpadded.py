"""The unpadded (packed) path: same outputs and gradients as the padded one, padding never leaks."""
import math

import pytest
import torch

from nmod_nlp.modules.encoders import BERT, UNPAD_MIN_PADDING_FRACTION, MegatronBERT, Packed, Padded, choose_layout


def test_packing_indices_and_cu_seqlens_by_hand():
    mask = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 0, 1]])
    packed = Packed(mask)
    assert packed.indices.tolist() == [0, 1, 6, 8]
    assert packed.cu_seqlens.tolist() == [0, 2, 2, 4] and packed.lengths == [2, 0, 2] and packed.max_seqlen == 2
    x = torch.arange(9.0).reshape(3, 3, 1) + 1
    assert packed.pack(x).flatten().tolist() == [1.0, 2.0, 7.0, 9.0]
    assert packed.unpack(packed.pack(x)).squeeze(-1).tolist() == [[1, 2, 0], [0, 0, 0], [7, 0, 9]]


def test_packed_attention_against_explicit_softmax():
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 1]])
    q, k, v = (torch.randn(3, 5, 2, 4) for _ in range(3))
    expected = torch.zeros(3, 5, 2, 4)
    for b in range(3):
        keep = mask[b].bool()
        qb, kb, vb = q[b, keep].transpose(0, 1), k[b, keep].transpose(0, 1), v[b, keep].transpose(0, 1)
        weights = torch.softmax(qb @ kb.transpose(-1, -2) / math.sqrt(4), dim=-1)
        expected[b, keep] = (weights @ vb).transpose(0, 1)
    packed = Packed(mask)
    out = packed.unpack(packed.attend(*(packed.pack(t) for t in (q, k, v)), dropout_p=0.0))
    torch.testing.assert_close(out, expected)
    padded = Padded(mask)
    torch.testing.assert_close(padded.unpack(padded.attend(q, k, v, dropout_p=0.0)), expected)


def test_auto_choice_and_switch():
    full = torch.ones(4, 10, dtype=torch.long)
    assert isinstance(choose_layout(full), Padded)
    little, some = full.clone(), full.clone()
    little[0, 9:] = 0  # 2.5 % padding: not worth packing
    some[0, 5:] = 0  # 12.5 %
    assert 1 / 40 < UNPAD_MIN_PADDING_FRACTION <= 5 / 40
    assert isinstance(choose_layout(little), Padded) and isinstance(choose_layout(some), Packed)
    much = full.clone()
    much[:, 3:] = 0
    assert isinstance(choose_layout(much), Packed)
    assert isinstance(choose_layout(much, "padded"), Padded)
    assert isinstance(choose_layout(full, "unpadded"), Packed)
    with pytest.raises(ValueError, match="attention_impl must be one of"):
        choose_layout(full, "flash")


def megatron():
    return MegatronBERT(vocab_size=50, hidden_size=32, num_layers=2, num_attention_heads=4, max_seq_length=16,
                        hidden_dropout=0.0, attention_dropout=0.0)


def bert():
    return BERT(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                max_position_embeddings=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


MASKS = {
    "right": [[1] * 10 + [0] * 2, [1] * 4 + [0] * 8, [1] * 12, [1] * 7 + [0] * 5],
    "left_and_holes": [[0] * 3 + [1] * 9, [1, 0] * 6, [1] * 12, [0] * 11 + [1]],
    "empty_row": [[1] * 5 + [0] * 7, [0] * 12, [1] * 12, [1] * 2 + [0] * 10],
}


def outputs_and_grads(model, impl, ids, types, mask, weights):
    model.attention_impl = impl
    model.zero_grad()
    model.train()  # dropout is 0: exercises the training path deterministically
    out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    (out * weights).sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("build", [megatron, bert], ids=["megatron", "bert"])
@pytest.mark.parametrize("layout", list(MASKS))
def test_padded_and_unpadded_agree_outputs_and_grads(build, layout):
    torch.manual_seed(0)
    model = build()
    mask = torch.tensor(MASKS[layout])
    ids, types = torch.randint(0, 50, mask.shape), torch.randint(0, 2, mask.shape)
    weights = torch.randn(*mask.shape, 32)
    padded_out, padded_grads = outputs_and_grads(model, "padded", ids, types, mask, weights)
    packed_out, packed_grads = outputs_and_grads(model, "unpadded", ids, types, mask, weights)
    assert torch.isfinite(padded_out).all()
    torch.testing.assert_close(packed_out, padded_out, atol=1e-5, rtol=1e-5)
    assert torch.all(packed_out[mask == 0] == 0) and torch.all(padded_out[mask == 0] == 0)
    for name, grad in padded_grads.items():
        # A gradient sums ~40 tokens' terms, so float32 rounding scales with the tensor's largest entry,
        # not with each element: an entry that cancels to near zero still carries the summands' error.
        # Over 40 seeds and the avx2/avx512/default kernels the worst gap was 1e-6 of that entry.
        atol = 1e-5 + 5e-6 * grad.abs().max().item()
        torch.testing.assert_close(packed_grads[name], grad, atol=atol, rtol=1e-4, msg=name)
    assert padded_grads["language_model.embedding.word_embeddings.weight" if build is megatron else
                        "bert.embeddings.word_embeddings.weight"].abs().sum() > 0


@pytest.mark.parametrize("build", [megatron, bert], ids=["megatron", "bert"])
@pytest.mark.parametrize("impl", ["padded", "unpadded"])
def test_padding_never_changes_real_positions(build, impl):
    torch.manual_seed(0)
    model = build().eval()
    model.attention_impl = impl
    mask = torch.tensor(MASKS["right"])
    ids, types = torch.randint(0, 50, mask.shape), torch.randint(0, 2, mask.shape)
    with torch.no_grad():
        base = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
        other_ids = torch.where(mask.bool(), ids, torch.randint(0, 50, mask.shape))
        other = model(input_ids=other_ids, token_type_ids=torch.where(mask.bool(), types, 1 - types), attention_mask=mask)
        longer = model(  # four more padding columns
            input_ids=torch.cat([ids, torch.full((4, 4), 7)], 1),
            token_type_ids=torch.cat([types, torch.ones(4, 4, dtype=torch.long)], 1),
            attention_mask=torch.cat([mask, torch.zeros(4, 4, dtype=torch.long)], 1),
        )
        alone = model(input_ids=ids[1:2, :4], token_type_ids=types[1:2, :4], attention_mask=mask[1:2, :4])
    torch.testing.assert_close(other, base, atol=1e-6, rtol=0)
    torch.testing.assert_close(longer[:, :12], base, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone[0], base[1, :4], atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
def test_nested_tensor_varlen_path_matches_per_sequence():
    """The path CUDA takes (jagged nested tensors + SDPA), checked here on the CPU with the fused-QKV
    views the encoders pass, which nested SDPA only accepts once made contiguous."""
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [0, 1, 1, 0]])
    packed = Packed(mask)
    q, k, v = torch.randn(int(mask.sum()), 2, 3 * 8).chunk(3, dim=-1)
    assert not q.is_contiguous()
    torch.testing.assert_close(packed._attend_nested(q, k, v, 0.0), packed.attend(q, k, v, 0.0))
