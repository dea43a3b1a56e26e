"""NeMo 0.11's ``NeuralGraph``: a graph as an object you build once, bind, nest, save, restore and train.

    with NeuralGraph(operation_mode=OperationMode.both, name="model") as model:
        hidden = encoder(input_ids=model.inputs["input_ids"], ...)      # a bound input: the port's type
        logits = head(hidden_states=hidden)
        model.outputs.bind([logits])                                    # else: every output of every step

    with NeuralGraph(operation_mode=OperationMode.training) as training:
        batch = data_layer()
        logits = model(input_ids=batch.input_ids, ...)                  # nested: the steps copied in
        loss = loss_fn(logits=logits, labels=batch.labels)

Every module call made while a graph is active (``with``, or ``activate()``) is recorded as one of its
steps. Nesting ``model(...)`` inside another graph calls the same modules again there (topology is
copied, modules are shared: ``g1["head"] is g2["head"]``), the outer tensors in place of the inner
graph's inputs, and returns the outer tensors of the inner bound outputs. A graph holds no data and
runs nothing: the executor trains, evaluates or infers the tensors it ends in, as for tensors wired
without a graph (which keeps working unchanged).
"""
from __future__ import annotations

import os
from enum import Enum
from typing import Any, Dict, Iterator, List, Optional, Sequence

from nmod.types import NeuralType

from . import config as cfg
from .context import Context, default_context
from .errors import ConfigClassMismatchError, ConfigFieldError, GraphError, NeuralPortNameMismatchError
from .graph import Graph
from .module import NeuralModule
from .tensor import ModuleCall, NmTensor

__all__ = ["NeuralGraph", "OperationMode", "GraphInputs", "GraphOutputs"]

KIND = "nmod.NeuralGraph"


class OperationMode(Enum):
    """What a graph is for; a module called in a graph takes its mode (``module.operation_mode``)."""

    training = "training"
    evaluation = "evaluation"
    both = "both"


def _nests(inner: OperationMode, outer: OperationMode) -> bool:
    """``both`` nests into anything; ``training`` only into ``training``; ``evaluation`` only into ``evaluation``."""
    return inner is OperationMode.both or inner is outer


class _BoundInputs(NeuralModule):
    """The source of a graph's bound inputs: one output port per input, typed by the port that consumes it."""

    def __init__(self, graph_name: str, context: Context):
        super().__init__(name=f"{graph_name}.inputs", context=context)
        self.types: Dict[str, Optional[NeuralType]] = {}

    @property
    def output_ports(self) -> Dict[str, NeuralType]:
        return {name: t for name, t in self.types.items() if t is not None}

    def bind_input(self, tensor: NmTensor, ntype: NeuralType) -> None:
        """The wiring found an input not yet typed: the consuming port's type becomes its type."""
        tensor.ntype = ntype
        self.types[tensor.port] = ntype


