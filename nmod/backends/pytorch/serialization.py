"""Saving and loading tensors safely: atomic writes, and weights_only loads by default."""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from nmod.core.config import atomic_write

__all__ = ["atomic_torch_save", "load_weights", "UnsafeCheckpointError"]


class UnsafeCheckpointError(RuntimeError):
    """The file needs arbitrary unpickling, which we refuse unless the user opts in."""


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save` that never leaves a half-written file behind (see `atomic_write`)."""
    atomic_write(path, lambda f: torch.save(obj, f), binary=True)


def load_weights(path: str | os.PathLike, allow_unsafe: bool = False, map_location: str = "cpu") -> Any:
    """`torch.load(weights_only=True)`; a file that needs more is refused with how to opt in."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=not allow_unsafe)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f"{path} contains objects that torch.load(weights_only=True) refuses to unpickle ({e}). "
            "Only load it if you trust its source: pass allow_unsafe=True to load_weights "
            "(for encoders: allow_unsafe_checkpoint=True, or --allow_unsafe_checkpoint in the recipes)."
        ) from None
    except RuntimeError as e:
        raise ValueError(f"Cannot read checkpoint {path}: {e}") from None
