"""Optimizers by name: weight-decay grouping, LAMB/NovoGrad against hand-worked updates, fused fallbacks."""
import logging
import math
import sys
import types

import pytest
import torch

from nmod.optim import Lamb, Novograd, get_optimizer, weight_decay_groups
from nmod.optim import optimizers as optimizers_module


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = torch.nn.Embedding(5, 4)
        self.dense = torch.nn.Linear(4, 4)
        self.LayerNorm = torch.nn.LayerNorm(4)
        self.final_layernorm = torch.nn.LayerNorm(4)
        self.frozen = torch.nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def one_param(values, grad):
    p = torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))
    p.grad = torch.tensor(grad, dtype=torch.float64)
    return p


def test_weight_decay_skips_biases_and_layernorm_and_frozen():
    model = Tiny()
    groups = weight_decay_groups(model.named_parameters(), 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]
    assert sorted(names[id(p)] for p in groups[0]["params"]) == ["dense.weight", "embeddings.weight"]
    assert sorted(names[id(p)] for p in groups[1]["params"]) == [
        "LayerNorm.bias",
        "LayerNorm.weight",
        "dense.bias",
        "final_layernorm.bias",
        "final_layernorm.weight",
    ]


def test_adam_w_decays_only_the_decay_group():
    torch.manual_seed(0)
    model = Tiny()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = get_optimizer("adam_w", model, lr=0.1, weight_decay=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    # Zero gradients leave only AdamW's decoupled decay: p *= 1 - lr * wd = 0.95.
    for name, p in model.named_parameters():
        factor = 0.95 if name in ("dense.weight", "embeddings.weight") else 1.0
        torch.testing.assert_close(p.detach(), before[name] * factor, rtol=1e-6, atol=0)


def test_tied_weights_are_optimized_once():
    shared = torch.nn.Parameter(torch.ones(3, 3))
    groups = weight_decay_groups([("encoder.word_embeddings.weight", shared), ("head.decoder.weight", shared)], 0.1)
    assert len(groups) == 1 and len(groups[0]["params"]) == 1


def test_lamb_one_step_by_hand():
    # w = [3, 4] (|w| = 5), g = [0.6, -0.8]; step 1 with bias correction gives m_hat = g, v_hat = g^2,
    # so u = g / (|g| + 1e-6) + 0.01 w = [1.03, -0.96] (to 2e-6), |u| = 1.4080107,
    # trust ratio 5 / 1.4080107 = 3.5511093, w -= 0.1 * 3.5511093 * u.
    p = one_param([3.0, 4.0], [0.6, -0.8])
    Lamb([p], lr=0.1, weight_decay=0.01).step()
    torch.testing.assert_close(p.detach(), torch.tensor([2.63423633, 4.34090605], dtype=torch.float64), rtol=1e-7, atol=0)


def test_lamb_without_decay_skips_trust_ratio_unless_nvlamb():
    p = one_param([3.0, 4.0], [0.6, -0.8])
    Lamb([p], lr=0.1).step()  # u = [1, -1] (to 2e-6), ratio 1
    torch.testing.assert_close(p.detach(), torch.tensor([2.9, 4.1], dtype=torch.float64), rtol=1e-6, atol=0)
    q = one_param([3.0, 4.0], [0.6, -0.8])
    Lamb([q], lr=0.1, trust_zero_decay=True).step()  # ratio 5 / sqrt(2)
    step = 0.1 * 5 / math.sqrt(2)
    torch.testing.assert_close(q.detach(), torch.tensor([3 - step, 4 + step], dtype=torch.float64), rtol=1e-6, atol=0)


def lamb_reference(w, grads, lr, b1, b2, eps, wd, max_grad_norm=None):
    """Plain-Python LAMB (apex's arithmetic), for multi-step checks."""
    w, m, v = list(w), [0.0] * len(w), [0.0] * len(w)
    for t, g in enumerate(grads, start=1):
        if max_grad_norm is not None:
            norm = math.sqrt(sum(x * x for x in g))
            g = [x * max_grad_norm / norm for x in g] if norm > max_grad_norm else g
        m = [b1 * a + (1 - b1) * x for a, x in zip(m, g)]
        v = [b2 * a + (1 - b2) * x * x for a, x in zip(v, g)]
        u = [(a / (1 - b1**t)) / (math.sqrt(b / (1 - b2**t)) + eps) + wd * c for a, b, c in zip(m, v, w)]
        ratio = math.sqrt(sum(x * x for x in w)) / math.sqrt(sum(x * x for x in u))
        w = [c - lr * ratio * x for c, x in zip(w, u)]
    return w


@pytest.mark.parametrize("max_grad_norm", [None, 0.5])
def test_lamb_three_steps_match_reference(max_grad_norm):
    grads = [[0.6, -0.8], [0.1, 0.3], [-0.2, 0.05]]
    p = torch.nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
    opt = Lamb([p], lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1, max_grad_norm=max_grad_norm)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    expected = lamb_reference([3.0, 4.0], grads, 0.05, 0.8, 0.9, 1e-6, 0.1, max_grad_norm)
    torch.testing.assert_close(p.detach(), torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0)


def test_lamb_handles_mixed_dtypes_in_one_group():
    a = one_param([3.0, 4.0], [0.6, -0.8])
    b = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    b.grad = torch.tensor([0.6, -0.8])
    Lamb([a, b], lr=0.1, weight_decay=0.01).step()
    torch.testing.assert_close(b.detach(), a.detach().float(), rtol=1e-6, atol=0)


def test_novograd_two_steps_by_hand():
    # NeMo's NovoGrad, betas (0.95, 0.98), wd 0.01, lr 0.1, w = [3, 4].
    # step 1, g = [0.6, -0.8]: v = |g|^2 = 1, d = g / 1 + 0.01 w = [0.63, -0.76], m = d,
    #   w = [2.937, 4.076]
    # step 2, g = [0, 0.5]: v = 0.98 + 0.02 * 0.25 = 0.985, sqrt(v) = 0.99247166,
    #   d = [0, 0.50379272] + 0.01 w = [0.02937, 0.54455272], m = 0.95 m + d = [0.62787, -0.17744728],
    #   w = [2.874213, 4.09374473]
    p = one_param([3.0, 4.0], [0.6, -0.8])
    opt = Novograd([p], lr=0.1, weight_decay=0.01)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([2.937, 4.076], dtype=torch.float64), rtol=1e-8, atol=0)
    p.grad = torch.tensor([0.0, 0.5], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([2.874213, 4.09374473], dtype=torch.float64), rtol=1e-8, atol=0)
    assert p.grad.tolist() == [0.0, 0.5]  # NeMo's version overwrote the gradient; this one does not


