"""Graph tensors: the edges of a module graph. They hold no data, only where they come from."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict

from nmod.types import NeuralType

if TYPE_CHECKING:
    from .module import NeuralModule

__all__ = ["NmTensor", "ModuleCall"]

_call_ids = itertools.count()


@dataclass(eq=False)
class ModuleCall:
    """One call of a module in graph mode: a node of the DAG. A module called twice has two calls."""

    module: "NeuralModule"
    inputs: Dict[str, "NmTensor"]
    outputs: Dict[str, "NmTensor"] = field(default_factory=dict)
    uid: int = field(default_factory=lambda: next(_call_ids))

    @property
    def label(self) -> str:
        """'<module name>' for a module's first call, '<module name>#k' for its k-th re-use."""
        index = self.module._calls.index(self) if self in self.module._calls else 0
        return self.module.name if index == 0 else f"{self.module.name}#{index}"

    def __repr__(self) -> str:
        return f"ModuleCall({self.label})"


class NmTensor:
    """An output port of one module call. Pass it to another module's input port to wire an edge."""

    def __init__(self, call: ModuleCall, port: str, ntype: NeuralType):
        self.call = call
        self.port = port
        self.ntype = ntype

    @property
    def producer(self) -> "NeuralModule":
        return self.call.module

    @property
    def name(self) -> str:
        """Unique within a graph: '<call label>.<port>'."""
        return f"{self.call.label}.{self.port}"

    def __repr__(self) -> str:
        return f"NmTensor({self.name}: {self.ntype})"
