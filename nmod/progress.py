"""Progress over long loops (feature building, evaluation, inference): a tqdm bar on a terminal, a log
line every ``every`` seconds elsewhere (a job's log file, CI), so a long step is never silent.

Only the main process (``RANK`` 0, or no ``RANK``) reports; loops that end within ``every`` seconds
print nothing when output is not a terminal.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, Optional, TypeVar

from nmod.log import get_logger

__all__ = ["progress"]

logger = get_logger(__name__)
T = TypeVar("T")


def progress(items: Iterable[T], total: Optional[int] = None, desc: str = "", unit: str = "it",
             every: float = 30.0, enabled: Optional[bool] = None) -> Iterator[T]:
    """``items``, reporting as they go; ``enabled=False`` reports nothing, ``None`` decides by rank."""
    if enabled is None:
        enabled = os.environ.get("RANK", "0") == "0"
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if not enabled:
        yield from items
        return
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        yield from tqdm(items, total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False)
        return
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every:
            last = now
            of = f"/{total} ({100 * done / total:.0f} %)" if total else ""
            logger.info(f"{desc}: {done}{of} {unit}, {now - start:.0f} s, {done / (now - start):.1f} {unit}/s")
