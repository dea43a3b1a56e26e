"""The default context: per-process settings that modules read, kept in one explicit object."""
from __future__ import annotations

import contextlib
import itertools
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterator

__all__ = ["Context", "default_context", "debug_mode"]


@dataclass
class Context:
    """`debug` turns on shape checks of real tensors against declared axes in eager calls.

    `graph_stack`: the `NeuralGraph`s being recorded (the innermost last); a module call is a step of
    the innermost. `modules`: the live modules by name, which a graph imported with
    `reuse_existing_modules=True` takes instead of building new ones.
    """

    debug: bool = False
    _name_counters: dict = field(default_factory=lambda: defaultdict(itertools.count))
    graph_stack: list = field(default_factory=list)
    modules: weakref.WeakValueDictionary = field(default_factory=weakref.WeakValueDictionary)

    @property
    def active_graph(self):
        return self.graph_stack[-1] if self.graph_stack else None

    def unique_name(self, base: str) -> str:
        index = next(self._name_counters[base])
        return base if index == 0 else f"{base}_{index}"

    def __deepcopy__(self, memo: dict) -> "Context":
        # A context is where modules live, not part of one: `copy.deepcopy(module)` gives a module in the
        # same context, whose calls the graphs being recorded there see.
        return self

    def __copy__(self) -> "Context":
        return self


default_context = Context()


@contextlib.contextmanager
def debug_mode(enabled: bool = True, context: Context = default_context) -> Iterator[Context]:
    """Check every eager call's tensors against the module's declared axes (rank and fixed sizes)."""
    previous = context.debug
    context.debug = enabled
    try:
        yield context
    finally:
        context.debug = previous
