"""PyTorch neural modules: NeuralModule ports + torch.nn.Module weights."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Optional

import torch

from nmod.core import NeuralModule
from nmod.core.errors import CheckpointError

from .serialization import atomic_torch_save, load_weights

__all__ = ["TrainableNM", "DataLayerNM"]


class TrainableNM(NeuralModule, torch.nn.Module):
    """A module with weights. Subclasses call `super().__init__(name=name)` first and define `forward`
    with one keyword argument per input port, returning one tensor per output port (a tuple in
    `output_ports` order when there are several)."""

    def __init__(self, name: Optional[str] = None, **kwargs):
        torch.nn.Module.__init__(self)
        NeuralModule.__init__(self, name=name, **kwargs)

    __call__ = NeuralModule.__call__

    def _eager_call(self, **kwargs):
        return torch.nn.Module.__call__(self, **kwargs)

    @property
    def num_weights(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def freeze(self) -> None:
        """Stop training these weights (they stay in the graph and still run forward)."""
        for p in self.parameters():
            p.requires_grad_(False)

    def unfreeze(self) -> None:
        for p in self.parameters():
            p.requires_grad_(True)

    @contextlib.contextmanager
    def tracing(self) -> Iterator[None]:
        """Entered around a trace (TorchScript and ONNX export, ``nmod.backends.pytorch.export``): a module
        whose Python takes an input-dependent branch picks, for the trace, the one right for every input.
        Nothing by default."""
        yield

    def save_to(self, path: str) -> None:
        atomic_torch_save(self.state_dict(), path)

    def check_state(self, state: dict, where: str) -> None:
        """Raise CheckpointError unless ``state`` fits this module (keys and shapes), naming ``where``."""
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in set(own) & set(state)
                  if torch.is_tensor(state[k]) and state[k].shape != own[k].shape]
        if missing or unexpected or shapes:
            raise CheckpointError(f"{where} does not fit {type(self).__name__} '{self.name}': missing keys {missing}, "
                                  f"unexpected keys {unexpected}, other shapes {sorted(shapes)}")

    def tie_weights_with(self, module: "TrainableNM", weight_names: list[str],
                         name_pairs: Optional[dict[str, str]] = None) -> None:
        """NeMo 0.11's weight sharing: this module's ``weight_names`` become ``module``'s parameters
        themselves (``name_pairs`` maps a name here to its name there when they differ), so an MLM
        head's decoder can use the word embeddings, or two heads one layer.

        The parameter is one object: the optimizer updates it once, and a checkpoint, which loads in
        place, keeps the tie; ``NeuralGraph.serialize`` records it (``tied_weights``) to re-tie on import.
        """
        theirs = dict(module.named_parameters())
        for mine in weight_names:
            other = (name_pairs or {}).get(mine, mine)
            if other not in theirs:
                raise KeyError(f"{type(module).__name__} '{module.name}' has no parameter {other!r}")
            owner, _, leaf = mine.rpartition(".")
            holder = self.get_submodule(owner) if owner else self
            current = getattr(holder, leaf, None)
            if not isinstance(current, torch.nn.Parameter):
                raise KeyError(f"{type(self).__name__} '{self.name}' has no parameter {mine!r}")
            if current.shape != theirs[other].shape:
                raise ValueError(f"cannot tie {self.name}.{mine} {tuple(current.shape)} to {module.name}.{other} "
                                 f"{tuple(theirs[other].shape)}: the shapes differ")
            setattr(holder, leaf, theirs[other])
            ties = [t for t in self.tied_weights if t[0] != mine]
            self.tied_weights = ties + [(mine, module.name, other)]

    @property
    def tied_weights(self) -> list:
        """``(parameter name here, module name, parameter name there)`` for each tie ``tie_weights_with`` made."""
        return self.__dict__.get("_tied_weights", [])

    @tied_weights.setter
    def tied_weights(self, ties: list) -> None:
        self.__dict__["_tied_weights"] = list(ties)

    def restore_from(self, path: str) -> None:
        state = load_weights(path)
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as e:  # same keys, other shapes: say which file and which module
            raise CheckpointError(f"{path} does not fit {type(self).__name__} '{self.name}': {e}") from None
        if missing or unexpected:
            raise CheckpointError(
                f"{path} does not fit {type(self).__name__} '{self.name}': "
                f"missing keys {sorted(missing)}, unexpected keys {sorted(unexpected)}"
            )


class DataLayerNM(NeuralModule):
    """A source of batches: output ports only.

    Subclasses set `self.dataset` (a torch Dataset whose items are tuples in `output_ports` order),
    `self.batch_size` and `self.shuffle`; optionally `collate_fn` (default: torch's default collate)
    and `batch_sampler(epoch, rank, world_size, seed)` returning lists of indices for
    length-aware batching.
    """

    dataset: Any = None
    batch_size: int = 1
    shuffle: bool = False
    collate_fn: Optional[Callable] = None

    def __init__(self, name: Optional[str] = None, **kwargs):
        super().__init__(name=name, **kwargs)

    def __len__(self) -> int:
        if self.dataset is None:
            raise RuntimeError(f"{type(self).__name__} '{self.name}' did not set self.dataset")
        return len(self.dataset)

    def batch_sampler(self, epoch: int, rank: int, world_size: int, seed: int) -> Optional[Iterator[list]]:
        """None means: the executor batches with its own (distributed) sampler."""
        return None
