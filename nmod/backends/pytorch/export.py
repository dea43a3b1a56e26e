"""Exporting a module or a graph for deployment: TorchScript, ONNX, or PyTorch weights + config.

``deployment_export`` is NeMo 0.11's ``nf.deployment_export(module, output, d_format, input_example)``,
which also takes a ``Graph`` (an encoder with its head, say). What is exported:

* a **module**: its ``forward``, inputs its input ports (those ``input_example`` gives), outputs its
  output ports;
* a **graph**: every call after its one source (the data layer), inputs the source's ports that the
  graph reads, outputs the graph's outputs (named ``<call>.<port>``, e.g. ``classifier.logits``).

The batch and time axes of every port (``B`` and ``T`` in its neural type) are dynamic in the
exported file, so it runs on other batch sizes and sequence lengths than the example's.

TorchScript and ONNX are traced, once, on ``input_example``, in eval mode. Tracing records one path
through the Python code, so the export is made to take the path that is right for every input: each
module's ``tracing()`` hook is entered around the trace (the encoders run their padded attention
there, since the packed path's layout depends on the mask's values, which a trace would freeze), and
a ``MaskType`` input that masks nothing in the example gets one padding position for the trace, so
the masking is recorded rather than skipped. Both only change what is traced, never the weights or
the example given.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch

from nmod.core import DeploymentFormat, Graph, NeuralGraph, NeuralModule, NmodError, NmTensor, run_calls
from nmod.types import AxisKind, MaskType, NeuralType

__all__ = ["DeploymentFormat", "ExportError", "deployment_export", "ExportedGraph"]


# AUTO: output extension -> format.
EXTENSIONS = {".onnx": DeploymentFormat.ONNX, ".ts": DeploymentFormat.TORCHSCRIPT, ".pt": DeploymentFormat.TORCHSCRIPT,
              ".pth": DeploymentFormat.PYTORCH, ".bin": DeploymentFormat.PYTORCH}

# Names of the dynamic axes in an ONNX file, by axis kind.
DYNAMIC_AXES = {AxisKind.Batch: "batch", AxisKind.Time: "time"}


class ExportError(NmodError, ValueError):
    """The format, the example or the graph cannot be exported; the message says which and why."""


class ExportedGraph(torch.nn.Module):
    """A module or a graph as one ``nn.Module`` whose ``forward`` takes the inputs positionally (the
    order of ``input_names``) and returns a tuple in the order of ``output_names``: what tracers need."""

    def __init__(self, module_or_graph: NeuralModule | Graph, input_names: Optional[Sequence[str]] = None):
        super().__init__()
        if isinstance(module_or_graph, Graph):
            self._init_graph(module_or_graph)
        elif isinstance(module_or_graph, torch.nn.Module) and isinstance(module_or_graph, NeuralModule):
            self._init_module(module_or_graph, input_names)
        else:
            raise ExportError(f"deployment_export exports a neural module with weights or a Graph, got "
                              f"{type(module_or_graph).__name__}")
        # Registered as children so .eval(), .to() and state_dict() reach every module once.
        self.modules_by_name = torch.nn.ModuleDict(
            {m.name.replace(".", "_"): m for m in self._modules_in_order if isinstance(m, torch.nn.Module)})

    def _init_module(self, module: NeuralModule, input_names: Optional[Sequence[str]]) -> None:
        ports = module.input_ports
        names = list(ports) if input_names is None else [p for p in ports if p in input_names]
        self.input_names = names
        self.input_types: Dict[str, NeuralType] = {p: ports[p] for p in names}
        self.output_names = list(module.output_ports)
        self.output_types: Dict[str, NeuralType] = dict(module.output_ports)
        self._calls = None  # forward calls the one module, _modules_in_order[0]
        self._modules_in_order = [module]

    def _init_graph(self, graph: Graph) -> None:
        sources = graph.sources
        if len(sources) != 1:
            found = [f"{c.label} ({type(c.module).__name__})" for c in sources]
            raise ExportError(f"an exported graph needs exactly one source (its data layer), whose ports become the "
                              f"inputs; found {found}")
        source = sources[0]
        used = {t.port for c in graph.calls for t in c.inputs.values() if t.call is source}
        used |= {t.port for t in graph.outputs if t.call is source}
        self.input_names = [p for p in source.module.output_ports if p in used]
        self.input_types = {p: source.module.output_ports[p] for p in self.input_names}
        self.output_names = [t.name for t in graph.outputs]
        self.output_types = {t.name: t.ntype for t in graph.outputs}
        self._source = source
        self._calls = [c for c in graph.calls if c is not source]
        self._outputs = list(graph.outputs)
        not_torch = [f"{c.label} ({type(c.module).__name__})" for c in self._calls
                     if not isinstance(c.module, torch.nn.Module)]
        if not_torch:
            raise ExportError(f"calls {not_torch} are not PyTorch modules and cannot be traced")
        self._modules_in_order = [c.module for c in self._calls]

    def forward(self, *inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if self._calls is None:
            out = torch.nn.Module.__call__(self._modules_in_order[0], **dict(zip(self.input_names, inputs)))
            return tuple(out) if isinstance(out, tuple) else (out,)
        values: Dict[tuple, Any] = {(self._source.uid, p): v for p, v in zip(self.input_names, inputs)}
        run_calls(self._calls, values, lambda module, kwargs: torch.nn.Module.__call__(module, **kwargs))
        return tuple(values[(t.call.uid, t.port)] for t in self._outputs)

    def dynamic_axes(self) -> Dict[str, Dict[int, str]]:
        """``{name: {axis index: "batch" | "time"}}`` from the ports' neural types."""
        axes = {}
        for name, ntype in {**self.input_types, **self.output_types}.items():
            dims = {i: DYNAMIC_AXES[a.kind] for i, a in enumerate(ntype.axes or ()) if a.kind in DYNAMIC_AXES}
            if dims:
                axes[name] = dims
        return axes


