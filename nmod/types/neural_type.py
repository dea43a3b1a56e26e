"""NeuralType = axes + element type; the unit that wiring checks compare."""
from __future__ import annotations

import itertools
from typing import Callable, Iterable, Optional, Sequence

from .axes import AxisKind, AxisKindAbstract, AxisType
from .comparison import NeuralTypeComparisonResult
from .elements import ElementType, VoidType

__all__ = ["NeuralType"]

R = NeuralTypeComparisonResult


class NeuralType:
    """The declared type of a module port.

    Args:
        axes: None for a scalar, else a sequence of `AxisType` or short strings such as
            ``("B", "T", "D")``. A scalar port accepts only scalars.
        elements_type: what the values mean; `VoidType()` with ``axes=None`` (``NeuralType()``)
            accepts anything, axes included.
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

        NeMo 0.11's rules: when the axes fit, the element types decide (SAME, LESS, GREATER, ...);
        when they do not, the result names the axis problem (TRANSPOSE_SAME, DIM_INCOMPATIBLE,
        CONTAINER_SIZE_MISMATCH) only if the element types are SAME, since only then would fixing the
        axes be enough; otherwise it is INCOMPATIBLE. GREATER and SAME accept.
        """
        if not isinstance(second, NeuralType):
            raise TypeError(f"Can only compare a NeuralType with a NeuralType, got {type(second).__name__}")
        if self.axes is None and isinstance(self.elements_type, VoidType):
            return R.SAME
        elements = self.elements_type.compare(second.elements_type)
        axes = _compare_axes(self.axes, second.axes)
        if axes is R.SAME:
            return elements
        if axes is R.INCOMPATIBLE or elements is not R.SAME:
            return R.INCOMPATIBLE
        return axes

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
        elif isinstance(axis, (str, AxisKindAbstract)):
            parsed.append(AxisType(axis))
        else:
            raise TypeError(f"An axis must be an AxisType or a string like 'B', got {axis!r}")
    return tuple(parsed)


def _axis_fits(expected: AxisType, given: AxisType) -> bool:
    """One axis of a port accepts one axis of a tensor: 'any' takes everything, otherwise the same
    kind, the same list-ness, and the port's size if it fixes one."""
    if expected.kind is AxisKind.Any:
        return True
    return (
        expected.kind == given.kind
        and expected.is_list == given.is_list
        and (expected.size is None or expected.size == given.size)
    )


def _kind_fits(expected: AxisType, given: AxisType) -> bool:
    return expected.kind is AxisKind.Any or expected.kind == given.kind


def _kind_and_size_fit(expected: AxisType, given: AxisType) -> bool:
    """`_axis_fits` without list-ness: a list of tensors can be stacked into a tensor and back."""
    return _kind_fits(expected, given) and (
        expected.kind is AxisKind.Any or expected.size is None or expected.size == given.size
    )


def _both_lists_of(expected: AxisType, given: AxisType) -> bool:
    """Two list axes of one kind: if they differ, it is only in how many tensors they hold."""
    return expected.kind == given.kind and expected.is_list and given.is_list


def _compare_axes(
    expected: Optional[tuple[AxisType, ...]], given: Optional[tuple[AxisType, ...]]
) -> NeuralTypeComparisonResult:
    """Axes alone, from the best result down: SAME, TRANSPOSE_SAME, CONTAINER_SIZE_MISMATCH,
    DIM_INCOMPATIBLE, INCOMPATIBLE (another rank, a scalar against a tensor, or other kinds)."""
    if expected is None or given is None:
        return R.SAME if expected is given else R.INCOMPATIBLE
    if len(expected) != len(given):
        return R.INCOMPATIBLE
    if all(_axis_fits(e, g) for e, g in zip(expected, given)):
        return R.SAME
    if not _some_order_fits(expected, given, _kind_fits):
        return R.INCOMPATIBLE
    if _some_order_fits(expected, given, _kind_and_size_fit):
        return R.TRANSPOSE_SAME  # a transpose and/or converting lists <-> tensors makes them SAME
    if all(_axis_fits(e, g) or _both_lists_of(e, g) for e, g in zip(expected, given)):
        return R.CONTAINER_SIZE_MISMATCH  # only the number of tensors in a list differs
    return R.DIM_INCOMPATIBLE  # the same kinds, but a fixed size differs


def _some_order_fits(
    expected: tuple[AxisType, ...], given: tuple[AxisType, ...], fits: Callable[[AxisType, AxisType], bool]
) -> bool:
    """Whether some order of `given` fits `expected` axis by axis. Every order is tried: a greedy
    matching fails when an 'any' axis or a free size takes an axis that a stricter one needed.
    Ranks are small, so this is cheap."""
    return any(all(fits(e, g) for e, g in zip(expected, order)) for order in itertools.permutations(given))
