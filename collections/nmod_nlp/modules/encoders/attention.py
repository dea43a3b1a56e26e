"""Token layouts shared by the BERT and Megatron encoders: padded ``(B, T, ...)`` or packed ``(N, ...)``.

An encoder block never needs to know which layout it runs on: Linear, LayerNorm and GELU act on the
last dimension, whatever comes before it. Only attention differs, so each layout carries its own
``attend``. The packed layout holds the batch's real tokens only (row after row, like FlashAttention's
``cu_seqlens`` layout), so embeddings, projections, MLPs and LayerNorms spend no compute on padding.
SQuAD features are padded to 384 tokens while most question+context pairs are far shorter, which is
where the packed layout pays off.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

import torch
import torch.nn.functional as F

from ..dropout import drop_mask

#: ``attention_impl="auto"`` packs a batch when at least this fraction of its positions is padding.
#: Measured on a 2-core CPU, MiniLM (6 x 384), batch 8 x 256, forward + backward, unpadded vs padded:
#: 1.0x at 0-2 % padding, 1.1x at 6 %, 1.2x at 11 %, 1.3x at 20 %, 1.9x at 42 %. Packing costs two
#: gathers and a Python loop over sequences, so below a few percent it buys nothing.
UNPAD_MIN_PADDING_FRACTION = 0.05

ATTENTION_IMPLS = ("auto", "padded", "unpadded")


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None = None,
         dropout_p: float = 0.0) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` on ``(..., H, T, hd)``, ``key_mask`` True at the keys to attend
    (or, traced for export without dropout, its additive form: 0 there, -inf elsewhere).

    With dropout on a CPU, SDPA runs its unfused math path and draws the probabilities' mask with
    ``bernoulli_``: most of the 15 % of a fp32 SQuAD training step that dropout's masks took. This is
    the same math with the mask from ``nmod_nlp.modules.dropout.drop_mask``, and the ``1 / (1 - p)``
    scale applied to the output, ``hd / T`` the size of the probabilities. Without dropout (or off the
    CPU) SDPA itself runs, with its fused kernels.
    """
    if dropout_p == 0.0 or dropout_p == 1.0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout_p)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (..., H, T, T)
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask, float("-inf"))
    probs = scores.softmax(dim=-1).masked_fill(drop_mask(scores.shape, dropout_p), 0.0)
    return (probs @ v) * (1.0 / (1.0 - dropout_p))


class Padded:
    """The batch as given: ``(B, T, ...)`` tensors, padding keys masked out of attention."""

    def __init__(self, attention_mask: torch.Tensor):
        self.mask = attention_mask != 0
        if bool(self.mask.all()):
            self.key_mask = None  # no mask lets SDPA take its fastest kernel
        else:
            # A row with no real token would have every key masked, and softmax over nothing is NaN,
            # which poisons gradients even though the output is zeroed; let such rows see everything.
            keys = self.mask | ~self.mask.any(dim=1, keepdim=True)
            self.key_mask = keys[:, None, None, :]

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """Zeros at padding, so the output never depends on what the padding held."""
        if self.key_mask is None:
            return x
        return x.masked_fill(~self.mask.view(*self.mask.shape, *[1] * (x.dim() - 2)), 0.0)  # mask (B, T, 1, ...)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> torch.Tensor:
        """``q, k, v``: ``(B, T, H, hd)`` -> ``(B, T, H, hd)``."""
        key_mask = self.key_mask
        if key_mask is not None and torch.jit.is_tracing():
            # Traced for export, a boolean mask becomes a NaN guard (IsNaN, Where) over every (B, H, T, T)
            # probability in the ONNX graph: a third of ONNX Runtime's time on SQuAD batches. An additive
            # one is a single Add; every row keeps a key, so no row is all -inf.
            key_mask = torch.zeros(key_mask.shape, dtype=q.dtype, device=q.device).masked_fill(~key_mask, float("-inf"))
        out = sdpa(  # SDPA wants (B, H, T, hd)
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), key_mask=key_mask, dropout_p=dropout_p
        )
        return out.transpose(1, 2)  # (B, T, H, hd)


