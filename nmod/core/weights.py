"""Saving and loading several modules' weights in one file, through the backend that holds them.

The core never imports a deep-learning framework: the backend registers how its weights are written
and read (``register``; the PyTorch backend does so when it is imported), and ``NeuralGraph.save_to``
and ``restore_from`` call these two functions.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional

__all__ = ["register", "save_states", "load_states"]

_io: Dict[str, Optional[Callable]] = {"save": None, "load": None}


def register(save: Callable[[Any, str | os.PathLike], None], load: Callable[[str | os.PathLike], Any]) -> None:
    _io["save"], _io["load"] = save, load


def _need(kind: str) -> Callable:
    if _io[kind] is None:
        raise RuntimeError("no backend has registered how to save weights: import nmod.backends.pytorch")
    return _io[kind]


def save_states(states: Dict[str, Any], path: str | os.PathLike) -> None:
    """``{module name: state dict}`` to ``path``, atomically."""
    _need("save")({"format": "nmod-graph-weights-1", "modules": states}, path)


def load_states(path: str | os.PathLike) -> Dict[str, Any]:
    data = _need("load")(path)
    if not isinstance(data, dict) or data.get("format") != "nmod-graph-weights-1":
        from .errors import CheckpointError

        raise CheckpointError(f"{path} is not a graph's weights file (NeuralGraph.save_to writes one)")
    return data["modules"]
