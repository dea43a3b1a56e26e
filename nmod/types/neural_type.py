"""NeuralType = axes + element type; the unit that wiring checks compare."""
from __future__ import annotations

import itertools
from typing import Iterable, Optional, Sequence

from .axes import AxisKind, AxisType
from .comparison import NeuralTypeComparisonResult
from .elements import ElementType, VoidType

__all__ = ["NeuralType"]

R = NeuralTypeComparisonResult


class NeuralType:
    """The declared type of a module port.

    Args:
        axes: None for a scalar or an 'anything' port, else a sequence of `AxisType` or short strings
            such as ``("B", "T", "D")``.
        elements_type: what the values mean; `VoidType()` with ``axes=None`` accepts anything.
        optional: an optional input port may be left unconnected.
    """

    def __init__(
        self,
        axes: Optional[Sequence[AxisType | str] | str] = None,
        elements_type: Optional[ElementType] = None,
        optional: bool = False,
    ):
        if elements_type is None:
            elements_type = VoidType()
        if not isinstance(elements_type, ElementType):
            raise TypeError(
                f"elements_type must be an ElementType instance, got {elements_type!r}"
                " (did you pass the class instead of an instance, e.g. ChannelType instead of ChannelType()?)"
            )
        self.axes: Optional[tuple[AxisType, ...]] = None if axes is None else _parse_axes(axes)
        self.elements_type = elements_type
        self.optional = optional

    def compare(self, second: "NeuralType") -> NeuralTypeComparisonResult:
        """How this type (what a port expects) relates to `second` (what a tensor carries).

        GREATER means this type is more general and accepts `second`; SAME accepts too.
        """
        if not isinstance(second, NeuralType):
            raise TypeError(f"Can only compare a NeuralType with a NeuralType, got {type(second).__name__}")
        if self.axes is None and isinstance(self.elements_type, VoidType):
            return R.SAME
        elements = self.elements_type.compare(second.elements_type)
        if elements in (R.INCOMPATIBLE, R.SAME_TYPE_INCOMPATIBLE_PARAMS):
            return elements
        axes = _compare_axes(self.axes, second.axes)
        return elements if axes is R.SAME else axes

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, NeuralType)
            and self.axes == other.axes
            and self.elements_type == other.elements_type
            and self.optional == other.optional
        )

    def __hash__(self) -> int:
        return hash((self.axes, self.elements_type, self.optional))

    @property
    def axes_str(self) -> str:
        if self.axes is None:
            return "()"
        return "(" + ", ".join(repr(a) for a in self.axes) + ")"

    def __str__(self) -> str:
        text = f"{self.axes_str} {self.elements_type}"
        return text + " (optional)" if self.optional else text

    def __repr__(self) -> str:
        return f"NeuralType({self})"


def _parse_axes(axes: Iterable[AxisType | str] | str) -> tuple[AxisType, ...]:
    if isinstance(axes, str):
        axes = (axes,)
    parsed = []
    for axis in axes:
        if isinstance(axis, AxisType):
            parsed.append(axis)
        elif isinstance(axis, (str, AxisKind)):
            parsed.append(AxisType(axis))
        else:
            raise TypeError(f"An axis must be an AxisType or a string like 'B', got {axis!r}")
    return tuple(parsed)


def _axis_accepts(expected: AxisType, given: AxisType) -> bool:
    if expected.kind is AxisKind.Any:
        return True
    return (
        expected.kind == given.kind
        and expected.is_list == given.is_list
        and (expected.size is None or expected.size == given.size)
    )


def _compare_axes(
    expected: Optional[tuple[AxisType, ...]], given: Optional[tuple[AxisType, ...]]
) -> NeuralTypeComparisonResult:
    if expected is None and given is None:
        return R.SAME
    if expected is None or given is None or len(expected) != len(given):
        return R.DIM_INCOMPATIBLE
    if all(_axis_accepts(e, g) for e, g in zip(expected, given)):
        return R.SAME
    kinds_match = all(e.kind == g.kind or e.kind is AxisKind.Any for e, g in zip(expected, given))
    if kinds_match:
        only_lists_differ = all(
            _axis_accepts(e, g) or (e.is_list and g.is_list) for e, g in zip(expected, given)
        )
        return R.CONTAINER_SIZE_MISMATCH if only_lists_differ else R.DIM_INCOMPATIBLE
    if _any_permutation_accepts(list(expected), list(given)):
        return R.TRANSPOSE_SAME
    return R.DIM_INCOMPATIBLE


def _any_permutation_accepts(expected: list[AxisType], given: list[AxisType]) -> bool:
    """Try every order of `given`: greedy matching fails when an 'any' axis or a free size takes an
    axis that a later, stricter axis needed. Ranks are small, so this is cheap."""
    return any(
        all(_axis_accepts(e, g) for e, g in zip(expected, order))
        for order in itertools.permutations(given)
    )
