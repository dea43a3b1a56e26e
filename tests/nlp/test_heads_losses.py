"""Heads and losses against hand-worked values and torch's own formulas."""
import math

import pytest
import torch
import torch.nn.functional as F

from nmod.types import NeuralType
from nmod_nlp.modules.heads import SequenceClassifier, SequenceRegression, TokenClassifier
from nmod_nlp.modules.losses import CrossEntropyLoss, MSELoss, SpanningLoss

LN2, LN3 = math.log(2.0), math.log(3.0)


def hidden(batch=2, seq=5, dim=32, seed=0):
    return torch.randn(batch, seq, dim, generator=torch.Generator().manual_seed(seed))


def test_token_classifier_is_nemos_mlp():
    torch.manual_seed(0)
    head = TokenClassifier(hidden_size=32, num_classes=3, num_layers=2, activation="gelu")
    # NeMo 0.11's parameter names, so its head checkpoints load as they are.
    assert list(head.state_dict()) == ["mlp.layer0.weight", "mlp.layer0.bias", "mlp.layer2.weight", "mlp.layer2.bias"]
    x = hidden()
    sd = head.state_dict()
    expected = torch.log_softmax(
        F.gelu(x @ sd["mlp.layer0.weight"].T + sd["mlp.layer0.bias"]) @ sd["mlp.layer2.weight"].T + sd["mlp.layer2.bias"],
        dim=-1,
    )
    out = head(hidden_states=x)
    assert out.shape == (2, 5, 3)
    torch.testing.assert_close(out, expected)
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, 5))


def test_token_classifier_raw_logits_and_bert_init():
    torch.manual_seed(0)
    head = TokenClassifier(hidden_size=256, num_classes=256, log_softmax=False)
    layer = head.mlp.layer0
    assert list(head.state_dict()) == ["mlp.layer0.weight", "mlp.layer0.bias"]
    assert torch.count_nonzero(layer.bias) == 0
    assert 0.0195 < layer.weight.std().item() < 0.0205  # normal(0, 0.02) on 65536 values
    x = hidden(dim=256)
    torch.testing.assert_close(head(hidden_states=x), x @ layer.weight.T)
    plain = TokenClassifier(hidden_size=256, num_classes=256, use_transformer_init=False)
    assert plain.mlp.layer0.weight.std().item() < 0.04 and torch.count_nonzero(plain.mlp.layer0.bias) > 0


def test_dropout_acts_only_in_training():
    head = TokenClassifier(hidden_size=32, num_classes=2, dropout=0.5, log_softmax=False)
    x = hidden()
    head.eval()
    torch.testing.assert_close(head(hidden_states=x), x @ head.mlp.layer0.weight.T)
    head.train()
    torch.manual_seed(1)
    assert not torch.allclose(head(hidden_states=x), x @ head.mlp.layer0.weight.T)


def test_sequence_heads_read_the_first_token():
    torch.manual_seed(0)
    clf = SequenceClassifier(hidden_size=32, num_classes=4, log_softmax=False)
    reg = SequenceRegression(hidden_size=32)
    x = hidden()
    y = x.clone()
    y[:, 1:] = 7.0  # everything but [CLS] changed
    w, b = clf.mlp.layer0.weight, clf.mlp.layer0.bias
    torch.testing.assert_close(clf(hidden_states=x), x[:, 0] @ w.T + b)
    torch.testing.assert_close(clf(hidden_states=y), clf(hidden_states=x))
    preds = reg(hidden_states=x)
    assert preds.shape == (2,)
    torch.testing.assert_close(preds, (x[:, 0] @ reg.mlp.layer0.weight.T + reg.mlp.layer0.bias).view(-1))


def test_head_bad_input_and_options():
    with pytest.raises(ValueError, match="Unknown activation 'swish'; known activations: relu, gelu"):
        TokenClassifier(hidden_size=32, num_classes=2, activation="swish")
    with pytest.raises(ValueError, match="num_layers must be a positive int, got 0"):
        TokenClassifier(hidden_size=32, num_classes=2, num_layers=0)
    with pytest.raises(ValueError, match=r"expects shape \(B, T, 32\) but got \(2, 5, 16\)"):
        TokenClassifier(hidden_size=32, num_classes=2)(hidden_states=hidden(dim=16))


