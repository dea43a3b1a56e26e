"""The outcome of comparing two neural types, with NeMo's names and values."""
from enum import Enum

__all__ = ["NeuralTypeComparisonResult"]


class NeuralTypeComparisonResult(Enum):
    """How an expected type (an input port's) relates to a given one (a tensor's); see `accepts`."""

    SAME = 0
    LESS = 1  # the first type is a subtype of the second
    GREATER = 2  # the first type is a supertype of the second: it accepts the second
    DIM_INCOMPATIBLE = 3  # same elements and axis kinds, but a fixed size differs (a resize might fix it)
    TRANSPOSE_SAME = 4  # same elements; a transpose and/or converting lists <-> tensors makes them SAME
    CONTAINER_SIZE_MISMATCH = 5  # same elements and axes, but a list axis has another length
    INCOMPATIBLE = 6  # unrelated elements, other rank or axis kinds, or axes off while elements not SAME
    SAME_TYPE_INCOMPATIBLE_PARAMS = 7

    @property
    def accepts(self) -> bool:
        """True when a port of the first type may consume a tensor of the second."""
        return self in (NeuralTypeComparisonResult.SAME, NeuralTypeComparisonResult.GREATER)
