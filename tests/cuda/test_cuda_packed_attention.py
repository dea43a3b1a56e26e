"""Packed (nested-tensor SDPA) attention equals padded attention on the GPU, forward and backward.

BERT and Megatron encoders, head dims 64 and 128 (4 heads: hidden 256 and 512), 2 layers, dropout 0,
batches with right padding, left padding and a full row. Errors are relative norms, ||a - b|| / ||b||;
for gradients, each parameter's error is taken over the norm of the whole reference gradient (a
parameter whose true gradient is ~0, BERT's key bias, would otherwise divide noise by noise).

* fp32: packed vs padded, outputs <= 1e-5, gradients <= 1e-4 (TF32 off; the two paths run different
  SDPA kernels, so they agree to rounding, not bit for bit).
* fp16 / bf16 under autocast (O1; fp32 weights): both paths are compared with the fp32 padded
  reference on the same weights. Packed's error must stay within 2x padded's plus a floor (fp16
  2e-3, bf16 1.6e-2: about 2 and 4 units of each type's rounding), and under a bound (outputs fp16
  5e-3, bf16 4e-2; gradients twice that).
And the packed path must have run nested-tensor SDPA: nmod falls back to one SDPA call per sequence
(and says so in a warning) when nested SDPA raises, which would leave the kernels untested.
"""
import warnings

import pytest
import torch

from nmod_nlp.modules.encoders import BERT, MegatronBERT, Packed

pytestmark = pytest.mark.cuda

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
FLOOR = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
BOUND = {torch.float16: 5e-3, torch.bfloat16: 4e-2}
T = 48
MASK = [[1] * 40 + [0] * 8, [1] * 9 + [0] * 39, [1] * T, [0] * 13 + [1] * 35]


def megatron(hidden: int):
    return MegatronBERT(vocab_size=100, hidden_size=hidden, num_layers=2, num_attention_heads=4, max_seq_length=64,
                        hidden_dropout=0.0, attention_dropout=0.0)


def bert(hidden: int):
    return BERT(vocab_size=100, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=2 * hidden, max_position_embeddings=64, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)


@pytest.fixture(autouse=True)
def nested_sdpa_on_and_exact_fp32():
    """Each test starts with nested SDPA allowed (a failure turns it off for the process) and TF32 off."""
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    Packed.use_nested_on_cuda = True
    yield
    torch.backends.cuda.matmul.allow_tf32 = tf32
    Packed.use_nested_on_cuda = True


def run(model, impl, inputs, weights, dtype):
    """Output and every parameter's gradient of one forward + backward on path `impl`."""
    model.attention_impl = impl
    model.zero_grad(set_to_none=True)
    model.train()  # dropout is 0: the training path, deterministically
    with torch.autocast("cuda" if inputs["input_ids"].is_cuda else "cpu", dtype=dtype, enabled=dtype != torch.float32):
        out = model(**inputs)
    (out.float() * weights).sum().backward()
    return out.detach().float(), {n: p.grad.detach().float().clone() for n, p in model.named_parameters()}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def grad_errors(grads: dict, ref: dict) -> dict:
    """Each parameter's error over the norm of the whole reference gradient."""
    total = torch.cat([g.flatten() for g in ref.values()]).norm().clamp_min(1e-30)
    return {n: float((grads[n] - ref[n]).norm() / total) for n in ref}


def batch(device, vocab=100):
    g = torch.Generator().manual_seed(1)
    mask = torch.tensor(MASK)
    inputs = {"input_ids": torch.randint(5, vocab, mask.shape, generator=g),
              "token_type_ids": (torch.arange(T) >= 20).long().expand(len(MASK), T).clone(),
              "attention_mask": mask}
    return {k: v.to(device) for k, v in inputs.items()}


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("build", [megatron, bert], ids=["megatron", "bert"])
def test_packed_equals_padded(build, head_dim, dtype_name, device):
    dtype = DTYPES[dtype_name]
    torch.manual_seed(0)
    model = build(4 * head_dim).to(device)
    inputs = batch(device)
    weights = torch.randn(len(MASK), T, 4 * head_dim, device=device)
    ref_out, ref_grads = run(model, "padded", inputs, weights, torch.float32)
    packed_out, packed_grads = run(model, "unpadded", inputs, weights, dtype)
    if device.type == "cuda":
        assert Packed.use_nested_on_cuda, "nested-tensor SDPA raised and nmod fell back to SDPA per sequence"
    assert torch.isfinite(packed_out).all()
    # padding positions are zero on both paths
    assert not packed_out[inputs["attention_mask"] == 0].any()
    if dtype == torch.float32:
        assert rel(packed_out, ref_out) <= 1e-5
        worst = max(grad_errors(packed_grads, ref_grads).items(), key=lambda kv: kv[1])
        assert worst[1] <= 1e-4, f"gradient of {worst[0]}: {worst[1]:.2e}"
        return
    padded_out, padded_grads = run(model, "padded", inputs, weights, dtype)
    out_packed, out_padded = rel(packed_out, ref_out), rel(padded_out, ref_out)
    assert out_packed <= min(BOUND[dtype], 2 * out_padded + FLOOR[dtype]), (out_packed, out_padded)
    packed_errors, padded_errors = grad_errors(packed_grads, ref_grads), grad_errors(padded_grads, ref_grads)
    for name, err in packed_errors.items():
        limit = min(2 * BOUND[dtype], 2 * padded_errors[name] + FLOOR[dtype])
        assert err <= limit, f"gradient of {name}: packed {err:.2e}, padded {padded_errors[name]:.2e}"


@pytest.mark.parametrize("dtype_name", ["fp16", "bf16"])
def test_a_row_without_real_tokens(dtype_name, device):
    """A sequence of length 0 (a row of padding only) in the packed batch: zeros out, no NaN anywhere.
    Whether nested SDPA took it or nmod fell back is reported as a warning, not a failure."""
    dtype = DTYPES[dtype_name]
    torch.manual_seed(0)
    model = megatron(256).to(device)
    inputs = batch(device)
    inputs["attention_mask"][1] = 0
    weights = torch.randn(len(MASK), T, 256, device=device)
    out, grads = run(model, "unpadded", inputs, weights, dtype)
    ref_out, _ = run(model, "padded", inputs, weights, dtype)
    if device.type == "cuda" and not Packed.use_nested_on_cuda:  # correct either way; slower from then on
        warnings.warn("nested-tensor SDPA raised on a zero-length sequence: nmod fell back to SDPA per sequence "
                      "for the rest of the process")
    assert not out[1].any() and torch.isfinite(out).all()
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert rel(out, ref_out) <= BOUND[dtype]
