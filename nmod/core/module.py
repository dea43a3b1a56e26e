"""NeuralModule: a unit with typed ports. Calling it on graph tensors wires a DAG; on data, runs it."""
from __future__ import annotations

import inspect
from abc import ABC
from collections import namedtuple
from functools import lru_cache
from typing import Any, Dict, Optional

from nmod.types import NeuralType

from . import config as cfg
from .context import Context, default_context
from .errors import (
    ConfigClassMismatchError,
    ConfigFieldError,
    NeuralPortMissingError,
    NeuralPortNameMismatchError,
    NeuralPortNmTensorMismatchError,
    NeuralTensorShapeError,
)
from .tensor import ModuleCall, NmTensor

__all__ = ["NeuralModule"]


class NeuralModule(ABC):
    """Base of every module: declares `input_ports` and `output_ports` as `Dict[str, NeuralType]`.

    The arguments a subclass's `__init__` was called with are captured automatically (with defaults
    filled in) as `init_params`, so `export_to_config` can write them without every subclass
    re-declaring them. Keep them primitives (paths, names, numbers) for that reason.

    Weights, `freeze()` and `save_to()` belong to a backend: see `nmod.backends.pytorch.TrainableNM`.
    """

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        try:
            bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        except TypeError:
            bound = None  # __init__ itself will raise the usual, clearer TypeError
        if bound is not None:
            bound.apply_defaults()
            params = dict(bound.arguments)
            params.pop(next(iter(params)))  # self
            for pname, p in inspect.signature(cls.__init__).parameters.items():
                if p.kind is inspect.Parameter.VAR_KEYWORD:
                    params.update(params.pop(pname, {}))
                elif p.kind is inspect.Parameter.VAR_POSITIONAL and params.get(pname) == ():
                    params.pop(pname)
            params.pop("name", None)
            object.__setattr__(self, "_init_params", params)
        return self

    def __init__(self, name: Optional[str] = None, context: Optional[Context] = None):
        self._context = context or default_context
        self._name = name or self._context.unique_name(type(self).__name__)
        self._calls: list[ModuleCall] = []
        self.operation_mode = None  # set by the NeuralGraph a call of this module is recorded in
        self._context.modules[self._name] = self

    #: Other names a port answers to (old name -> port name), so that scripts written for another
    #: spelling still run: NeMo's data layers called the token types ``input_type_ids``, say. Inputs
    #: may be passed by either name; a call's outputs can be read by either.
    PORT_ALIASES: Dict[str, str] = {}

    # ---- declarations -------------------------------------------------------------------------
    @property
    def input_ports(self) -> Dict[str, NeuralType]:
        return {}

    @property
    def output_ports(self) -> Dict[str, NeuralType]:
        return {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def init_params(self) -> Dict[str, Any]:
        return dict(getattr(self, "_init_params", {}))

    @property
    def num_weights(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # ---- weights: implemented by a backend --------------------------------------------------
    def freeze(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no weights to freeze")

    def unfreeze(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no weights to unfreeze")

    def save_to(self, path: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no weights to save")

    def restore_from(self, path: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no weights to restore")

    def _eager_call(self, **kwargs):
        raise NotImplementedError(
            f"{type(self).__name__} cannot run eagerly; call it on graph tensors to wire a graph"
        )

    # ---- calling: wire or run ---------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if args:
            raise TypeError(
                f"{self.name}: call modules with keyword port names, e.g. "
                f"{self.name}({', '.join(f'{p}=...' for p in self.input_ports)})"
            )
        if self.PORT_ALIASES:
            ports = self.input_ports
            kwargs = {self.PORT_ALIASES.get(k, k) if k not in ports else k: v for k, v in kwargs.items()}
        graph_inputs = [k for k, v in kwargs.items() if isinstance(v, NmTensor)]
        if graph_inputs or not kwargs:
            if len(graph_inputs) != len(kwargs):
                eager = sorted(set(kwargs) - set(graph_inputs))
                raise TypeError(f"{self.name}: cannot mix graph tensors and real data (ports {eager})")
            return self._wire(kwargs)
        self._check_port_names(kwargs)
        if self._context.debug:
            self._check_shapes(kwargs, self.input_ports, "input")
        result = self._eager_call(**kwargs)
        if self._context.debug:
            outputs = result if isinstance(result, tuple) else (result,)
            self._check_shapes(dict(zip(self.output_ports, outputs)), self.output_ports, "output")
        if isinstance(result, tuple) and len(result) > 1:  # read by name, as a wired call's outputs are
            ports = tuple(self.output_ports)
            if len(ports) == len(result):
                return _outputs_type(type(self).__name__, ports, self._output_aliases(ports))(*result)
        return result

    def _check_port_names(self, kwargs: Dict[str, Any]) -> None:
        ports = self.input_ports
        unknown = [k for k in kwargs if k not in ports]
        if unknown:
            raise NeuralPortNameMismatchError(
                f"{self.name} ({type(self).__name__}) has no input port(s) {unknown}; "
                f"its input ports are {list(ports)}"
            )
        missing = [p for p, t in ports.items() if p not in kwargs and not t.optional]
        if missing:
            raise NeuralPortMissingError(
                f"{self.name} ({type(self).__name__}) needs input port(s) {missing}; "
                f"optional ports are {[p for p, t in ports.items() if t.optional]}"
            )

    def _wire(self, inputs: Dict[str, NmTensor]):
        self._check_port_names(inputs)
        ports = self.input_ports
        for port, tensor in inputs.items():
            if tensor.ntype is None:  # a NeuralGraph's input, not wired yet: it takes this port's type
                tensor.call.module.bind_input(tensor, ports[port])
                continue
            result = ports[port].compare(tensor.ntype)
            if not result.accepts:
                # NeMo grades another rank or set of axes INCOMPATIBLE, as it does unrelated meanings;
                # say which of the two it is, so the reader looks at the right half of the types.
                elements_fit = ports[port].elements_type.compare(tensor.ntype.elements_type).accepts
                raise NeuralPortNmTensorMismatchError(
                    f"{type(self).__name__}.{port} (module '{self.name}') expects {ports[port]} but "
                    f"{type(tensor.producer).__name__}.{tensor.port} (module '{tensor.producer.name}') "
                    f"gives {tensor.ntype}: {result.name}" + (" (the axes differ)" if elements_fit else "")
                )
        call = ModuleCall(module=self, inputs=dict(inputs), index=len(self._calls))
        call.outputs = {port: NmTensor(call, port, ntype) for port, ntype in self.output_ports.items()}
        self._calls.append(call)
        graph = self._context.active_graph
        if graph is not None:
            graph.record(call)
        for port, tensor in inputs.items():
            tensor.consumers.append((call.step, self.name, port))
        outputs = list(call.outputs.values())
        if len(outputs) == 1:
            return outputs[0]
        ports = tuple(call.outputs)
        return _outputs_type(type(self).__name__, ports, self._output_aliases(ports))(*outputs)

    def _output_aliases(self, ports: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        return tuple((old, new) for old, new in self.PORT_ALIASES.items() if new in ports and old not in ports)

    def _check_shapes(self, values: Dict[str, Any], ports: Dict[str, NeuralType], kind: str) -> None:
        for port, value in values.items():
            axes = ports[port].axes if port in ports else None
            shape = getattr(value, "shape", None)
            if axes is None or shape is None or any(a.is_list for a in axes):
                continue
            if len(shape) != len(axes):
                raise NeuralTensorShapeError(
                    f"{self.name}.{port} ({kind}) declares {len(axes)} axes {ports[port].axes_str} "
                    f"but got a tensor of shape {tuple(shape)}"
                )
            for i, (axis, size) in enumerate(zip(axes, shape)):
                if axis.size is not None and axis.size != size:
                    raise NeuralTensorShapeError(
                        f"{self.name}.{port} ({kind}) axis {i} ({axis}) must have size {axis.size}, "
                        f"got {size} in shape {tuple(shape)}"
                    )

    # ---- config I/O -------------------------------------------------------------------------
    def export_to_config(self, path: str) -> None:
        """Write the class path and init params to YAML; fails if a param is not a primitive."""
        cfg.write_yaml(path, self.to_config_dict())

    def to_config_dict(self) -> Dict[str, Any]:
        where = f"{type(self).__name__} '{self.name}' init param"
        params = {k: cfg.to_primitive(v, f"{where} '{k}'") for k, v in self.init_params.items()}
        return {
            "header": {**cfg.header(), "full_spec": cfg.class_path(type(self))},
            "init_params": params,
        }

    @classmethod
    def import_from_config(
        cls, path: str, overwrite_params: Optional[Dict[str, Any]] = None, name: Optional[str] = None
    ) -> "NeuralModule":
        """Rebuild a module from a file written by `export_to_config`.

        Called on a subclass, the file must describe that class or one of its subclasses.
        """
        return cls.from_config_dict(cfg.read_yaml(path), str(path), overwrite_params, name)

    @classmethod
    def from_config_dict(
        cls,
        data: Dict[str, Any],
        where: str = "config",
        overwrite_params: Optional[Dict[str, Any]] = None,
        name: Optional[str] = None,
    ) -> "NeuralModule":
        if not isinstance(data, dict):
            raise ConfigFieldError(f"{where}: expected a mapping with 'header' and 'init_params', found {data!r}")
        header = cfg.require(data, "header", dict, where)
        spec = cfg.require(header, "full_spec", str, f"{where}: header")
        params = cfg.require(data, "init_params", dict, where) if "init_params" in data else {}
        target = cfg.import_class(spec, where)
        if not (isinstance(target, type) and issubclass(target, NeuralModule)):
            raise ConfigFieldError(f"{where}: '{spec}' is not a NeuralModule")
        if not issubclass(target, cls):
            raise ConfigClassMismatchError(
                f"{where} describes a {spec}, not a {cfg.class_path(cls)} (or a subclass of it)"
            )
        params = {**params, **(overwrite_params or {})}
        if name is not None:
            params["name"] = name
        try:
            return target(**params)
        except TypeError as e:
            raise ConfigFieldError(f"{where}: init_params do not fit {spec}: {e}") from None


@lru_cache(maxsize=None)
def _outputs_type(module_class: str, ports: tuple[str, ...], aliases: tuple[tuple[str, str], ...] = ()) -> type:
    """The namedtuple a call of a module with several output ports returns: ``out.<port>``, and
    ``out.<alias>`` for each ``(alias, port)`` of ``aliases``."""
    base = namedtuple(f"{module_class}Output", ports)
    if not aliases:
        return base
    extra = {old: property(lambda self, new=new: getattr(self, new), doc=f"{new}, by its older name")
             for old, new in aliases}
    return type(base.__name__, (base,), {"__slots__": (), **extra})
