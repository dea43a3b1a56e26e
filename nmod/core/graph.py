"""Graph: the DAG behind a list of output tensors, planned once, exportable to DOT and YAML."""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

from . import config as cfg
from .errors import ConfigFieldError, GraphCycleError, GraphError, NmodError
from .module import NeuralModule
from .tensor import ModuleCall, NmTensor

__all__ = ["Graph"]


class Graph:
    """Everything needed to compute `outputs`: the module calls in a valid execution order.

    The plan is computed once here, not per step; executors walk `calls` in order.
    """

    def __init__(self, outputs: Sequence[NmTensor]):
        outputs = list(outputs)
        for t in outputs:
            if not isinstance(t, NmTensor):
                raise GraphError(f"Graph outputs must be NmTensors from wiring modules, got {t!r}")
        self.outputs: List[NmTensor] = outputs
        self.calls: List[ModuleCall] = _topological_order(outputs)
        names: Dict[str, int] = {}
        for m in self.modules:
            if m.name in names:
                raise GraphError(f"Two different modules are both named '{m.name}'; give them distinct names")
            names[m.name] = 1
        self._labels: Dict[int, str] = {}
        uses: Dict[int, int] = {}
        for c in self.calls:
            k = uses.get(id(c.module), 0)
            uses[id(c.module)] = k + 1
            self._labels[c.uid] = c.module.name if k == 0 else f"{c.module.name}#{k}"

    def label(self, call: ModuleCall) -> str:
        """A call's id within this graph: the module name, '#k' appended for its k-th re-use."""
        return self._labels[call.uid]

    def tensor_name(self, tensor: NmTensor) -> str:
        return f"{self.label(tensor.call)}.{tensor.port}"

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
        """A plain description (modules' configs, edges, outputs) used for equality and export."""
        return {
            "modules": {m.name: m.to_config_dict() for m in self.modules},
            "calls": [
                {
                    "id": self.label(c),
                    "module": c.module.name,
                    "inputs": {p: self.tensor_name(t) for p, t in sorted(c.inputs.items())},
                }
                for c in self.calls
            ],
            "outputs": [self.tensor_name(t) for t in self.outputs],
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        mine, theirs = self.structure(), other.structure()
        for s in (mine, theirs):
            for m in s["modules"].values():
                m["header"].pop("nmod_version", None)
        return mine == theirs

    def summary(self) -> str:
        """A table of calls: module, class, input edges, output ports and parameter counts."""
        rows = [("call", "class", "inputs", "outputs", "params")]
        for c in self.calls:
            inputs = ", ".join(f"{p}<-{self.tensor_name(t)}" for p, t in c.inputs.items()) or "-"
            rows.append((self.label(c), type(c.module).__name__, inputs, ", ".join(c.outputs), f"{c.module.num_weights:,}"))
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
            lines.append(f'  "{self.label(c)}" [label="{self.label(c)}\\n{type(c.module).__name__}"];')
        for c in self.calls:
            for port, t in c.inputs.items():
                lines.append(f'  "{self.label(t.call)}" -> "{self.label(c)}" [label="{t.port} -> {port}\\n{t.ntype}"];')
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
        order = _order_call_specs(calls, where)
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


def _topological_order(outputs: Sequence[NmTensor]) -> List[ModuleCall]:
    order: List[ModuleCall] = []
    state: Dict[int, str] = {}  # uid -> "visiting" | "done"

    def visit(call: ModuleCall, path: List[ModuleCall]) -> None:
        mark = state.get(call.uid)
        if mark == "done":
            return
        if mark == "visiting":
            cycle = path[path.index(call):] + [call]
            raise GraphCycleError("Module calls form a cycle: " + " -> ".join(c.label for c in cycle))
        state[call.uid] = "visiting"
        for tensor in call.inputs.values():
            visit(tensor.call, path + [call])
        state[call.uid] = "done"
        order.append(call)

    for t in outputs:
        visit(t.call, [])
    return order


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


def _order_call_specs(calls: Dict[str, dict], where: str) -> List[str]:
    order: List[str] = []
    state: Dict[str, str] = {}

    def visit(call_id: str, path: List[str]) -> None:
        if state.get(call_id) == "done":
            return
        if state.get(call_id) == "visiting":
            cycle = path[path.index(call_id):] + [call_id]
            raise GraphCycleError(f"{where}: calls form a cycle: " + " -> ".join(cycle))
        state[call_id] = "visiting"
        for ref in calls[call_id]["inputs"].values():
            visit(_split_ref(ref, where)[0], path + [call_id])
        state[call_id] = "done"
        order.append(call_id)

    for call_id in calls:
        visit(call_id, [])
    return order
