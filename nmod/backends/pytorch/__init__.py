"""The PyTorch backend: modules with weights, data layers, and the executor."""
from .module import DataLayerNM, TrainableNM
from .serialization import UnsafeCheckpointError, atomic_torch_save, load_weights

__all__ = ["TrainableNM", "DataLayerNM", "atomic_torch_save", "load_weights", "UnsafeCheckpointError"]

from nmod.core import weights as _weights  # noqa: E402

_weights.register(atomic_torch_save, load_weights)  # NeuralGraph.save_to / restore_from write through these
