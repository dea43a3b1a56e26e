"""Neural types: axes with meanings plus element types, compared at wiring time.

This layer imports no deep-learning framework, so it can be read, tested and reused on its own.
"""
from .axes import AxisKind, AxisKindAbstract, AxisType
from .comparison import NeuralTypeComparisonResult
from .elements import *  # noqa: F401,F403
from .elements import __all__ as _element_names
from .neural_type import NeuralType

__all__ = [
    "AxisKind",
    "AxisKindAbstract",
    "AxisType",
    "NeuralType",
    "NeuralTypeComparisonResult",
    *_element_names,
]
