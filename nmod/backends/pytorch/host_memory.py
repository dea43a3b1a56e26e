"""Large CPU tensors from the heap, not from fresh ``mmap`` calls on every step.

torch's CPU allocator asks glibc's ``malloc`` for each tensor. glibc serves a request above its
mmap threshold (at most 32 MiB, its dynamic ceiling) with a new ``mmap`` and returns it with ``munmap``
when the tensor is freed, so the next step's tensor of the same size starts as untouched pages: the
kernel faults in and zeroes every 4 KiB page again. A MiniLM SQuAD batch's FFN activations (about 6,000
real tokens x 1,536, fp32: 38 MiB) are above that ceiling, and so is the word embeddings' gradient (30,522
x 384, 45 MiB), new at every step; on a 2-core Xeon adding two such activations took 10.6 ms instead of
1.7 ms, and fp32 training steps 1.06x (SQuAD) to 1.12x (CoNLL) longer (``benchmarks/host_memory.py``,
docs/performance.md). A larger model crosses the ceiling with smaller batches (BERT-large's 4,096-wide
FFN at 2,048 tokens).

:func:`keep_large_blocks` raises the threshold (and the heap's trim threshold) so such blocks come from
the heap and are reused, as jemalloc or tcmalloc would do under ``LD_PRELOAD``. The price is that freed
memory stays with the process instead of going back to the system: its resident size stays near its
peak, which for a training or serving process is where it returns at the next step anyway. It is a
process-wide setting of the C library, so the factory applies it once, on CPU runs, and says so in the
log; ``NeuralModuleFactory(keep_cpu_memory=False)`` or ``NMOD_KEEP_CPU_MEMORY=0`` leave glibc's default.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from typing import Optional

from nmod.core.errors import ConfigError

__all__ = ["GLIBC_MMAP_CEILING", "HEAP_THRESHOLD", "allowed_by_env", "keep_large_blocks", "mmapped_blocks",
           "set_mmap_threshold"]

#: glibc's own dynamic mmap threshold never rises above this (``DEFAULT_MMAP_THRESHOLD_MAX``, 64-bit).
GLIBC_MMAP_CEILING = 32 << 20
#: Blocks up to this size come from the heap once :func:`keep_large_blocks` ran.
HEAP_THRESHOLD = 1 << 30

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
ENV = "NMOD_KEEP_CPU_MEMORY"


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _glibc() -> Optional[ctypes.CDLL]:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def set_mmap_threshold(threshold: int, trim_threshold: Optional[int] = None) -> bool:
    """Serve ``malloc`` requests below ``threshold`` bytes from the heap, and trim the heap's top only
    when more than ``trim_threshold`` (default ``2 * threshold``, glibc's own ratio) lies free there.
    False where the C library is not glibc or refuses the values: nothing changed then."""
    libc = _glibc()
    if libc is None:
        return False
    trim = 2 * threshold if trim_threshold is None else trim_threshold
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold))) and bool(libc.mallopt(_M_TRIM_THRESHOLD, int(trim)))


def keep_large_blocks(threshold: int = HEAP_THRESHOLD) -> bool:
    """Keep CPU tensors up to ``threshold`` bytes in the heap (see the module's docstring); False, and
    nothing changed, off glibc or when ``NMOD_KEEP_CPU_MEMORY=0``."""
    return allowed_by_env() and set_mmap_threshold(threshold)


_ON, _OFF = ("1", "true", "yes", "on", ""), ("0", "false", "no", "off")


def allowed_by_env() -> bool:
    """False when ``NMOD_KEEP_CPU_MEMORY`` is 0, false, no or off; True when unset, 1, true, yes or on.
    Any other value is a ``ConfigError``: a typo must not silently leave the setting on."""
    value = os.environ.get(ENV, "1").strip().lower()
    if value not in _ON + _OFF:
        raise ConfigError(f"{ENV}={os.environ[ENV]!r}: expected 0/false/no/off or 1/true/yes/on")
    return value in _ON


def mmapped_blocks() -> Optional[int]:
    """How many live ``malloc`` blocks glibc holds as their own mmaps (``mallinfo2().hblks``); None off glibc."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    return int(libc.mallinfo2().hblks)