def resolve_format(output: str | os.PathLike, d_format: DeploymentFormat | str) -> DeploymentFormat:
    given = d_format
    if isinstance(d_format, str):
        d_format = DeploymentFormat.__members__.get(d_format.upper())
    if not isinstance(d_format, DeploymentFormat):
        names = ", ".join(f"DeploymentFormat.{f.name}" for f in DeploymentFormat)
        raise ExportError(f"d_format must be one of {names}, got {given!r}")
    if d_format is DeploymentFormat.AUTO:
        suffix = Path(output).suffix.lower()
        if suffix not in EXTENSIONS:
            known = ", ".join(f"{ext} ({fmt.name})" for ext, fmt in EXTENSIONS.items())
            raise ExportError(f"DeploymentFormat.AUTO cannot tell the format of {str(output)!r} from its extension; "
                              f"name the format, or use one of {known}")
        d_format = EXTENSIONS[suffix]
    return d_format


def deployment_export(module_or_graph: NeuralModule | Graph | Sequence[NmTensor], output: str | os.PathLike,
                      d_format: DeploymentFormat | str = DeploymentFormat.AUTO, input_example: Any = None,
                      output_example: Any = None, *, opset_version: Optional[int] = None) -> Path:
    """Writes ``module_or_graph`` to ``output`` in ``d_format``; returns the path written.

    ``input_example``: the inputs to trace on, a dict ``{port: tensor}`` or a tuple in port order
    (NeMo's); needed for TorchScript and ONNX. ``output_example`` is accepted for NeMo's signature and
    ignored (the outputs are computed from the inputs). ``PYTORCH`` writes the weights (``output``)
    and, beside them, the config to rebuild the module or graph (``output`` + ``.yaml``).
    """
    del output_example
    if isinstance(module_or_graph, NeuralGraph):  # its bound inputs are the export's inputs
        module_or_graph = module_or_graph.graph
    if isinstance(module_or_graph, (list, tuple)) or isinstance(module_or_graph, NmTensor):
        tensors = [module_or_graph] if isinstance(module_or_graph, NmTensor) else list(module_or_graph)
        module_or_graph = Graph(tensors)
    d_format = resolve_format(output, d_format)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if d_format is DeploymentFormat.PYTORCH:
        return _export_pytorch(module_or_graph, output)
    names = _example_names(module_or_graph, input_example)
    wrapper = ExportedGraph(module_or_graph, names)
    example = _example_tuple(wrapper, input_example)
    with _tracing_mode(wrapper):
        traced_example = _with_masking_traced(wrapper, example)
        if d_format is DeploymentFormat.TORCHSCRIPT:
            _export_torchscript(wrapper, traced_example, output)
        else:
            _export_onnx(wrapper, traced_example, output, opset_version)
    return output


def _export_pytorch(module_or_graph: NeuralModule | Graph, output: Path) -> Path:
    from .serialization import atomic_torch_save

    config = Path(f"{output}.yaml")
    if isinstance(module_or_graph, Graph):
        module_or_graph.export_to_yaml(config)
        state = {m.name: m.state_dict() for m in module_or_graph.modules if isinstance(m, torch.nn.Module)}
    elif isinstance(module_or_graph, torch.nn.Module):
        module_or_graph.export_to_config(str(config))
        state = module_or_graph.state_dict()
    else:
        raise ExportError(f"DeploymentFormat.PYTORCH exports a module with weights or a Graph, got "
                          f"{type(module_or_graph).__name__}")
    atomic_torch_save(state, str(output))
    return output


