"""Reading the pickles training frameworks write, without those frameworks and without running their code.

Megatron-LM, megatron-core and NeMo pickle more than tensors beside the weights: an argparse
``Namespace`` of the training arguments holding enums such as ``megatron.core.transformer.enums.AttnBackend``,
a distributed checkpoint's ``.metadata`` as a ``megatron.core...MCoreMetadata``. A user fine-tuning
the weights has neither package, and unpickling arbitrary classes would run whatever the file names.
So every class of those packages becomes a **stand-in**: an inert object that keeps the arguments
and state it was rebuilt with (``standin.args``, ``standin.state``), and nothing else is allowed but
tensors, numpy arrays and what PyTorch's own ``weights_only`` loader accepts.

* ``torch_load(path)``: ``torch.load(weights_only=True)`` with the stand-ins (each one the loader asks
  for is added, and the load retried); ``allow_unsafe=True`` is the plain, trusting ``torch.load``.
* ``load_pickle(file)``: a plain pickle (a ``.metadata`` file) through an allowlist: PyTorch's
  distributed-checkpoint classes, dtypes, sizes, paths, and the stand-ins.
"""
from __future__ import annotations

import argparse
import io
import pickle
import re
from pathlib import Path
from typing import Any, BinaryIO

import torch

__all__ = ["STANDIN_PACKAGES", "Standin", "torch_load", "load_pickle", "is_standin"]

#: Packages whose classes are replaced by stand-ins: the frameworks that write BERT checkpoints.
STANDIN_PACKAGES = ("megatron", "nemo", "apex", "transformer_engine", "modelopt", "lightning", "pytorch_lightning",
                    "omegaconf", "fiddle")

_UNSUPPORTED = re.compile(r"GLOBAL ([\w.]+) was not an allowed global")


class Standin:
    """An object of a class nmod does not import: the arguments and state it was rebuilt with."""

    _qualified = "?"
    args: tuple = ()  # set when rebuilt by a call; an object rebuilt by __new__ + state keeps these
    kwargs: dict = {}
    state: Any = None

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state
        if isinstance(state, dict):
            self.__dict__.update({k: v for k, v in state.items() if isinstance(k, str)})

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self.args))
        return f"<stand-in for {self._qualified}({shown})>"

    @property
    def value(self) -> Any:
        """An enum member's value (``AttnBackend(5)`` -> 5)."""
        return self.args[0] if len(self.args) == 1 else self.args


_standins: dict[str, type] = {}


def _standin(qualified: str) -> type:
    """One class per qualified name, so that equal names give the same class."""
    if qualified not in _standins:
        _standins[qualified] = type(qualified.rsplit(".", 1)[-1], (Standin,), {"_qualified": qualified})
    return _standins[qualified]


def is_standin(value: Any) -> bool:
    return isinstance(value, Standin)


def _is_framework(qualified: str) -> bool:
    return qualified.split(".", 1)[0] in STANDIN_PACKAGES


def _training_state_globals() -> list:
    """What Megatron's ``model_optim_rng.pt`` (like many training checkpoints) holds besides tensors:
    its argparse ``args``, numpy RNG state and arrays, and the bytes buffers of ``_extra_state``."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    uint32 = type(np.dtype(np.uint32))
    return [argparse.Namespace, np.ndarray, np.dtype, uint32, _reconstruct, io.BytesIO,
            (_reconstruct, "numpy.core.multiarray._reconstruct")]


def torch_load(path: str | Path, allow_unsafe: bool = False, mmap: bool = False) -> Any:
    """``torch.load`` on the CPU; only tensors and the safe objects above, framework classes as stand-ins."""
    if allow_unsafe:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    allowed = _training_state_globals()
    for _ in range(64):  # one more stand-in per retry; a file names a handful of classes
        try:
            with torch.serialization.safe_globals(allowed):
                return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as err:
            missing = _UNSUPPORTED.search(str(err))
            if missing is None or not _is_framework(missing.group(1)):
                raise
            allowed.append((_standin(missing.group(1)), missing.group(1)))
    raise pickle.UnpicklingError(f"{path}: too many classes to stand in for")


_PICKLE_ALLOWED = {
    ("collections", "OrderedDict"), ("pathlib", "PosixPath"), ("pathlib", "WindowsPath"),
    ("pathlib", "PurePosixPath"), ("torch", "Size"), ("torch.serialization", "_get_layout"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "slice"), ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        qualified = f"{module}.{name}"
        if _is_framework(qualified):
            return _standin(qualified)
        if module.startswith("torch.distributed.checkpoint") or (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), (torch.dtype, torch.layout,
                                                                        torch.memory_format)):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {qualified}: not a tensor, a checkpoint structure or a "
                                     f"class of {', '.join(STANDIN_PACKAGES[:3])}, ...")


def load_pickle(file: BinaryIO) -> Any:
    return _RestrictedUnpickler(file).load()