def test_novograd_grad_averaging():
    p = one_param([3.0, 4.0], [0.6, -0.8])
    Novograd([p], lr=0.1, weight_decay=0.01, grad_averaging=True).step()  # m = 0.05 * [0.63, -0.76]
    torch.testing.assert_close(p.detach(), torch.tensor([2.99685, 4.0038], dtype=torch.float64), rtol=1e-8, atol=0)


def run_steps(name, seed=0, steps=3, **kwargs):
    torch.manual_seed(seed)
    model = Tiny()
    opt = get_optimizer(name, model, lr=0.01, weight_decay=0.01, **kwargs)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in model.parameters():
            if p.requires_grad:
                p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
    return opt, model


def test_fused_adam_on_cpu_equals_adam_w(caplog, monkeypatch):
    monkeypatch.setattr(optimizers_module, "apex_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="nmod"):
        fused_opt, fused = run_steps("fused_adam")
    _, plain = run_steps("adam_w")
    assert isinstance(fused_opt, torch.optim.AdamW) and fused_opt.defaults["fused"] is True
    for (name, a), (_, b) in zip(fused.named_parameters(), plain.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("nmod")]
    assert lines == ["fused_adam: NVIDIA apex is not importable; using torch.optim.AdamW(fused=True)"]


def test_fused_lamb_falls_back_to_nmod_lamb(caplog, monkeypatch):
    monkeypatch.setattr(optimizers_module, "apex_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="nmod"):
        fused_opt, fused = run_steps("fused_lamb")
    _, plain = run_steps("lamb")
    assert type(fused_opt) is Lamb
    for a, b in zip(fused.parameters(), plain.parameters()):
        assert torch.equal(a, b)
    assert len([r for r in caplog.records if r.name.startswith("nmod")]) == 1


def test_apex_on_cpu_parameters_is_not_used(caplog, monkeypatch):
    fake = types.ModuleType("apex.optimizers")
    fake.FusedAdam = fake.FusedLAMB = lambda *a, **k: pytest.fail("apex must not be used for CPU parameters")
    monkeypatch.setitem(sys.modules, "apex", types.ModuleType("apex"))
    monkeypatch.setitem(sys.modules, "apex.optimizers", fake)
    optimizers_module.apex_available.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="nmod"):
            opt, _ = run_steps("fused_adam", steps=1)
    finally:
        optimizers_module.apex_available.cache_clear()
    assert isinstance(opt, torch.optim.AdamW)
    assert "apex imports but its fused optimizers need CUDA parameters" in caplog.records[-1].getMessage()


def test_apex_path_gets_adamw_mode_and_no_inner_clipping(monkeypatch):
    calls = {}

    class FakeFused(torch.optim.SGD):
        def __init__(self, groups, **kwargs):
            calls[type(self).__name__] = kwargs
            super().__init__(groups, lr=kwargs["lr"])

    fake = types.ModuleType("apex.optimizers")
    fake.FusedAdam = type("FusedAdam", (FakeFused,), {})
    fake.FusedLAMB = type("FusedLAMB", (FakeFused,), {})
    monkeypatch.setitem(sys.modules, "apex.optimizers", fake)
    monkeypatch.setattr(optimizers_module, "apex_available", lambda: True)
    monkeypatch.setattr(optimizers_module, "_all_cuda", lambda groups: True)
    get_optimizer("fused_adam", Tiny(), lr=0.1, weight_decay=0.01)
    get_optimizer("fused_lamb", Tiny(), lr=0.1)
    assert calls["FusedAdam"] == dict(adam_w_mode=True, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    assert calls["FusedLAMB"]["max_grad_norm"] == math.inf and calls["FusedLAMB"]["eps"] == 1e-6


def test_names_defaults_and_errors():
    model = Tiny()
    assert type(get_optimizer("ADAM_W", model, lr=1e-3)) is torch.optim.AdamW
    sgd = get_optimizer("sgd", model, lr=1e-3)
    assert sgd.defaults["momentum"] == 0.9  # NeMo's default
    assert get_optimizer("novograd", model, lr=1e-3).defaults["betas"] == (0.95, 0.98)
    assert type(get_optimizer(torch.optim.RMSprop, model, lr=1e-3)) is torch.optim.RMSprop
    with pytest.raises(ValueError, match="Unknown optimizer 'adamax'; known optimizers: sgd, adam, adam_w, novograd"):
        get_optimizer("adamax", model, lr=1e-3)
    with pytest.raises(ValueError, match="lr must be a number >= 0, got None"):
        get_optimizer("adam", model, lr=None)
    with pytest.raises(ValueError, match="betas must be two numbers"):
        get_optimizer("adam", model, lr=1e-3, betas=(0.9,))
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        get_optimizer("adam", frozen, lr=1e-3)
    with pytest.raises(TypeError, match="item 0 is str"):
        get_optimizer("adam", ["dense.weight"], lr=1e-3)


@pytest.mark.parametrize("name", ["lamb", "novograd"])
def test_state_dict_resume_is_exact_and_weights_only(name, tmp_path):
    grads = [torch.randn(3, 4, generator=torch.Generator().manual_seed(i)) for i in range(4)]

    def fresh():
        p = torch.nn.Parameter(torch.arange(12.0).reshape(3, 4) / 10)
        return p, get_optimizer(name, [("dense.weight", p)], lr=0.01, weight_decay=0.1)

    straight, opt = fresh()
    for g in grads:
        straight.grad = g.clone()
        opt.step()

    resumed, opt = fresh()
    for g in grads[:2]:
        resumed.grad = g.clone()
        opt.step()
    torch.save({"param": resumed.detach(), "optim": opt.state_dict()}, tmp_path / "ckpt.pt")
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed, opt = fresh()
    with torch.no_grad():
        resumed.copy_(saved["param"])
    opt.load_state_dict(saved["optim"])
    for g in grads[2:]:
        resumed.grad = g.clone()
        opt.step()
    assert torch.equal(resumed, straight)
