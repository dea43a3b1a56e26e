"""Graph: the DAG behind a list of output tensors, planned once, exportable to DOT and YAML."""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, TypeVar

from . import config as cfg
from .errors import ConfigFieldError, GraphCycleError, GraphError, NmodError
from .module import NeuralModule
from .tensor import ModuleCall, NmTensor

__all__ = ["Graph", "run_calls"]


class Graph:
    """Everything needed to compute `outputs`: the module calls in a valid execution order.

    The plan is computed once here, not per step; executors walk `calls` in order. Calls and tensors
    are named where they are wired (`ModuleCall.label`, `NmTensor.name`), not here, so a graph prints
    and exports the names its tensors have everywhere else.
    """

    def __init__(self, outputs: Sequence[NmTensor]):
        outputs = list(outputs)
        for t in outputs:
            if not isinstance(t, NmTensor):
                raise GraphError(f"Graph outputs must be NmTensors from wiring modules, got {t!r}")
        self.outputs: List[NmTensor] = outputs
        self.calls: List[ModuleCall] = _depth_first_order(
            [t.call for t in outputs], lambda c: [t.call for t in c.inputs.values()], lambda c: c.label,
            "Module calls form a cycle: ")
        modules: Dict[str, NeuralModule] = {}
        for m in self.modules:
            if modules.setdefault(m.name, m) is not m:
                raise GraphError(f"Two different modules are both named '{m.name}'; give them distinct names")
        labels: Dict[str, ModuleCall] = {}
        for c in self.calls:
            if labels.setdefault(c.label, c) is not c:
                raise GraphError(f"Two calls are both labelled '{c.label}' (a module is named like another "
                                 f"module's re-use); rename module '{c.module.name}'")

    def label(self, call: ModuleCall) -> str:
        """The call's name (`call.label`): the module name, '#k' appended for the module's k-th re-use."""
        return call.label

    def tensor_name(self, tensor: NmTensor) -> str:
        """The tensor's name (`tensor.name`): '<call label>.<port>'."""
        return tensor.name

    @property
    def modules(self) -> List[NeuralModule]:
        """Each module once, in first-call order (a shared module appears once)."""
        seen: Dict[int, NeuralModule] = {}
        for call in self.calls:
            seen.setdefault(id(call.module), call.module)
        return list(seen.values())

    @property
    def sources(self) -> List[ModuleCall]:
        return [c for c in self.calls if not c.inputs]

    def structure(self) -> dict:
        """A plain description (modules' configs, edges, outputs), as `export_to_yaml` writes it.

        Calls are identified by their labels and tensors by their names, as everywhere else.
        """
        return {
            "modules": {m.name: m.to_config_dict() for m in self.modules},
            "calls": [
                {"id": c.label, "module": c.module.name, "inputs": {p: t.name for p, t in sorted(c.inputs.items())}}
                for c in self.calls
            ],
            "outputs": [t.name for t in self.outputs],
        }

    def __eq__(self, other: object) -> bool:
        """Same modules (name, class, init params) wired the same way to the same outputs.

        Call labels are not compared: they count a module's calls over its life, so the same wiring
        rebuilt from a file (`import_from_yaml`) may number them differently.
        """
        if not isinstance(other, Graph):
            return NotImplemented
        return self._comparable() == other._comparable()

    def _comparable(self) -> dict:
        # Calls numbered by a walk that depends only on the wiring: outputs in order, inputs by port name.
        walk = _depth_first_order([t.call for t in self.outputs],
                                  lambda c: [c.inputs[p].call for p in sorted(c.inputs)], lambda c: c.label, "")
        position = {c.uid: i for i, c in enumerate(walk)}
        modules = {m.name: m.to_config_dict() for m in self.modules}
        for m in modules.values():
            m["header"].pop("nmod_version", None)
        return {
            "modules": modules,
            "calls": [(c.module.name, {p: (position[t.call.uid], t.port) for p, t in c.inputs.items()}) for c in walk],
            "outputs": [(position[t.call.uid], t.port) for t in self.outputs],
        }

    def summary(self) -> str:
        """A table of calls: module, class, input edges, output ports and parameter counts."""
        rows = [("call", "class", "inputs", "outputs", "params")]
        for c in self.calls:
            inputs = ", ".join(f"{p}<-{t.name}" for p, t in c.inputs.items()) or "-"
            rows.append((c.label, type(c.module).__name__, inputs, ", ".join(c.outputs), f"{c.module.num_weights:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        total = sum(m.num_weights for m in self.modules)
        lines.append(f"{len(self.modules)} modules, {len(self.calls)} calls, {total:,} parameters")
        return "\n".join(lines)

    def to_dot(self, path: Optional[str] = None) -> str:
        """Graphviz DOT text (render with `dot -Tpng`); also written to `path` when given."""
        lines = ["digraph nmod {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
        for c in self.calls:
            lines.append(f'  "{c.label}" [label="{c.label}\\n{type(c.module).__name__}"];')
        for c in self.calls:
            for port, t in c.inputs.items():
                lines.append(f'  "{t.call.label}" -> "{c.label}" [label="{t.port} -> {port}\\n{t.ntype}"];')
        lines.append("}")
        text = "\n".join(lines) + "\n"
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text

    # ---- YAML ---------------------------------------------------------------------------------
    def export_to_yaml(self, path: str | os.PathLike) -> None:
        """Modules' configs plus the edges; weights are saved separately (`save_to`)."""
        cfg.write_yaml(path, {"header": {**cfg.header(), "kind": "nmod.Graph"}, **self.structure()})

    @classmethod
    def import_from_yaml(cls, path: str | os.PathLike) -> "Graph":
        """Rebuild modules and re-wire their calls. Nothing is built unless the whole file is valid."""
        where = str(path)
        data = cfg.read_yaml(path)
        header = cfg.require(data, "header", dict, where)
        if header.get("kind") != "nmod.Graph":
            raise ConfigFieldError(f"{where}: header.kind must be 'nmod.Graph', found {header.get('kind')!r}")
        modules_cfg = cfg.require(data, "modules", dict, where)
        calls_cfg = cfg.require(data, "calls", list, where)
        outputs_cfg = cfg.require(data, "outputs", list, where)
        calls = _parse_calls(calls_cfg, modules_cfg, where)
        order = _depth_first_order(calls, lambda c: [_split_ref(r, where)[0] for r in calls[c]["inputs"].values()],
                                   str, f"{where}: calls form a cycle: ")
        unknown_outputs = [o for o in outputs_cfg if _split_ref(o, where)[0] not in calls]
        if unknown_outputs:
            raise ConfigFieldError(f"{where}: outputs {unknown_outputs} name calls that do not exist")

        modules = {
            name: NeuralModule.from_config_dict(spec, f"{where}: modules.{name}", name=name)
            for name, spec in modules_cfg.items()
        }
        produced: Dict[str, object] = {}
        for call_id in order:
            spec = calls[call_id]
            inputs = {}
            for port, ref in spec["inputs"].items():
                src, src_port = _split_ref(ref, where)
                inputs[port] = _output_port(produced[src], src_port, f"{where}: call '{call_id}' reads '{ref}'")
            try:
                produced[call_id] = modules[spec["module"]](**inputs)
            except NmodError as e:
                raise type(e)(f"{where}: call '{call_id}': {e}") from None
        outputs = []
        for ref in outputs_cfg:
            src, port = _split_ref(ref, where)
            outputs.append(_output_port(produced[src], port, f"{where}: output '{ref}'"))
        return cls(outputs)


def run_calls(calls: Sequence[ModuleCall], values: Dict[tuple, Any],
              invoke: Callable[[NeuralModule, dict], Any]) -> Dict[tuple, Any]:
    """The graph walk every executor and export shares: each call of ``calls`` in order, its inputs read
    from ``values`` (``{(call uid, port): value}``, the sources' outputs already in it) and its outputs
    added to it. ``invoke(module, kwargs)`` runs one module (the executor calls it, a tracer bypasses
    the wiring check)."""
    for call in calls:
        out = invoke(call.module, {p: values[(t.call.uid, t.port)] for p, t in call.inputs.items()})
        names = list(call.module.output_ports)
        values.update(zip(((call.uid, n) for n in names), out if len(names) > 1 else (out,)))
    return values


def _output_port(produced: object, port: str, where: str) -> NmTensor:
    """Pick `port` out of a call's result: one NmTensor, or a namedtuple of them."""
    tensors = produced if isinstance(produced, tuple) else (produced,)
    for t in tensors:
        if t.port == port:
            return t
    raise ConfigFieldError(f"{where}, but that call has no output port '{port}' (it has {[t.port for t in tensors]})")


def _split_ref(ref: object, where: str) -> tuple[str, str]:
    if not isinstance(ref, str) or "." not in ref:
        raise ConfigFieldError(f"{where}: a tensor reference must look like '<call id>.<port>', found {ref!r}")
    call_id, _, port = ref.rpartition(".")
    return call_id, port


def _parse_calls(calls_cfg: list, modules_cfg: dict, where: str) -> Dict[str, dict]:
    calls: Dict[str, dict] = {}
    for i, spec in enumerate(calls_cfg):
        here = f"{where}: calls[{i}]"
        if not isinstance(spec, dict):
            raise ConfigFieldError(f"{here}: expected a mapping, found {type(spec).__name__}")
        call_id = cfg.require(spec, "id", str, here)
        module = cfg.require(spec, "module", str, here)
        inputs = spec.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise ConfigFieldError(f"{here}: 'inputs' must be a mapping of port -> '<call id>.<port>'")
        if module not in modules_cfg:
            raise ConfigFieldError(f"{here}: module '{module}' is not defined under 'modules'")
        if call_id in calls:
            raise ConfigFieldError(f"{here}: duplicate call id '{call_id}'")
        calls[call_id] = {"module": module, "inputs": inputs}
    for call_id, spec in calls.items():
        for ref in spec["inputs"].values():
            src, _ = _split_ref(ref, where)
            if src not in calls:
                raise ConfigFieldError(f"{where}: call '{call_id}' reads '{ref}' but no call '{src}' exists")
    return calls


Node = TypeVar("Node")


def _depth_first_order(roots: Iterable[Node], inputs_of: Callable[[Node], Iterable[Node]],
                       label: Callable[[Node], str], cycle_message: str) -> List[Node]:
    """Every node reachable from `roots`, each after the nodes it reads: a post-order depth-first walk.

    Walks module calls in memory and call ids read from a graph file alike. A cycle raises
    GraphCycleError: `cycle_message` followed by the loop, e.g. "a -> b -> a".
    """
    order: List[Node] = []
    done: set = set()
    path: List[Node] = []  # the nodes being visited, outermost first

    def visit(node: Node) -> None:
        if node in done:
            return
        if node in path:
            cycle = path[path.index(node):] + [node]
            raise GraphCycleError(cycle_message + " -> ".join(label(n) for n in cycle))
        path.append(node)
        for source in inputs_of(node):
            visit(source)
        path.pop()
        done.add(node)
        order.append(node)

    for root in roots:
        visit(root)
    return order
