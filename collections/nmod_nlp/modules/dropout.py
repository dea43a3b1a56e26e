"""Dropout whose mask is cheap to draw on a CPU.

On a CPU, ``F.dropout`` draws its mask with ``bernoulli_``, one float draw per element, and that
alone took 15 % of a fp32 and 25 % of a bf16 SQuAD training step of MiniLM (``benchmarks/roofline.py
--profile``): more than GELU, LayerNorm, softmax and the optimizer together, and no cheaper in bf16.
Here a mask is drawn as random bits instead, 16 bits an element, four elements from every 64-bit draw
of the default generator, and an element is dropped when its 16 bits fall below ``p * 65536``. The
mask is the same Bernoulli distribution up to that rounding of ``p`` (at most 2**-17 off), from the
same seeded generator (so runs repeat and resume exactly), at about a quarter of the cost. On other
devices torch's own dropout is already fused with its random numbers, and is kept.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_INT16_LEVELS = 1 << 16


def drop_mask(shape: torch.Size | tuple[int, ...], p: float) -> torch.Tensor:
    """A CPU bool tensor of ``shape``: True (drop) with probability ``round(p * 65536) / 65536``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    numel = math.prod(shape)
    words = torch.randint(torch.iinfo(torch.int64).min, torch.iinfo(torch.int64).max, ((numel + 3) // 4,),
                          dtype=torch.int64)
    bits = words.view(torch.int16)[:numel].view(shape)  # uniform on [-32768, 32767]
    return bits < round(p * _INT16_LEVELS) - (_INT16_LEVELS // 2)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)``, with the mask drawn by :func:`drop_mask` on a CPU."""
    if not training or p == 0.0 or p == 1.0 or x.device.type != "cpu":  # F.dropout rejects p outside [0, 1]
        return F.dropout(x, p, training)
    return x.masked_fill(drop_mask(x.shape, p), 0.0).mul_(1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same ``p``, same repr and state) through :func:`dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            return super().forward(x)
        return dropout(x, self.p, self.training)