def _example_names(module_or_graph: Any, input_example: Any) -> Optional[List[str]]:
    if input_example is None:
        raise ExportError("TorchScript and ONNX export trace the model: pass input_example, a dict {port: tensor} "
                          "(or a tuple of tensors in port order)")
    return list(input_example) if isinstance(input_example, Mapping) else None


def _example_tuple(wrapper: ExportedGraph, input_example: Any) -> Tuple[torch.Tensor, ...]:
    if isinstance(input_example, Mapping):
        unknown = sorted(set(input_example) - set(wrapper.input_names))
        if unknown:
            raise ExportError(f"input_example has {unknown}, which are not inputs of the export "
                              f"(its inputs: {wrapper.input_names})")
        missing = [n for n in wrapper.input_names if n not in input_example]
        if missing:
            raise ExportError(f"input_example lacks {missing} (the export's inputs: {wrapper.input_names})")
        example = tuple(input_example[n] for n in wrapper.input_names)
    else:
        example = tuple(input_example) if isinstance(input_example, (list, tuple)) else (input_example,)
        if len(example) != len(wrapper.input_names):
            raise ExportError(f"input_example has {len(example)} tensors for the {len(wrapper.input_names)} inputs "
                              f"{wrapper.input_names}; pass a dict {{port: tensor}} to give only some of them")
    for name, value in zip(wrapper.input_names, example):
        if not isinstance(value, torch.Tensor):
            raise ExportError(f"input_example[{name!r}] must be a torch.Tensor, got {type(value).__name__}")
    device = next(wrapper.parameters(), torch.empty(0)).device
    return tuple(t.to(device) for t in example)


@contextlib.contextmanager
def _tracing_mode(wrapper: ExportedGraph) -> Iterator[None]:
    """Eval mode and each module's ``tracing()`` hook while tracing; both undone afterwards."""
    was_training = wrapper.training
    wrapper.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.ExitStack() as hooks:
            for module in wrapper._modules_in_order:
                if hasattr(module, "tracing"):
                    hooks.enter_context(module.tracing())
            # The encoders' data-dependent branches (the mask check, the length check) are the ones this
            # module makes safe to trace (see its docstring); the tracer still warns about them.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning,
                                    module=r"nmod_nlp\.modules\.(encoders|heads)")
            yield
    finally:
        wrapper.train(was_training)


def _with_masking_traced(wrapper: ExportedGraph, example: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor, ...]:
    """A mask that hides nothing lets the encoders skip masking, and a trace would keep that shortcut for
    every input: give such a mask one padding position (the last token of the last row) for the trace."""
    out = list(example)
    for i, name in enumerate(wrapper.input_names):
        if isinstance(wrapper.input_types[name].elements_type, MaskType) and out[i].numel() and bool(out[i].all()):
            if out[i].dim() < 2 or out[i].shape[-1] < 2:
                raise ExportError(f"input_example[{name!r}] must have at least 2 positions, so that the export "
                                  f"records the masking; got shape {tuple(out[i].shape)}")
            out[i] = out[i].clone()
            out[i][(-1,) * out[i].dim()] = 0
    return tuple(out)


def _trace(wrapper: ExportedGraph, example: Tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    try:
        return torch.jit.trace(wrapper, example, check_trace=False, strict=False)
    except Exception as err:  # a tracer error names an op deep inside torch; say what was being traced
        raise ExportError(f"cannot trace {_describe(wrapper)}: {type(err).__name__}: "
                          f"{str(err).splitlines()[0][:300]}") from err


def _describe(wrapper: ExportedGraph) -> str:
    return f"modules {[m.name for m in wrapper._modules_in_order]} (inputs {wrapper.input_names})"


def _export_torchscript(wrapper: ExportedGraph, example: Tuple[torch.Tensor, ...], output: Path) -> None:
    traced = _trace(wrapper, example)
    traced.save(str(output))


def _export_onnx(wrapper: ExportedGraph, example: Tuple[torch.Tensor, ...], output: Path,
                 opset_version: Optional[int]) -> None:
    try:
        import onnx  # noqa: F401  (the TorchScript-based exporter writes with it)
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install 'nmod[export]'") from None
    try:
        # The TorchScript-based exporter: it traces like TORCHSCRIPT does and honours dynamic_axes. The
        # torch.export-based one (dynamo=True) refuses the encoders' data-dependent branches (the mask check).
        torch.onnx.export(wrapper, example, str(output), input_names=wrapper.input_names,
                          output_names=wrapper.output_names, dynamic_axes=wrapper.dynamic_axes(),
                          opset_version=opset_version, dynamo=False)
    except Exception as err:
        raise ExportError(f"cannot export {_describe(wrapper)} to ONNX: {type(err).__name__}: "
                          f"{str(err).splitlines()[0][:300] if str(err) else ''}") from err
