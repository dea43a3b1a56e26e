"""nmod's fused optimizers on CUDA parameters: torch's fused AdamW equals the foreach AdamW to
tolerance; where NVIDIA apex imports, its FusedAdam / FusedLAMB are the ones used, and agree with torch's
AdamW / nmod's Lamb. Tolerances: after 5 steps, weights within rtol 1e-5 / atol 1e-6 (fp32; the fused
kernels reorder the same arithmetic); LAMB rtol 1e-4 / atol 1e-5."""
import pytest
import torch

from nmod.optim import Lamb, apex_available, get_optimizer

pytestmark = pytest.mark.cuda


def model(device):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.LayerNorm(128), torch.nn.GELU(),
                               torch.nn.Linear(128, 8)).to(device)


def train(net, optimizer, steps=5):
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(32, 64, generator=g).to(next(net.parameters()).device)
        optimizer.zero_grad(set_to_none=True)
        net(x).pow(2).mean().backward()
        optimizer.step()
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def assert_same(a: dict, b: dict):
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


HYPER = dict(lr=1e-2, weight_decay=0.01)


def test_fused_adam_on_cuda_equals_foreach_adamw(device):
    net = model(device)
    opt = get_optimizer("fused_adam", net.named_parameters(), **HYPER)
    if apex_available() and device.type == "cuda":
        from apex.optimizers import FusedAdam

        assert isinstance(opt, FusedAdam)
    else:
        assert isinstance(opt, torch.optim.AdamW) and opt.defaults["fused"] is True
    fused = train(net, opt)
    net = model(device)
    foreach = train(net, get_optimizer("adam_w", net.named_parameters(), foreach=True, **HYPER))
    assert_same(fused, foreach)
    assert not torch.equal(fused["0.weight"], model(device).state_dict()["0.weight"])  # it trained


def test_torch_fused_adamw_equals_foreach_on_cuda(device):
    """torch's own fused CUDA kernel (what `fused_adam` is without apex), asked for explicitly."""
    net = model(device)
    fused = train(net, get_optimizer("adam_w", net.named_parameters(), fused=True, **HYPER))
    net = model(device)
    foreach = train(net, get_optimizer("adam_w", net.named_parameters(), foreach=True, **HYPER))
    assert_same(fused, foreach)


def test_apex_fused_lamb_equals_nmod_lamb(device):
    if not (apex_available() and device.type == "cuda"):
        pytest.skip("NVIDIA apex is not importable here: the torch paths above are the ones used")
    from apex.optimizers import FusedLAMB

    net = model(device)
    opt = get_optimizer("fused_lamb", net.named_parameters(), **HYPER)
    assert isinstance(opt, FusedLAMB)
    fused = train(net, opt)
    net = model(device)
    reference = train(net, get_optimizer("lamb", net.named_parameters(), **HYPER))  # nmod's Lamb, same groups
    assert isinstance(get_optimizer("lamb", model(device).named_parameters(), **HYPER), Lamb)
    for name in reference:  # two implementations of LAMB's trust ratio: a looser tolerance than Adam's
        torch.testing.assert_close(fused[name], reference[name], rtol=1e-4, atol=1e-5, msg=name)
