"""What a deployment export writes: NeMo 0.11's format names, defined where every layer can import them."""
from __future__ import annotations

from enum import Enum

__all__ = ["DeploymentFormat"]


class DeploymentFormat(Enum):
    """What `NeuralModuleFactory.deployment_export` writes (NeMo 0.11's names); ``AUTO`` picks it from the
    output's extension: ``.onnx`` ONNX, ``.ts``/``.pt`` TorchScript, ``.pth``/``.bin`` PyTorch weights + YAML."""

    AUTO = 0
    PYTORCH = 1
    TORCHSCRIPT = 2
    ONNX = 3
