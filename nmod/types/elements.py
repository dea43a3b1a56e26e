"""Element types: what the numbers in a tensor mean. Compatibility is decided by subclassing."""
from __future__ import annotations

from .comparison import NeuralTypeComparisonResult

__all__ = [
    "ElementType",
    "VoidType",
    "ChannelType",
    "EmbeddedTextType",
    "LogitsType",
    "LogprobsType",
    "ProbsType",
    "LabelsType",
    "LengthsType",
    "MaskType",
    "LossType",
    "PredictionsType",
    "IndexType",
    "StringType",
    "RegressionValuesType",
]


class ElementType:
    """Base of all element types.

    A subclass is a more specific meaning of its parent: a port that expects `ChannelType` accepts an
    `EmbeddedTextType`, but not the other way round. `type_parameters` holds values that must also
    agree (for example a number of classes); two equal classes with different parameters compare as
    SAME_TYPE_INCOMPATIBLE_PARAMS.
    """

    def __init__(self, **type_parameters):
        self._type_parameters = dict(type_parameters)

    @property
    def type_parameters(self) -> dict:
        return dict(self._type_parameters)

    def __str__(self) -> str:
        if self._type_parameters:
            params = ", ".join(f"{k}={v!r}" for k, v in sorted(self._type_parameters.items()))
            return f"{type(self).__name__}({params})"
        return type(self).__name__

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._type_parameters == other._type_parameters

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self._type_parameters.items()))))

    def compare(self, second: "ElementType") -> NeuralTypeComparisonResult:
        """How this (expected) element type relates to `second` (given)."""
        first_t, second_t = type(self), type(second)
        if first_t is second_t:
            if self._type_parameters != second._type_parameters:
                return NeuralTypeComparisonResult.SAME_TYPE_INCOMPATIBLE_PARAMS
            return NeuralTypeComparisonResult.SAME
        if issubclass(first_t, second_t):
            return NeuralTypeComparisonResult.LESS
        if issubclass(second_t, first_t):
            return NeuralTypeComparisonResult.GREATER
        return NeuralTypeComparisonResult.INCOMPATIBLE


class VoidType(ElementType):
    """Accepts and is accepted by everything: the element type of 'anything goes' ports."""

    def compare(self, second: ElementType) -> NeuralTypeComparisonResult:
        return NeuralTypeComparisonResult.SAME


class ChannelType(ElementType):
    """Generic per-position features or ids: hidden states, token ids, type ids."""


class EmbeddedTextType(ChannelType):
    """Vectors that embed text tokens."""


class LogitsType(ElementType):
    """Unnormalised scores."""


class LogprobsType(ElementType):
    """Log-probabilities."""


class ProbsType(ElementType):
    """Probabilities."""


class LabelsType(ElementType):
    """Targets: class ids or positions."""


class LengthsType(ElementType):
    """Lengths of sequences."""


class MaskType(ElementType):
    """1 for real positions, 0 for padding."""


class LossType(ElementType):
    """A value to minimise."""


class PredictionsType(LabelsType):
    """Predicted labels: usable wherever labels are."""


class RegressionValuesType(ElementType):
    """Real-valued targets or predictions."""


class IndexType(ElementType):
    """Indices into a dataset or a vocabulary."""


class StringType(ElementType):
    """Text."""