class GraphInputs:
    """``g.inputs["name"]``: a tensor standing for the value a caller will give; its type is the type of
    the first port it is wired into (a *bound* input)."""

    def __init__(self, graph: "NeuralGraph"):
        self._graph = graph
        self._source = _BoundInputs(graph.name, graph.context)
        self._call = ModuleCall(module=self._source, inputs={})
        self._tensors: Dict[str, NmTensor] = {}

    def __getitem__(self, name: str) -> NmTensor:
        if not isinstance(name, str) or not name.isidentifier():
            raise GraphError(f"graph '{self._graph.name}': an input name must be an identifier, got {name!r}")
        if name not in self._tensors:
            self._tensors[name] = NmTensor(self._call, name, None)  # typed when first wired (bind)
            self._source.types[name] = None
        return self._tensors[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def tensor(self, name: str) -> NmTensor:
        return self._tensors[name]

    @property
    def types(self) -> Dict[str, Optional[NeuralType]]:
        return dict(self._source.types)


class GraphOutputs:
    """A graph's outputs: by default every output of every step, named ``<port>`` (``<module>.<port>``
    where two steps' ports share a name); ``bind([...])`` replaces them with chosen tensors, in order."""

    def __init__(self, graph: "NeuralGraph"):
        self._graph = graph
        self._bound: Optional[Dict[str, NmTensor]] = None

    def bind(self, tensors: Sequence[NmTensor] | NmTensor, names: Optional[Sequence[str]] = None) -> None:
        tensors = [tensors] if isinstance(tensors, NmTensor) else list(tensors)
        steps = {c.uid for c in self._graph._steps}
        for t in tensors:
            if not isinstance(t, NmTensor):
                raise GraphError(f"graph '{self._graph.name}': outputs.bind takes graph tensors, got {t!r}")
            if t.call.uid not in steps:
                raise GraphError(f"graph '{self._graph.name}': cannot bind {type(t.producer).__name__}.{t.port} "
                                 f"(module '{t.producer.name}') as an output: no step of this graph produced it")
        chosen = _names(tensors) if names is None else list(names)
        if len(chosen) != len(tensors) or len(set(chosen)) != len(chosen):
            raise GraphError(f"graph '{self._graph.name}': output names {chosen} must be distinct, one per tensor")
        self._bound = dict(zip(chosen, tensors))

    @property
    def bound(self) -> bool:
        return self._bound is not None

    @property
    def tensors(self) -> Dict[str, NmTensor]:
        if self._bound is not None:
            return dict(self._bound)
        produced = [t for c in self._graph._steps for t in c.outputs.values()]
        return dict(zip(_names(produced), produced))

    def __getitem__(self, name: str) -> NmTensor:
        tensors = self.tensors
        if name not in tensors:
            raise KeyError(f"graph '{self._graph.name}' has no output {name!r}; its outputs are {list(tensors)}")
        return tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)


def _names(tensors: Sequence[NmTensor]) -> List[str]:
    """``<port>``, or ``<module>.<port>`` for a port name two tensors share (``<call label>.<port>`` if
    even that clashes: a module called twice)."""
    counts: Dict[str, int] = {}
    for t in tensors:
        counts[t.port] = counts.get(t.port, 0) + 1
    names = [t.port if counts[t.port] == 1 else f"{t.producer.name}.{t.port}" for t in tensors]
    if len(set(names)) != len(names):
        names = [t.port if counts[t.port] == 1 else t.name for t in tensors]
    return names


