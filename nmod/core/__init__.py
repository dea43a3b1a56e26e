"""The framework core: modules, graph tensors, graphs, config I/O. No deep-learning framework here."""
from .context import Context, debug_mode, default_context
from .decorators import add_port_docs, deprecated
from .deployment import DeploymentFormat
from .errors import *  # noqa: F401,F403
from .errors import __all__ as _error_names
from .graph import Graph, run_calls
from .module import NeuralModule
from .neural_graph import NeuralGraph, OperationMode
from .tensor import ModuleCall, NmTensor

__all__ = [
    "Context",
    "debug_mode",
    "default_context",
    "add_port_docs",
    "deprecated",
    "DeploymentFormat",
    "Graph",
    "run_calls",
    "NeuralGraph",
    "OperationMode",
    "NeuralModule",
    "ModuleCall",
    "NmTensor",
    *_error_names,
]
