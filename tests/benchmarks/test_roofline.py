"""benchmarks/roofline.py's FLOP count, against a count by hand (its timings are the benchmark's, not a test's)."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import roofline  # noqa: E402

CFG = {"hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 2}


def test_forward_flops_count_real_tokens_only():
    # one row of 10 tokens, per layer: projections 8*10*4*4 = 1280, MLP 4*10*4*8 = 1280, attention
    # 4*10*10*4 = 1600; two layers 8320; a token head of 3 classes 2*10*4*3 = 240
    assert roofline.forward_flops(np.array([10]), CFG, "token", 3) == 8560
    # a sequence head reads one vector a row: pooler 2*4*4 + classifier 2*4*2
    assert roofline.forward_flops(np.array([10]), CFG, "sequence", 2) == 8320 + 32 + 16
    # rows add up; the attention term is quadratic in each row's own length, not the batch's longest
    both = roofline.forward_flops(np.array([10, 5]), CFG, "token", 3)
    five = 2 * (8 * 5 * 16 + 4 * 5 * 32 + 4 * 25 * 4) + 2 * 5 * 4 * 3
    assert both == 8560 + five


def test_profile_families_tell_dtype_casts_from_other_copies():
    import torch
    from torch.profiler import ProfilerActivity, profile

    x = torch.randn(8, 8)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        x.to(torch.bfloat16)  # a cast: _to_copy -> copy_
        torch.empty(8, 8).copy_(x)  # a plain copy
        x @ x
    families = {}
    for event in prof.events():
        families.setdefault(event.name, set()).add(roofline.op_family(event))
    assert families["aten::copy_"] == {"dtype casts (.to)", "copies, gathers, packing"}
    assert families["aten::mm"] == {"matrix multiply"}


def test_torch_dropout_side_draws_bernoulli_masks_and_nmod_draws_random_words():
    import torch
    from torch.profiler import ProfilerActivity, profile

    from nmod_nlp.modules.dropout import Dropout
    from nmod_nlp.modules.encoders.attention import Padded

    layer, x = Dropout(0.5).train(), torch.randn(16, 16)
    q = torch.randn(1, 16, 2, 8)
    layout = Padded(torch.ones(1, 16))

    def ops():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            layer(x), layout.attend(q, q, q, dropout_p=0.5)
        return {event.name: roofline.op_family(event) for event in prof.events()}

    nmod = ops()
    with roofline.torch_dropout():
        torch_ops = ops()
    assert "aten::bernoulli_" in torch_ops and "aten::bernoulli_" not in nmod and "aten::bernoulli_" not in ops()
    assert nmod["aten::random_"] == torch_ops["aten::bernoulli_"] == "dropout masks (bernoulli_, random_)"
