"""PyTorch neural modules: NeuralModule ports + torch.nn.Module weights."""
from __future__ import annotations

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

    def save_to(self, path: str) -> None:
        atomic_torch_save(self.state_dict(), path)

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
