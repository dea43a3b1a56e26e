"""Where a predictor's encoder and head run: eagerly in torch, or as one ONNX graph in ONNX Runtime.

Both take the encoder's three inputs and return the head's outputs in its port order, so the
predictors read the same tensors whichever runs them. ``torch`` is the modules themselves, fp32 as
trained, under bf16 autocast, or with int8 Linear layers (``inference.precision``). ``onnxruntime``
exports the encoder and head once, when the folder is loaded, as one graph with ``deployment_export``
(dynamic batch and length, the padded attention path), and serves it from an ONNX Runtime session on
the CPU; its int8 quantizes the graph's matrix products: int8 weights with one scale per output
channel, activations quantized on the fly with one scale per token (``inference.onnx_int8``;
``quantize_int8(activations="tensor")`` gives ONNX Runtime's own dynamic quantization, one scale per
batch, which cost SQuAD 0.8 F1). Nothing is written beside the model folder: the ONNX file lives in a
temporary folder only while the session is made.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Callable, Optional

import torch

from nmod.core.errors import ConfigError

from ..ports import bert_input_ports, head_inputs
from .onnx_int8 import quantize_per_token
from .precision import PRECISIONS, prepare_for_inference

__all__ = ["RUNTIMES", "EagerModel", "OnnxRuntimeModel", "cpu_has_vnni", "inference_model", "quantize_int8"]

RUNTIMES = ("torch", "onnxruntime")


class EagerModel:
    """The encoder, then the head, called as modules on ``device``; with ``precision="bf16"`` under bf16
    autocast, the outputs handed back as fp32."""

    def __init__(self, encoder: torch.nn.Module, head: torch.nn.Module, device: Optional[str], precision: str):
        self.encoder, self.head = encoder, head
        self.device = prepare_for_inference([encoder, head], device, precision)
        self.autocast = precision == "bf16"

    def __call__(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor,
                 attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        to = lambda t: t.to(self.device)  # noqa: E731
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            encoded = self.encoder(input_ids=to(input_ids), token_type_ids=to(token_type_ids),
                                   attention_mask=to(attention_mask))
            out = self.head(**head_inputs(self.head, encoded))
        out = tuple(out) if isinstance(out, tuple) else (out,)
        return tuple(t.float() if t.is_floating_point() else t for t in out) if self.autocast else out


class OnnxRuntimeModel:
    """The encoder and head as one ONNX graph in an ONNX Runtime CPU session (``intra_op`` threads:
    torch's ``get_num_threads()``, so ``torch.set_num_threads`` and ``OMP_NUM_THREADS`` rule both).
    ``quantize(fp32 file, int8 file) -> int8 file`` makes the int8 graph (default ``quantize_int8``)."""

    def __init__(self, encoder: torch.nn.Module, head: torch.nn.Module, device: Optional[str], precision: str,
                 quantize: Callable[[Path, Path], Path] | None = None):
        if device is not None and torch.device(device).type != "cpu":
            raise ConfigError(f"runtime 'onnxruntime' runs on the CPU here; got device {device!r} "
                              f"(use the torch runtime on a GPU)")
        try:
            import onnxruntime
        except ImportError:
            raise ConfigError("runtime 'onnxruntime' needs the onnxruntime and onnx packages: "
                              "pip install 'nmod[onnxruntime]'") from None
        if precision == "bf16":
            raise ConfigError("precision 'bf16' runs on the torch runtime (bf16 autocast); ONNX Runtime serves "
                              "fp32 or int8 here")
        self.encoder, self.head = encoder, head
        self.device = prepare_for_inference([encoder, head], "cpu", "fp32")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3  # errors only: its graph-optimiser notes are not the user's business
        with tempfile.TemporaryDirectory(prefix="nmod-onnx-") as tmp:
            path = export_encoder_and_head(encoder, head, Path(tmp) / "model.onnx")
            if precision == "int8":
                path = (quantize or quantize_int8)(path, Path(tmp) / "model.int8.onnx")
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor,
                 attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        given = {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}
        feeds = {name: given[name].cpu().numpy() for name in self.input_names}
        return tuple(torch.from_numpy(out) for out in self.session.run(None, feeds))


def export_encoder_and_head(encoder: torch.nn.Module, head: torch.nn.Module, path: Path) -> Path:
    """``encoder -> head`` as one ONNX file: inputs the encoder's three ports, outputs the head's, in order."""
    from nmod.backends.pytorch.export import deployment_export
    from nmod.core import NeuralGraph, OperationMode

    with NeuralGraph(operation_mode=OperationMode.evaluation, name="inference") as graph:
        encoded = encoder(**{name: graph.inputs[name] for name in bert_input_ports()})
        out = head(**head_inputs(head, encoded))
        graph.outputs.bind(list(out) if isinstance(out, tuple) else [out])
    # Any ids below the vocabulary work: the trace records the ops, and the batch and time axes stay dynamic.
    example = {"input_ids": torch.full((2, 8), 1, dtype=torch.long),
               "token_type_ids": torch.zeros(2, 8, dtype=torch.long),
               "attention_mask": torch.ones(2, 8, dtype=torch.long)}
    return deployment_export(graph, path, "onnx", example)


def quantize_int8(path: Path, out: Path, activations: str = "token", per_channel: bool = True) -> Path:
    """The int8 graph of an fp32 ONNX file: int8 weights with one scale per output channel (one per
    tensor, ``per_channel=False``, cost 0.6-1.2 CoNLL F1 points more) and activations with one scale per
    token (``onnx_int8``), or, ``activations="tensor"``, one per batch (ONNX Runtime's
    ``quantize_dynamic``). Per token is the default: on five trained SQuAD models it changed F1 by
    -0.01 on average where one scale per batch lost 0.82, at ~0.9x its speed; on CoNLL both stay within
    0.2 (docs/accuracy.md). A BERT's few wide tokens ([CLS], [SEP], punctuation) set a batch's one scale
    and leave the ordinary tokens a handful of int8 levels."""
    full_range = cpu_has_vnni()
    if activations == "token":
        if not per_channel:
            raise ValueError("per-token activations come with per-channel weights only")
        return quantize_per_token(path, out, weight_levels=127 if full_range else 63)
    if activations != "tensor":
        raise ValueError(f"activations must be 'token' or 'tensor', got {activations!r}")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.Filter()  # its advice to pre-process first, logged on the root logger at every call
    quiet.filter = lambda record: "pre-processing before quantization" not in record.getMessage()
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         per_channel=per_channel, reduce_range=not full_range)
    finally:
        logging.getLogger().removeFilter(quiet)
    return out


def cpu_has_vnni() -> bool:
    """Whether this CPU multiplies int8 with VNNI (int32 sums). Without it (AVX2 only) ONNX Runtime's
    u8 x s8 kernels add pairs of products in int16 and saturate on 8-bit weights: a Linear layer's
    output was off by 33 where 7-bit weights gave 0.6 (tests/nlp/test_run_safety.py), so weights are
    quantized to 7 bits there. Read from /proc/cpuinfo; elsewhere assumed absent (7 bits: always safe)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags or "amx_int8" in flags


def inference_model(encoder: torch.nn.Module, head: torch.nn.Module, device: Optional[str] = None,
                    precision: str = "fp32", runtime: str = "torch") -> EagerModel | OnnxRuntimeModel:
    """The callable that runs ``encoder -> head`` for a predictor: ``runtime`` of ``RUNTIMES``."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return (OnnxRuntimeModel if runtime == "onnxruntime" else EagerModel)(encoder, head, device, precision)
