"""nmod: fine-tune pretrained BERT-family encoders by composing typed neural modules."""
from .core import *  # noqa: F401,F403
from .core import __all__ as _core_names
from .types import *  # noqa: F401,F403
from .types import __all__ as _type_names
from .factory import Backend, DeploymentFormat, DeviceType, NeuralModuleFactory
from .version import __version__

__all__ = [*_core_names, *_type_names, "__version__", "NeuralModuleFactory", "DeviceType", "Backend",
           "DeploymentFormat"]
