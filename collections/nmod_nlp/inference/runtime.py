"""Where a predictor's encoder and head run: eagerly in torch, or as one ONNX graph in ONNX Runtime.

Both take the encoder's three inputs and return the head's outputs in its port order, so the
predictors read the same tensors whichever runs them. ``torch`` is the modules themselves, fp32 as
trained or with int8 Linear layers (``inference.precision``). ``onnxruntime`` exports the encoder and
head once, when the folder is loaded, as one graph with ``deployment_export`` (dynamic batch and
length, the padded attention path), and serves it from an ONNX Runtime session on the CPU; its int8
is ONNX Runtime's dynamic quantization of the graph's matrix products (int8 weights, one scale per
output channel, activations quantized per batch). Nothing is written beside the model folder: the
ONNX file lives in a temporary folder only while the session is made.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Optional

import torch

from nmod.core.errors import ConfigError

from ..ports import bert_input_ports, head_inputs
from .precision import PRECISIONS, prepare_for_inference

__all__ = ["RUNTIMES", "EagerModel", "OnnxRuntimeModel", "inference_model"]

RUNTIMES = ("torch", "onnxruntime")


class EagerModel:
    """The encoder, then the head, called as modules on ``device``."""

    def __init__(self, encoder: torch.nn.Module, head: torch.nn.Module, device: Optional[str], precision: str):
        self.encoder, self.head = encoder, head
        self.device = prepare_for_inference([encoder, head], device, precision)

    def __call__(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor,
                 attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        to = lambda t: t.to(self.device)  # noqa: E731
        encoded = self.encoder(input_ids=to(input_ids), token_type_ids=to(token_type_ids),
                               attention_mask=to(attention_mask))
        out = self.head(**head_inputs(self.head, encoded))
        return tuple(out) if isinstance(out, tuple) else (out,)


class OnnxRuntimeModel:
    """The encoder and head as one ONNX graph in an ONNX Runtime CPU session (``intra_op`` threads:
    torch's ``get_num_threads()``, so ``torch.set_num_threads`` and ``OMP_NUM_THREADS`` rule both)."""

    def __init__(self, encoder: torch.nn.Module, head: torch.nn.Module, device: Optional[str], precision: str):
        if device is not None and torch.device(device).type != "cpu":
            raise ConfigError(f"runtime 'onnxruntime' runs on the CPU here; got device {device!r} "
                              f"(use the torch runtime on a GPU)")
        try:
            import onnxruntime
        except ImportError:
            raise ConfigError("runtime 'onnxruntime' needs the onnxruntime and onnx packages: "
                              "pip install 'nmod[onnxruntime]'") from None
        self.encoder, self.head = encoder, head
        self.device = prepare_for_inference([encoder, head], "cpu", "fp32")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3  # errors only: its graph-optimiser notes are not the user's business
        with tempfile.TemporaryDirectory(prefix="nmod-onnx-") as tmp:
            path = export_encoder_and_head(encoder, head, Path(tmp) / "model.onnx")
            if precision == "int8":
                path = quantize_int8(path, Path(tmp) / "model.int8.onnx")
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


def quantize_int8(path: Path, out: Path, per_channel: bool = True) -> Path:
    """ONNX Runtime's dynamic quantization of the MatMuls: int8 weights with one scale per output
    channel (one per tensor, ``per_channel=False``, cost 0.6-1.2 CoNLL F1 points more: docs/accuracy.md)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.Filter()  # its advice to pre-process first, logged on the root logger at every call
    quiet.filter = lambda record: "pre-processing before quantization" not in record.getMessage()
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         per_channel=per_channel)
    finally:
        logging.getLogger().removeFilter(quiet)
    return out


def inference_model(encoder: torch.nn.Module, head: torch.nn.Module, device: Optional[str] = None,
                    precision: str = "fp32", runtime: str = "torch") -> EagerModel | OnnxRuntimeModel:
    """The callable that runs ``encoder -> head`` for a predictor: ``runtime`` of ``RUNTIMES``."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return (OnnxRuntimeModel if runtime == "onnxruntime" else EagerModel)(encoder, head, device, precision)
