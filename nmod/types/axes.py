"""Axes of a neural type: what each dimension of a tensor means, not just how long it is."""
from __future__ import annotations

from enum import Enum
from typing import Optional

__all__ = ["AxisKind", "AxisType", "AxisKindAbstract"]


class AxisKindAbstract(Enum):
    """Base for axis kinds, so a collection can add its own kinds (NeMo did the same)."""


class AxisKind(AxisKindAbstract):
    """The meaning of one tensor dimension."""

    Batch = 0
    Time = 1
    Dimension = 2
    Channel = 3
    Width = 4
    Height = 5
    Any = 6

    def __repr__(self) -> str:
        return self.short_name

    def __str__(self) -> str:
        return self.short_name

    @property
    def short_name(self) -> str:
        return _SHORT_NAMES[self]

    @staticmethod
    def from_str(label: str) -> "AxisKind":
        """Parse 'B', 'T', 'D', 'C', 'W', 'H' or 'any' (long names such as 'Batch' work too)."""
        key = label.strip().lower()
        if key in _FROM_STR:
            return _FROM_STR[key]
        known = ", ".join(repr(k) for k in ("B", "T", "D", "C", "W", "H", "any"))
        raise ValueError(f"Unknown axis kind {label!r}; expected one of {known}")


_SHORT_NAMES = {
    AxisKind.Batch: "B",
    AxisKind.Time: "T",
    AxisKind.Dimension: "D",
    AxisKind.Channel: "C",
    AxisKind.Width: "W",
    AxisKind.Height: "H",
    AxisKind.Any: "any",
}
_FROM_STR = {short.lower(): kind for kind, short in _SHORT_NAMES.items()}
_FROM_STR.update({kind.name.lower(): kind for kind in AxisKind})


class AxisType:
    """One axis: its kind, an optional fixed size, and whether it is a Python list of tensors."""

    def __init__(self, kind: AxisKind | str, size: Optional[int] = None, is_list: bool = False):
        if isinstance(kind, str):
            kind = AxisKind.from_str(kind)
        if not isinstance(kind, AxisKindAbstract):
            raise TypeError(f"AxisType kind must be an AxisKind or a string, got {type(kind).__name__}")
        if size is not None and (not isinstance(size, int) or size < 0):
            raise ValueError(f"AxisType size must be a non-negative int or None, got {size!r}")
        self.kind = kind
        self.size = size
        self.is_list = is_list

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, AxisType)
            and (self.kind, self.size, self.is_list) == (other.kind, other.size, other.is_list)
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.size, self.is_list))

    def __repr__(self) -> str:
        text = str(self.kind)
        if self.size is not None:
            text += f":{self.size}"
        if self.is_list:
            text = f"list[{text}]"
        return text
