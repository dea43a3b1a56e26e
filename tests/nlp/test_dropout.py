"""The CPU dropout whose mask is drawn as 16-bit words: its distribution, scale, gradient and attention."""
import math

import pytest
import torch
import torch.nn.functional as F

from nmod_nlp.modules.dropout import Dropout, drop_mask, dropout
from nmod_nlp.modules.encoders.attention import Packed, Padded, sdpa


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_mask_drops_each_element_with_probability_p_in_every_slot_of_a_word(p):
    torch.manual_seed(0)
    n = 1 << 20
    mask = drop_mask((n,), p)
    expected = round(p * 65536) / 65536
    assert abs(expected - p) <= 2 ** -17
    sigma = math.sqrt(expected * (1 - expected) / (n // 4))
    # Four elements share a 64-bit draw: each of the four 16-bit slots must be fair on its own.
    for slot in range(4):
        assert abs(float(mask[slot::4].float().mean()) - expected) < 5 * sigma
    # Neighbours are independent: P(both dropped) = p^2.
    both = float((mask[0::2] & mask[1::2]).float().mean())
    assert abs(both - expected ** 2) < 5 * math.sqrt(expected ** 2 * (1 - expected ** 2) / (n // 2))


def test_dropout_zeroes_the_mask_scales_the_rest_and_its_gradient_is_the_same_mask():
    x = torch.randn(64, 48, requires_grad=True)
    torch.manual_seed(3)
    y = dropout(x, 0.2)
    torch.manual_seed(3)
    dropped = drop_mask(x.shape, 0.2)  # the same draws from the same seed
    torch.testing.assert_close(y, torch.where(dropped, 0.0, x * (1 / 0.8)), rtol=0, atol=0)
    y.backward(torch.full_like(y, 2.0))
    torch.testing.assert_close(x.grad, torch.where(dropped, 0.0, torch.full_like(x, 2.0 / 0.8)), rtol=0, atol=0)


def test_the_module_is_nn_dropout_in_eval_at_p_0_and_repeats_under_a_seed():
    x = torch.randn(8, 16)
    module = Dropout(0.3)
    assert isinstance(module, torch.nn.Dropout) and repr(module) == repr(torch.nn.Dropout(0.3))
    assert torch.equal(module.eval()(x), x) and torch.equal(Dropout(0.0)(x), x)
    module.train()
    torch.manual_seed(7)
    first = module(x)
    torch.manual_seed(7)
    assert torch.equal(module(x), first)
    assert 0 < int((first == 0).sum()) < x.numel()


def _reference_attention(q, k, v, keys, dropped, p):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if keys is not None:
        scores = scores.masked_fill(~keys, float("-inf"))
    probs = torch.where(dropped, 0.0, scores.softmax(-1) / (1 - p))
    return probs @ v


def test_sdpa_with_dropout_is_attention_with_the_drawn_mask_and_without_it_torch_sdpa():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4) for _ in range(3))
    keys = torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, None, :]
    torch.manual_seed(11)
    out = sdpa(q, k, v, key_mask=keys, dropout_p=0.25)
    torch.manual_seed(11)
    dropped = drop_mask((2, 3, 5, 5), 0.25)
    torch.testing.assert_close(out, _reference_attention(q, k, v, keys, dropped, 0.25))
    torch.testing.assert_close(sdpa(q, k, v, key_mask=keys), F.scaled_dot_product_attention(q, k, v, attn_mask=keys))


def test_both_layouts_train_with_the_same_attention_dropout():
    """The packed layout draws one mask per sequence, so it matches the padded one sequence by sequence."""
    torch.manual_seed(0)
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    q, k, v = (torch.randn(2, 6, 3, 4) for _ in range(3))  # (B, T, H, hd)
    packed = Packed(attention_mask)
    torch.manual_seed(5)
    out = packed.unpack(packed.attend(*(packed.pack(t) for t in (q, k, v)), dropout_p=0.3))
    torch.manual_seed(5)
    for row, length in enumerate((6, 4)):
        seq = [t[row, :length].transpose(0, 1) for t in (q, k, v)]  # (H, L, hd)
        dropped = drop_mask((3, length, length), 0.3)
        expected = _reference_attention(*seq, None, dropped, 0.3).transpose(0, 1)
        torch.testing.assert_close(out[row, :length], expected)
    assert torch.equal(out[1, 4:], torch.zeros(2, 3, 4))
    padded = Padded(attention_mask)
    torch.manual_seed(5)
    out = padded.unpack(padded.attend(q, k, v, dropout_p=0.3))
    torch.manual_seed(5)
    dropped = drop_mask((2, 3, 6, 6), 0.3)
    keys = padded.key_mask
    expected = _reference_attention(*(t.transpose(1, 2) for t in (q, k, v)), keys, dropped, 0.3).transpose(1, 2)
    torch.testing.assert_close(out[0], expected[0])
    torch.testing.assert_close(out[1, :4], expected[1, :4])


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_a_probability_outside_0_1_is_refused_as_torch_refuses_it(p):
    x = torch.randn(4, 4)
    q = torch.randn(1, 2, 4, 8)
    for call in (lambda: dropout(x, p), lambda: drop_mask(x.shape, p), lambda: F.dropout(x, p),
                 lambda: sdpa(q, q, q, dropout_p=p)):
        with pytest.raises(ValueError, match="between 0 and 1"):
            call()
