"""Graph tensors: the edges of a module graph. They hold no data, only where they come from.

Naming lives here and only here. A module's calls are numbered when they are wired (0 for its first),
so a call's `label` and a tensor's `name` are fixed from then on: the same in every `Graph` the call
is part of, in `summary()`, DOT and YAML exports, error messages and the keys of eval results.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from nmod.types import NeuralType

if TYPE_CHECKING:
    from .module import NeuralModule
    from .neural_graph import NeuralGraph

__all__ = ["NmTensor", "ModuleCall"]

_call_ids = itertools.count()


@dataclass(eq=False)
class ModuleCall:
    """One call of a module in graph mode: a node of the DAG. A module called twice has two calls."""

    module: "NeuralModule"
    inputs: Dict[str, "NmTensor"]
    index: int = 0  # how many calls the module had before this one
    outputs: Dict[str, "NmTensor"] = field(default_factory=dict)
    uid: int = field(default_factory=lambda: next(_call_ids))
    graph: Optional["NeuralGraph"] = None  # the NeuralGraph that recorded this call, if any
    step: Optional[int] = None  # its step number there

    @property
    def label(self) -> str:
        """'<module name>' for a module's first call, '<module name>#k' for its k-th re-use."""
        return self.module.name if self.index == 0 else f"{self.module.name}#{self.index}"

    def __repr__(self) -> str:
        return f"ModuleCall({self.label})"


class NmTensor:
    """An output port of one module call. Pass it to another module's input port to wire an edge."""

    def __init__(self, call: ModuleCall, port: str, ntype: Optional[NeuralType]):
        self.call = call
        self.port = port
        self.ntype = ntype  # None only for a NeuralGraph's input until a port consumes it
        self.consumers: List[Tuple[Optional[int], str, str]] = []  # (step, module name, port) that read it

    @property
    def producer(self) -> "NeuralModule":
        return self.call.module

    @property
    def producer_name(self) -> str:
        return self.call.module.name

    @property
    def producer_step_module_port(self) -> Tuple[Optional[int], str, str]:
        """(step number in its NeuralGraph, or None; module name; port), NeMo 0.11's triple."""
        return self.call.step, self.call.module.name, self.port

    @property
    def type(self) -> Optional[NeuralType]:
        return self.ntype

    @property
    def name(self) -> str:
        """'<call label>.<port>', e.g. 'encoder#1.hidden_states': the tensor's one name everywhere."""
        return f"{self.call.label}.{self.port}"

    def compare(self, other: Any):
        """How this tensor's type relates to another tensor's (or a NeuralType): a comparison result."""
        theirs = other.ntype if isinstance(other, NmTensor) else other
        return self.ntype.compare(theirs)

    def __repr__(self) -> str:
        return f"NmTensor({self.name}: {self.ntype})"