class NeuralGraph:
    """A recorded graph of module calls with typed inputs and outputs, callable like a module."""

    def __init__(self, operation_mode: OperationMode = OperationMode.both, name: Optional[str] = None,
                 context: Optional[Context] = None):
        if isinstance(operation_mode, str):
            operation_mode = OperationMode(operation_mode)
        if not isinstance(operation_mode, OperationMode):
            raise TypeError(f"operation_mode must be an OperationMode, got {operation_mode!r}")
        self.context = context or default_context
        self.operation_mode = operation_mode
        self.name = name or self.context.unique_name("NeuralGraph")
        self._steps: List[ModuleCall] = []
        self.inputs = GraphInputs(self)
        self.outputs = GraphOutputs(self)

    # ---- recording ----------------------------------------------------------------------------
    def __enter__(self) -> "NeuralGraph":
        self.activate()
        return self

    def __exit__(self, *exc) -> None:
        self.deactivate()

    def activate(self) -> None:
        """Record the module calls made from now on (until ``deactivate``) as this graph's steps."""
        self.context.graph_stack.append(self)

    def deactivate(self) -> None:
        if not self.context.graph_stack or self.context.graph_stack[-1] is not self:
            raise GraphError(f"graph '{self.name}' is not the active graph, so it cannot be deactivated")
        self.context.graph_stack.pop()

    def record(self, call: ModuleCall) -> None:
        """Called by the wiring for each module call made while this graph is active."""
        call.graph, call.step = self, len(self._steps)
        call.module.operation_mode = self.operation_mode
        self._steps.append(call)

    # ---- calling: nesting --------------------------------------------------------------------
    def __call__(self, **inputs: NmTensor):
        """Copy the steps into the active graph (or wire them plainly), ``inputs`` standing for the bound
        inputs; returns the tensors of the bound outputs: one NmTensor, or a tuple in bound order."""
        outer = self.context.graph_stack[-1] if self.context.graph_stack else None
        if outer is self:
            raise GraphError(f"graph '{self.name}' cannot be nested into itself")
        if outer is not None and not _nests(self.operation_mode, outer.operation_mode):
            raise TypeError(f"graph '{self.name}' ({self.operation_mode.name}) cannot be nested into graph "
                            f"'{outer.name}' ({outer.operation_mode.name}): only a 'both' graph nests into any, "
                            f"a 'training' one into 'training', an 'evaluation' one into 'evaluation'")
        unknown = sorted(set(inputs) - set(self.inputs))
        missing = [n for n in self.inputs if n not in inputs]
        if unknown or missing:
            raise NeuralPortNameMismatchError(f"graph '{self.name}' has input ports {list(self.inputs)}; "
                                              f"unknown {unknown}, missing {missing}")
        outputs = self.outputs.tensors  # fixed before the copy adds steps elsewhere
        mapped: Dict[int, NmTensor] = {id(self.inputs.tensor(n)): t for n, t in inputs.items()}
        for call in list(self._steps):
            kwargs = {port: mapped.get(id(t), t) for port, t in call.inputs.items()}
            result = call.module(**kwargs)
            results = result if isinstance(result, tuple) else (result,)
            for inner, new in zip(call.outputs.values(), results):
                mapped[id(inner)] = new
        out = [mapped.get(id(t), t) for t in outputs.values()]
        return out[0] if len(out) == 1 else tuple(out)

    # ---- introspection ----------------------------------------------------------------------
    @property
    def steps(self) -> Dict[int, str]:
        """Step number -> the name of the module called."""
        return {i: c.module.name for i, c in enumerate(self._steps)}

    @property
    def modules(self) -> Dict[str, NeuralModule]:
        """Module name -> module, each module once, in first-step order."""
        found: Dict[str, NeuralModule] = {}
        for c in self._steps:
            found.setdefault(c.module.name, c.module)
        return found

    def __getitem__(self, name: str) -> NeuralModule:
        modules = self.modules
        if name not in modules:
            raise KeyError(f"graph '{self.name}' has no module {name!r}; its modules are {list(modules)}")
        return modules[name]

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def tensors(self) -> Dict[int, Dict[str, NmTensor]]:
        """Step number -> output port -> the tensor that step produced."""
        return {i: dict(c.outputs) for i, c in enumerate(self._steps)}

    @property
    def tensor_list(self) -> List[NmTensor]:
        return [t for c in self._steps for t in c.outputs.values()]

    @property
    def input_ports(self) -> Dict[str, Optional[NeuralType]]:
        return self.inputs.types

    @property
    def output_ports(self) -> Dict[str, NeuralType]:
        return {name: t.ntype for name, t in self.outputs.tensors.items()}

    @property
    def output_tensors(self) -> Dict[str, NmTensor]:
        return self.outputs.tensors

    def bind_outputs(self, tensors: Sequence[NmTensor] | NmTensor) -> None:
        """NeMo's spelling of ``g.outputs.bind``."""
        self.outputs.bind(tensors)

    @property
    def graph(self) -> Graph:
        """The DAG behind the outputs, as the executor plans it."""
        return Graph(list(self.outputs.tensors.values()))

    def summary(self) -> str:
        """A table: each step (module, class, its inputs and their sources, its outputs), then the bound
        inputs and the outputs with their types."""
        rows = [("step", "module", "class", "inputs", "outputs")]
        for i, c in enumerate(self._steps):
            ins = ", ".join(f"{p}<-{self._describe(t)}" for p, t in c.inputs.items()) or "-"
            rows.append((str(i), c.module.name, type(c.module).__name__, ins, ", ".join(c.outputs)))
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        lines = [f"NeuralGraph '{self.name}' ({self.operation_mode.name}): {len(self)} steps, "
                 f"{len(self.modules)} modules"]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(2, "  ".join("-" * w for w in widths))
        lines.append("inputs: " + (", ".join(f"{n} {t if t is not None else '(not wired)'}"
                                            for n, t in self.input_ports.items()) or "none"))
        lines.append(("bound outputs: " if self.outputs.bound else "outputs (every step's): ") +
                     (", ".join(f"{n} {t}" for n, t in self.output_ports.items()) or "none"))
        return "\n".join(lines)

    def _describe(self, t: NmTensor) -> str:
        if t.call is self.inputs._call:
            return f"input.{t.port}"
        step = getattr(t.call, "step", None)
        return f"{step}.{t.port}" if getattr(t.call, "graph", None) is self else t.name

    # ---- persistence ------------------------------------------------------------------------
    def serialize(self) -> Dict[str, Any]:
        """A plain description: header, modules with their init params, steps, connections, bound
        inputs and outputs (and weight ties); ``deserialize`` rebuilds the graph from it."""
        position = {c.uid: i for i, c in enumerate(self._steps)}

        def ref(t: NmTensor) -> str:
            if t.call is self.inputs._call:
                return f"inputs.{t.port}"
            if t.call.uid not in position:
                raise GraphError(f"graph '{self.name}': step inputs must come from its steps or its bound inputs; "
                                 f"{t.name} comes from outside, so the graph cannot be serialized")
            return f"{position[t.call.uid]}.{t.port}"

        connections = [f"{ref(t)}->{i}.{port}" for i, c in enumerate(self._steps) for port, t in c.inputs.items()]
        ties = [[m.name, mine, other, theirs] for m in self.modules.values()
                for mine, other, theirs in getattr(m, "tied_weights", [])]
        return {
            "header": {**cfg.header(), "kind": KIND, "name": self.name, "operation_mode": self.operation_mode.value},
            "modules": {name: m.to_config_dict() for name, m in self.modules.items()},
            "steps": {i: c.module.name for i, c in enumerate(self._steps)},
            "connections": connections,
            "inputs": list(self.inputs),
            "outputs": {"bound": self.outputs.bound,
                        "tensors": {name: ref(t) for name, t in self.outputs.tensors.items()}},
            "ties": ties,
        }

    @classmethod
    def deserialize(cls, description: Dict[str, Any], reuse_existing_modules: bool = False,
                    name: Optional[str] = None, where: str = "graph description",
                    context: Optional[Context] = None) -> "NeuralGraph":
        """Rebuild a graph from ``serialize()``'s dict: its modules made anew from their init params
        (or, with ``reuse_existing_modules``, the live modules of those names), its steps replayed."""
        context = context or default_context
        header = cfg.require(description, "header", dict, where)
        if header.get("kind") != KIND:
            raise ConfigClassMismatchError(f"{where} describes a {header.get('kind') or header.get('full_spec')!r}, "
                                           f"not a NeuralGraph ({KIND})")
        modules_cfg = cfg.require(description, "modules", dict, where)
        steps = {int(k): v for k, v in cfg.require(description, "steps", dict, where).items()}
        connections = cfg.require(description, "connections", list, where)
        outputs_cfg = cfg.require(description, "outputs", dict, where)
        missing = sorted({m for m in steps.values() if m not in modules_cfg})
        if missing:
            raise ConfigFieldError(f"{where}: steps call modules {missing} that 'modules' does not define")
        modules = {}
        for module_name, spec in modules_cfg.items():
            existing = context.modules.get(module_name) if reuse_existing_modules else None
            modules[module_name] = existing if existing is not None else NeuralModule.from_config_dict(
                spec, f"{where}: modules.{module_name}", name=_free_name(module_name, context))
        inputs_of: Dict[int, Dict[str, str]] = {i: {} for i in steps}
        for link in connections:
            try:
                source, target = link.split("->")
                step, port = target.split(".", 1)
                inputs_of[int(step)][port] = source
            except (ValueError, KeyError):
                raise ConfigFieldError(f"{where}: connection {link!r} must look like '<step>.<port>->"
                                       f"<step>.<port>' (or 'inputs.<name>->...'), to a step that exists") from None
        graph = cls(OperationMode(header.get("operation_mode", "both")), name=name or header.get("name"),
                    context=context)
        produced: Dict[str, NmTensor] = {}
        with graph:
            for i in sorted(steps):
                kwargs = {}
                for port, source in inputs_of[i].items():
                    if source.startswith("inputs."):
                        kwargs[port] = graph.inputs[source[len("inputs."):]]
                    elif source in produced:
                        kwargs[port] = produced[source]
                    else:
                        raise ConfigFieldError(f"{where}: step {i} reads {source!r}, which no earlier step produces")
                result = modules[steps[i]](**kwargs)
                for t in result if isinstance(result, tuple) else (result,):
                    produced[f"{i}.{t.port}"] = t
        for module_name, mine, other, theirs in description.get("ties") or []:
            modules[module_name].tie_weights_with(modules[other], [mine], {mine: theirs})
        if outputs_cfg.get("bound"):
            refs = cfg.require(outputs_cfg, "tensors", dict, where)
            unknown = [r for r in refs.values() if r not in produced]
            if unknown:
                raise ConfigFieldError(f"{where}: outputs {unknown} name no step's output")
            graph.outputs.bind([produced[r] for r in refs.values()], names=list(refs))
        return graph

    def export_to_config(self, path: str | os.PathLike) -> None:
        """``serialize()`` as YAML (what ``import_from_config`` reads); weights go to ``save_to``."""
        cfg.write_yaml(path, self.serialize())

    @classmethod
    def import_from_config(cls, path: str | os.PathLike, reuse_existing_modules: bool = False,
                           name: Optional[str] = None) -> "NeuralGraph":
        return cls.deserialize(cfg.read_yaml(path), reuse_existing_modules, name=name, where=str(path))

    def __eq__(self, other: object) -> bool:
        """The same modules (class, init params), steps, connections, inputs and outputs."""
        if not isinstance(other, NeuralGraph):
            return NotImplemented
        return _comparable(self.serialize()) == _comparable(other.serialize())

    __hash__ = object.__hash__

    # ---- weights ----------------------------------------------------------------------------
    def _trainable(self, module_names: Optional[Sequence[str]]) -> Dict[str, NeuralModule]:
        modules = {n: m for n, m in self.modules.items() if hasattr(m, "state_dict")}
        if module_names is None:
            return modules
        unknown = [n for n in module_names if n not in modules]
        if unknown:
            raise KeyError(f"graph '{self.name}' has no module with weights named {unknown}; it has {list(modules)}")
        return {n: modules[n] for n in module_names}

    def save_to(self, file: str | os.PathLike, module_names: Optional[Sequence[str]] = None) -> None:
        """The weights of all (or the named) modules with weights, in one file (written atomically)."""
        from .weights import save_states

        save_states({n: m.state_dict() for n, m in self._trainable(module_names).items()}, file)

    def restore_from(self, file: str | os.PathLike, module_names: Optional[Sequence[str]] = None) -> None:
        """Load ``save_to``'s file into all (or the named) modules; every one is checked before any loads."""
        from .weights import load_states

        states = load_states(file)
        modules = self._trainable(module_names if module_names is not None else
                                  [n for n in self._trainable(None) if n in states])
        missing = [n for n in modules if n not in states]
        if missing:
            raise KeyError(f"{file} holds the weights of {sorted(states)}, not of {missing}")
        for n, m in modules.items():
            m.check_state(states[n], f"{file} (module '{n}')")
        for n, m in modules.items():
            m.load_state_dict(states[n], strict=True)

    def freeze(self, module_names: Optional[Sequence[str]] = None) -> None:
        for m in self._trainable(module_names).values():
            m.freeze()

    def unfreeze(self, module_names: Optional[Sequence[str]] = None) -> None:
        for m in self._trainable(module_names).values():
            m.unfreeze()

    def __repr__(self) -> str:
        return f"NeuralGraph(name={self.name!r}, operation_mode={self.operation_mode.name}, steps={len(self)})"


def _free_name(name: str, context: Context) -> str:
    """``name``, or ``name_1``, ``name_2``, ... when a live module has it: names stay unique."""
    candidate, k = name, 0
    while candidate in context.modules:
        k += 1
        candidate = f"{name}_{k}"
    return candidate


def _comparable(description: Dict[str, Any]) -> Dict[str, Any]:
    """What equality compares: modules by their step order (a rebuilt graph's may be renamed), their
    class and init params, the connections, the inputs and outputs, the mode and the ties."""
    steps = description["steps"]
    order = {name: k for k, name in enumerate(dict.fromkeys(steps[i] for i in sorted(steps, key=int)))}
    specs = description["modules"]
    return {
        "operation_mode": description["header"]["operation_mode"],
        "modules": [(specs[n]["header"]["full_spec"], specs[n]["init_params"]) for n in order],
        "steps": [order[steps[i]] for i in sorted(steps, key=int)],
        "connections": description["connections"],
        "inputs": description["inputs"],
        "outputs": description["outputs"],
        "ties": [[order.get(a), mine, order.get(b), theirs] for a, mine, b, theirs in description.get("ties", [])],
    }