def test_ports_wire_head_into_losses():
    def accepts(consumer_port: NeuralType, producer_port: NeuralType) -> bool:
        return consumer_port.compare(producer_port).accepts

    qa_head = TokenClassifier(hidden_size=32, num_classes=2, log_softmax=False)
    assert accepts(SpanningLoss().input_ports["logits"], qa_head.output_ports["logits"])
    assert accepts(CrossEntropyLoss(logits_ndim=3).input_ports["logits"], qa_head.output_ports["logits"])
    assert accepts(CrossEntropyLoss().input_ports["logits"], SequenceClassifier(32, 3).output_ports["logits"])
    assert not accepts(CrossEntropyLoss().input_ports["logits"], qa_head.output_ports["logits"])
    assert accepts(MSELoss().input_ports["preds"], SequenceRegression(32).output_ports["preds"])
    assert CrossEntropyLoss(logits_ndim=3).input_ports["loss_mask"].optional
    for loss in (SpanningLoss(), CrossEntropyLoss(), MSELoss()):
        assert loss.output_ports["loss"].axes is None


def spanning_batch():
    # sample 0: start scores [0, 0, 0], end scores [0, ln2, 0]; sample 1: start [ln3, 0, 0], end [0, 0, 0]
    logits = torch.tensor([[[0.0, 0.0], [0.0, LN2], [0.0, 0.0]], [[LN3, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    return logits.requires_grad_(True)


def test_spanning_loss_by_hand():
    logits = spanning_batch()
    start = torch.tensor([2, 0])
    end = torch.tensor([1, 5])  # sample 1's end is past the window: ignored
    loss, start_logits, end_logits = SpanningLoss()(logits=logits, start_positions=start, end_positions=end)
    # start: (-ln(1/3) - ln(3/5)) / 2 = (1.0986123 + 0.5108256) / 2 = 0.8047190
    # end:   -ln(2/4) = 0.6931472 (one counted example); loss = (0.8047190 + 0.6931472) / 2
    assert loss.item() == pytest.approx(0.7489331, abs=1e-6)
    torch.testing.assert_close(start_logits, logits[..., 0])
    torch.testing.assert_close(end_logits, logits[..., 1])
    assert end.tolist() == [1, 5]  # inputs are not clamped in place


def test_spanning_loss_matches_hf_formula_with_gradients():
    logits = torch.randn(4, 7, 2, generator=torch.Generator().manual_seed(3), requires_grad=True)
    start = torch.tensor([0, 3, 9, -2])
    end = torch.tensor([6, 4, 9, 1])
    loss, _, _ = SpanningLoss()(logits=logits, start_positions=start, end_positions=end)
    (grad,) = torch.autograd.grad(loss, logits)
    # transformers' BertForQuestionAnswering: clamp to [0, T], ignore_index = T, average start and end.
    ref_logits = logits.detach().clone().requires_grad_(True)
    s, e = ref_logits.split(1, dim=-1)
    fct = torch.nn.CrossEntropyLoss(ignore_index=7)
    ref = (fct(s.squeeze(-1), start.clamp(0, 7)) + fct(e.squeeze(-1), end.clamp(0, 7))) / 2
    ref.backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(grad, ref_logits.grad)


def test_spanning_loss_all_ignored_is_zero_not_nan():
    logits = spanning_batch()
    loss, _, _ = SpanningLoss()(logits=logits, start_positions=torch.tensor([3, 8]), end_positions=torch.tensor([4, 3]))
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(logits.grad) == 0


def test_spanning_loss_half_logits_and_bad_shape():
    logits = torch.randn(2, 6, 2, generator=torch.Generator().manual_seed(0))
    start, end = torch.tensor([1, 2]), torch.tensor([3, 5])
    full, _, _ = SpanningLoss()(logits=logits, start_positions=start, end_positions=end)
    half, start_logits, _ = SpanningLoss()(logits=logits.bfloat16(), start_positions=start, end_positions=end)
    assert half.dtype == torch.float32 and start_logits.dtype == torch.bfloat16
    assert half.item() == pytest.approx(full.item(), abs=2e-2)
    with pytest.raises(ValueError, match=r"must be \(B, T, 2\).*got \(2, 6, 3\)"):
        SpanningLoss()(logits=torch.zeros(2, 6, 3), start_positions=start, end_positions=end)
    with pytest.raises(ValueError, match=r"start_positions must have shape \(2,\), got \(3,\)"):
        SpanningLoss()(logits=logits, start_positions=torch.tensor([1, 2, 3]), end_positions=end)


def test_cross_entropy_by_hand_and_weighted():
    logits = torch.tensor([[0.0, 0.0], [LN3, 0.0]])
    labels = torch.tensor([1, 0])
    # -ln(1/2) = 0.6931472, -ln(3/4) = 0.2876821
    assert CrossEntropyLoss()(logits=logits, labels=labels).item() == pytest.approx(0.4904146, abs=1e-6)
    weighted = CrossEntropyLoss(weight=[1.0, 3.0])(logits=logits, labels=labels)
    # (3 * 0.6931472 + 1 * 0.2876821) / (3 + 1)
    assert weighted.item() == pytest.approx(0.5917809, abs=1e-6)
    torch.testing.assert_close(weighted, F.cross_entropy(logits, labels, weight=torch.tensor([1.0, 3.0])))


def test_token_cross_entropy_with_mask():
    logits = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(5), requires_grad=True)
    labels = torch.tensor([[0, 2, 1, 1], [2, -100, 0, 1]])
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]])
    loss = CrossEntropyLoss(logits_ndim=3)(logits=logits, labels=labels, loss_mask=mask)
    keep = torch.tensor([[True, True, False, False], [True, False, True, False]])  # -100 is ignored too
    ref = F.cross_entropy(logits[keep], labels[keep])
    torch.testing.assert_close(loss, ref)
    (grad,) = torch.autograd.grad(loss, logits)
    (ref_grad,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(grad, ref_grad)
    unmasked = CrossEntropyLoss(logits_ndim=3)(logits=logits, labels=labels)
    torch.testing.assert_close(unmasked, F.cross_entropy(logits.reshape(-1, 3), labels.reshape(-1)))
    nothing = CrossEntropyLoss(logits_ndim=3)(logits=logits, labels=labels, loss_mask=torch.zeros(2, 4))
    assert nothing.item() == 0.0


def test_cross_entropy_bad_input():
    with pytest.raises(ValueError, match="logits_ndim must be 2 .* or 3 .*, got 4"):
        CrossEntropyLoss(logits_ndim=4)
    with pytest.raises(ValueError, match=r"got logits \(2, 4, 3\) and labels \(2,\)"):
        CrossEntropyLoss(logits_ndim=3)(logits=torch.zeros(2, 4, 3), labels=torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="weight has 2 entries but logits have 3 classes"):
        CrossEntropyLoss(weight=[1.0, 2.0])(logits=torch.zeros(2, 3), labels=torch.zeros(2, dtype=torch.long))


def test_mse_loss():
    loss = MSELoss()(preds=torch.tensor([1.0, 2.0, 3.0]), labels=torch.tensor([1.0, 1.0, 1.0]))
    assert loss.item() == pytest.approx(5 / 3)  # (0 + 1 + 4) / 3
    with pytest.raises(ValueError, match=r"preds \(3,\) and labels \(3, 1\) differ"):
        MSELoss()(preds=torch.zeros(3), labels=torch.zeros(3, 1))


def test_heads_and_losses_round_trip_through_config(tmp_path):
    head = TokenClassifier(hidden_size=32, num_classes=2, num_layers=2, log_softmax=False, dropout=0.1)
    head.export_to_config(tmp_path / "head.yaml")
    again = TokenClassifier.import_from_config(tmp_path / "head.yaml")
    assert again.init_params == head.init_params and again.mlp.layers == 3
    loss = CrossEntropyLoss(logits_ndim=3, weight=[1.0, 2.0])
    loss.export_to_config(tmp_path / "loss.yaml")
    rebuilt = CrossEntropyLoss.import_from_config(tmp_path / "loss.yaml")
    assert rebuilt.weight.tolist() == [1.0, 2.0] and "weight" not in rebuilt.state_dict()


def test_spanning_loss_input_mask_makes_loss_independent_of_padding():
    import torch

    from nmod_nlp.modules.losses import SpanningLoss

    torch.manual_seed(0)
    real = torch.randn(2, 5, 2)
    starts, ends = torch.tensor([1, 3]), torch.tensor([2, 4])
    loss_fn = SpanningLoss()
    short, *_ = loss_fn(logits=real, start_positions=starts, end_positions=ends, input_mask=torch.ones(2, 5))
    padded_logits = torch.cat([real, torch.randn(2, 3, 2) * 5], dim=1)
    mask = torch.cat([torch.ones(2, 5), torch.zeros(2, 3)], dim=1)
    padded, start_logits, _ = loss_fn(logits=padded_logits, start_positions=starts, end_positions=ends, input_mask=mask)
    torch.testing.assert_close(padded, short)
    expected = (torch.nn.functional.cross_entropy(real[..., 0], starts) + torch.nn.functional.cross_entropy(real[..., 1], ends)) / 2
    torch.testing.assert_close(short, expected)
    assert bool((start_logits[:, 5:] <= -1e4 + 1).all())
    unmasked, *_ = loss_fn(logits=padded_logits, start_positions=starts, end_positions=ends)
    assert not torch.allclose(unmasked, short)  # without the mask, padding enters the softmax
