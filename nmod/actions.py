"""The backend-agnostic action interface: what a user can ask an executor to do with a graph."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["Actions", "OptimizationParams", "OPTIMIZATION_PARAM_KEYS"]

OPTIMIZATION_PARAM_KEYS = (
    "num_epochs",
    "max_steps",
    "lr",
    "weight_decay",
    "betas",
    "eps",
    "momentum",
    "grad_norm_clip",
)
OptimizationParams = Dict[str, Any]


class Actions(ABC):
    """Train, evaluate and infer a graph of neural modules. `nmod.backends.pytorch.PtActions` implements it."""

    @abstractmethod
    def train(
        self,
        tensors_to_optimize: Optional[Sequence[Any]],
        optimizer: Any = "adam",
        optimization_params: Optional[OptimizationParams] = None,
        callbacks: Optional[Sequence[Any]] = None,
        lr_policy: Any = None,
        batches_per_step: int = 1,
        stop_on_nan_loss: bool = False,
        training_graph: Any = None,
    ) -> None:
        """Optimize the sum of `tensors_to_optimize` (scalar LossType tensors); with only a
        `training_graph` (a `NeuralGraph`), the loss outputs of that graph."""

    @abstractmethod
    def eval(self, callbacks: Sequence[Any], checkpoint_dir: Optional[str] = None) -> None:
        """Run each evaluator callback once over its data (after loading `checkpoint_dir`'s weights)."""

    @abstractmethod
    def infer(
        self,
        tensors: Sequence[Any],
        checkpoint_dir: Optional[str] = None,
        *,
        cache: bool = False,
        use_cache: bool = False,
        offload_to_cpu: bool = True,
    ) -> List[List[Any]]:
        """Compute `tensors` over their data layer's dataset: one list of batch values per tensor.

        `cache=True` keeps the data layer's batches in memory after loading them; a later call with
        `use_cache=True` computes from those kept batches instead of loading the data again (an error
        if none were kept for that data layer). Pass at most one of the two. `offload_to_cpu` moves
        each result to the CPU as it is computed.
        """


def graph_tensors(tensors: Any, graph: Any = None, losses: bool = False) -> List[Any]:
    """The tensors an action runs: given ones (one, a list, or a `NeuralGraph` for its outputs), else,
    for training, the `LossType` outputs of `graph`."""
    from nmod.core.neural_graph import NeuralGraph
    from nmod.types import LossType

    if isinstance(tensors, NeuralGraph):
        graph, tensors = tensors, None
    if tensors is not None:
        return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    if graph is None:
        raise ValueError("pass the tensors to run (tensors_to_optimize / tensors), or a NeuralGraph")
    outputs = list(graph.outputs.tensors.values())
    if losses:
        outputs = [t for t in outputs if isinstance(t.ntype.elements_type, LossType) and t.ntype.axes is None]
        if not outputs:
            raise ValueError(f"graph '{graph.name}' has no LossType output to train on; bind its loss as an output "
                             f"or pass tensors_to_optimize")
    return outputs


def validate_optimization_params(params: Optional[OptimizationParams]) -> OptimizationParams:
    """Fail before training starts, with the key that is wrong and what was expected."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(OPTIMIZATION_PARAM_KEYS))
    if unknown:
        raise ValueError(f"Unknown optimization_params {unknown}; known keys are {list(OPTIMIZATION_PARAM_KEYS)}")
    if "lr" not in params:
        raise ValueError("optimization_params needs 'lr' (the peak learning rate)")
    if not isinstance(params["lr"], (int, float)) or params["lr"] <= 0:
        raise ValueError(f"optimization_params['lr'] must be a positive number, got {params['lr']!r}")
    has_epochs, has_steps = params.get("num_epochs") is not None, params.get("max_steps") is not None
    if has_epochs == has_steps:
        raise ValueError(
            "optimization_params needs exactly one of 'num_epochs' and 'max_steps' "
            f"(got {'both' if has_epochs else 'neither'})"
        )
    key = "num_epochs" if has_epochs else "max_steps"
    if not isinstance(params[key], int) or params[key] <= 0:
        raise ValueError(f"optimization_params['{key}'] must be a positive int, got {params[key]!r}")
    return params
