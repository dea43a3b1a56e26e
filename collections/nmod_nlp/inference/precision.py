"""How a predictor's modules run: fp32 as trained, in bf16 autocast, or with int8 linear layers for CPU serving.

``bf16`` runs the forward under ``torch.autocast(dtype=torch.bfloat16)``, what training's ``O1`` runs:
the weights stay fp32, the matrix products run in bf16, LayerNorm and softmax in fp32, and the outputs
come back as fp32. It needs a CPU with bf16 units (``avx512_bf16`` or AMX; elsewhere torch emulates it,
slower than fp32) or a GPU. On an AMX Xeon it served SQuAD batches faster than int8 and kept fp32's
metric (docs/performance.md, docs/accuracy.md).

``int8`` is dynamic quantization (torch's ``quantize_dynamic``): each ``nn.Linear``'s weights are
stored as int8 with one scale per output channel, and each batch's activations are quantized on the
fly, so no calibration data is needed and the model folder stays fp32. Per channel, because a
fine-tuned BERT's rows differ in range: one scale per tensor cost 1.2-3.1 CoNLL F1 points where one
per channel costs 0.3-0.6, at the same speed (docs/accuracy.md). The Linear layers do nearly all of a
BERT's arithmetic; embeddings, LayerNorm, softmax and the attention products stay fp32. It runs on
the CPU's int8 units (VNNI/AMX through fbgemm/oneDNN) and only on the CPU.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch

from nmod.core.errors import ConfigError

__all__ = ["PRECISIONS", "prepare_for_inference"]

PRECISIONS = ("fp32", "bf16", "int8")


def prepare_for_inference(modules: list[torch.nn.Module], device: Optional[str], precision: str) -> torch.device:
    """Move ``modules`` to ``device`` (default: where they are), put them in eval mode and, for
    ``int8``, quantize their Linear layers in place (``bf16`` changes nothing here: the caller runs the
    forward under autocast). Returns the device they run on."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    for module in modules:
        if device is not None:
            module.to(device)
        module.eval()
    place = next(modules[0].parameters()).device
    if precision == "int8":
        if place.type != "cpu":
            raise ConfigError(f"precision 'int8' runs on the CPU only (dynamic quantization); the model is on {place}")
        with warnings.catch_warnings():  # torch marks its quantized tensor types deprecated; the kernels are current
            warnings.simplefilter("ignore")
            for module in modules:
                torch.ao.quantization.quantize_dynamic(
                    module, {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
                    dtype=torch.qint8, inplace=True)
    return place
