"""Axes of a neural type: what each dimension of a tensor means, not just how long it is.

The kinds, their values and their string spellings are NeMo 0.11's, so ports copied from NeMo parse
and compare the same way: 'C' (Channel) is another name for Dimension, and 'N' another name for Batch.
"""
from __future__ import annotations

from enum import Enum
from typing import Optional

__all__ = ["AxisKind", "AxisType", "AxisKindAbstract"]


class AxisKindAbstract(Enum):
    """Base for axis kinds, so a collection can add its own kinds (NeMo did the same)."""


class AxisKind(AxisKindAbstract):
    """The meaning of one tensor dimension.

    `Channel` is an alias of `Dimension` (the same member, as in NeMo): a port declared ('B', 'C', 'T')
    fits a tensor of ('B', 'D', 'T'). `Any` on a port accepts an axis of any kind in its place.
    """

    Batch = 0
    Time = 1
    Dimension = 2
    Channel = 2  # an alias: AxisKind.Channel is AxisKind.Dimension
    Width = 3
    Height = 4
    Any = 5
    Sequence = 6

    def __repr__(self) -> str:
        return self.short_name

    def __str__(self) -> str:
        return self.short_name

    @property
    def short_name(self) -> str:
        return _SHORT_NAMES[self]

    @staticmethod
    def from_str(label: str) -> "AxisKind":
        """Parse 'B', 'N', 'T', 'D', 'C', 'W', 'H', 'seq' or 'any'; long names ('Batch') work too."""
        key = label.strip().lower()
        if key in _FROM_STR:
            return _FROM_STR[key]
        known = ", ".join(repr(k) for k in _KNOWN_SHORT)
        raise ValueError(
            f"Unknown axis kind {label!r}; expected one of {known} (long names such as 'Batch' work too)"
        )


_SHORT_NAMES = {
    AxisKind.Batch: "B",
    AxisKind.Time: "T",
    AxisKind.Dimension: "D",
    AxisKind.Width: "W",
    AxisKind.Height: "H",
    AxisKind.Any: "any",
    AxisKind.Sequence: "seq",
}
_KNOWN_SHORT = ("B", "N", "T", "D", "C", "W", "H", "seq", "any")
# __members__ includes the alias, so 'channel' parses as well as 'dimension'.
_FROM_STR = {name.lower(): kind for name, kind in AxisKind.__members__.items()}
_FROM_STR.update({short.lower(): kind for kind, short in _SHORT_NAMES.items()})
_FROM_STR.update({"n": AxisKind.Batch, "c": AxisKind.Channel})
# Channel is the same kind as Dimension, but an axis declared 'C' still prints as C, so a port's
# docs and error messages read as its author wrote them.
_CHANNEL_SPELLINGS = ("c", "channel")


class AxisType:
    """One axis: its kind, an optional fixed size, and whether it is a Python list of tensors."""

    def __init__(self, kind: AxisKindAbstract | str, size: Optional[int] = None, is_list: bool = False):
        label = None
        if isinstance(kind, str):
            label = "C" if kind.strip().lower() in _CHANNEL_SPELLINGS else None
            kind = AxisKind.from_str(kind)
        if not isinstance(kind, AxisKindAbstract):
            raise TypeError(f"AxisType kind must be an AxisKind or a string, got {type(kind).__name__}")
        if size is not None and (not isinstance(size, int) or size < 0):
            raise ValueError(f"AxisType size must be a non-negative int or None, got {size!r}")
        self.kind = kind
        self.size = size
        self.is_list = is_list
        self._label = label or str(kind)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, AxisType)
            and (self.kind, self.size, self.is_list) == (other.kind, other.size, other.is_list)
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.size, self.is_list))

    def __repr__(self) -> str:
        text = self._label
        if self.size is not None:
            text += f":{self.size}"
        if self.is_list:
            text = f"list[{text}]"
        return text