class Packed:
    """Only the real tokens, ``(N, ...)``, sequences one after another as ``cu_seqlens`` delimits them.

    Any 0/1 mask works (right or left padding, holes): a sequence is the real tokens of one row.
    """

    def __init__(self, attention_mask: torch.Tensor):
        mask = attention_mask != 0
        self.batch_size, self.seq_length = mask.shape
        self.indices = mask.flatten().nonzero().squeeze(1)
        lengths = mask.sum(dim=1)
        self.cu_seqlens = F.pad(lengths.cumsum(0), (1, 0)).to(torch.int32)
        self.lengths = lengths.tolist()  # one host sync per batch, reused by every layer
        self.max_seqlen = max(self.lengths, default=0)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, ...)`` -> ``(N, ...)``."""
        return x.flatten(0, 1).index_select(0, self.indices)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, ...)`` -> ``(B, T, ...)`` with zeros at padding."""
        out = x.new_zeros(self.batch_size * self.seq_length, *x.shape[1:])
        return out.index_copy(0, self.indices, x).unflatten(0, (self.batch_size, self.seq_length))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> torch.Tensor:
        """``q, k, v``: ``(N, H, hd)`` -> ``(N, H, hd)``, each sequence attending only to itself."""
        if q.is_cuda and Packed.use_nested_on_cuda:
            try:
                return self._attend_nested(q, k, v, dropout_p)
            except RuntimeError as err:  # no kernel for this dtype / head size: never try again
                Packed.use_nested_on_cuda = False
                warnings.warn(f"nested-tensor SDPA failed ({err}); using one SDPA call per sequence")
        # On CPU nested tensors fall back to a slow math path (about 10x slower in our measurements);
        # one SDPA call per sequence is the fastest exact varlen attention there.
        outs = []
        for seq_q, seq_k, seq_v in zip(*(t.split(self.lengths) for t in (q, k, v))):
            if seq_q.shape[0]:
                seq = sdpa(  # (H, L, hd) for a sequence of L tokens
                    seq_q.transpose(0, 1), seq_k.transpose(0, 1), seq_v.transpose(0, 1), dropout_p=dropout_p
                )
                outs.append(seq.transpose(0, 1))  # (L, H, hd)
        return torch.cat(outs) if outs else q.new_zeros(q.shape)

    #: Jagged nested tensors reach the fused varlen kernels (flash / memory-efficient) on CUDA.
    use_nested_on_cuda = True

    def _attend_nested(self, q, k, v, dropout_p: float) -> torch.Tensor:
        offsets = self.cu_seqlens.long()
        # Nested SDPA needs each of q, k, v contiguous in (N, H, hd); the fused-QKV split gives views.
        q, k, v = (torch.nested.nested_tensor_from_jagged(t.contiguous(), offsets).transpose(1, 2) for t in (q, k, v))
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p).transpose(1, 2).values()


def choose_layout(attention_mask: torch.Tensor, attention_impl: str = "auto") -> Padded | Packed:
    """The layout a forward pass runs on: forced by ``attention_impl``, else by how much is padding."""
    if attention_impl not in ATTENTION_IMPLS:
        raise ValueError(f"attention_impl must be one of {ATTENTION_IMPLS}, got {attention_impl!r}")
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (B, T) with 1 at real tokens, got shape {tuple(attention_mask.shape)}")
    if attention_impl == "auto":
        padding_fraction = 1.0 - float((attention_mask != 0).float().mean()) if attention_mask.numel() else 0.0
        attention_impl = "unpadded" if padding_fraction >= UNPAD_MIN_PADDING_FRACTION else "padded"
    return Packed(attention_mask) if attention_impl == "unpadded" else Padded(attention_mask)


@contextlib.contextmanager
def padded_attention(encoder) -> Iterator[None]:
    """An encoder's ``tracing()`` hook: the packed layout depends on the mask's values, which a trace
    would freeze, so a trace records the padded path (``attention_impl="padded"``), put back after."""
    impl, encoder.attention_impl = encoder.attention_impl, "padded"
    try:
        yield
    finally:
        encoder.attention_impl = impl


def prepare_inputs(input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, attention_mask: torch.Tensor | None,
                   attention_impl: str, max_positions: int):
    """The prologue both encoders share: default masks, the layout, and ids/positions/types in it."""
    batch_size, seq_length = input_ids.shape
    if seq_length > max_positions:
        raise ValueError(f"sequence length {seq_length} exceeds max_position_embeddings {max_positions}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    layout = choose_layout(attention_mask, attention_impl)
    position_ids = torch.arange(seq_length, device=input_ids.device).expand(batch_size, seq_length)
    ids, positions, types = (layout.pack(t) for t in (input_ids, position_ids, token_type_ids))
    return layout, ids, positions, types
