"""What every task's predictor shares: a model folder's modules, run eagerly in eval mode, in batches.

A predictor is built from a model folder (``from_model_dir``) and reads only that folder: the
encoder, the head, the tokenizer, the labels and the settings the training run recorded. Inputs
become features exactly as the recipe's data layers make them, so a sentence the recipe evaluated
gets the label the recipe's evaluation predicted.
"""
from __future__ import annotations

import os
from typing import Any, ClassVar, Iterable, Iterator, Optional

import torch

from nmod.backends.pytorch import host_memory
from nmod.core.errors import ConfigError
from nmod.progress import progress

from ..model_folder import ModelFolder, load_model_folder
from .runtime import inference_model

__all__ = ["Predictor", "batched"]


class Predictor:
    """The encoder and head of a model folder of one of ``TASKS``, on ``device``, in eval mode;
    ``precision="int8"`` quantizes their Linear layers for the CPU (``inference.precision``), and
    ``runtime="onnxruntime"`` serves them as one ONNX graph from ONNX Runtime (``inference.runtime``)."""

    TASKS: ClassVar[tuple[str, ...]] = ()
    HEAD: ClassVar[str] = "head"  # the head's name in the folder

    def __init__(self, model: ModelFolder, batch_size: int = 32, device: Optional[str] = None,
                 precision: str = "fp32", runtime: str = "torch"):
        if model.task not in self.TASKS:
            raise ConfigError(f"{model.path} holds a {model.task!r} model; {type(self).__name__} reads "
                              f"{' or '.join(repr(t) for t in self.TASKS)} model folders")
        missing = [n for n in ("encoder", self.HEAD) if n not in model.modules]
        if missing:
            raise ConfigError(f"{model.path}: a {model.task} model folder needs the modules 'encoder' and "
                              f"'{self.HEAD}'; missing {missing}, found {sorted(model.modules)}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.model, self.batch_size = model, int(batch_size)
        self.encoder, self.head, self.tokenizer = model["encoder"], model[self.HEAD], model.tokenizer
        self.precision, self.runtime = precision, runtime
        self.forward = inference_model(self.encoder, self.head, device, precision, runtime)
        self.device = self.forward.device
        if self.device.type == "cpu" and runtime == "torch":  # ONNX Runtime has its own arena
            host_memory.keep_large_blocks()  # as the factory does: no page faults on every batch's tensors

    @classmethod
    def from_model_dir(cls, path: str | os.PathLike, batch_size: int = 32, device: Optional[str] = None,
                       precision: str = "fp32", runtime: str = "torch"):
        """From ``<work_dir>/model`` of a training run."""
        return cls(load_model_folder(path), batch_size, device, precision, runtime)

    def setting(self, name: str, default: Any = None) -> Any:
        """A setting the training run recorded in the folder (``extra``), e.g. ``max_seq_length``."""
        return self.model.extra.get(name, default)

    def labels(self, name: str) -> list[str]:
        try:
            return list(self.model.labels[name])
        except KeyError:
            raise ConfigError(f"{self.model.path}: the folder records no {name!r} labels "
                              f"(it has {sorted(self.model.labels)})") from None

    def outputs(self, input_ids, token_type_ids, attention_mask) -> dict:
        """``{head output port: tensor}`` on a batch, whichever runtime runs the model."""
        return dict(zip(self.head.output_ports, self.forward(input_ids, token_type_ids, attention_mask)))


def batched(dataset: torch.utils.data.Dataset, collate, batch_size: int) -> Iterator[Any]:
    """The dataset's items in order, ``batch_size`` at a time, collated (with progress on long inputs)."""
    for start in progress(range(0, len(dataset), batch_size), desc="infer", unit="batches"):
        yield collate([dataset[i] for i in range(start, min(len(dataset), start + batch_size))])


def as_list(items: Iterable[Any] | Any, kind: type) -> list:
    """One input or many: a lone ``kind`` becomes a one-item list."""
    return [items] if isinstance(items, kind) else list(items)


__all__ += ["as_list"]
