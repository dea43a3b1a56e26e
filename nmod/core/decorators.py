"""Decorators: port documentation and once-per-process deprecation notices."""
from __future__ import annotations

import functools
from typing import Callable, Optional

import wrapt

from nmod.log import get_logger

__all__ = ["add_port_docs", "deprecated"]

logger = get_logger(__name__)
_warned: set[str] = set()


def add_port_docs(wrapped: Optional[Callable] = None, *, header: str = "Ports:"):
    """Append the declared ports to a `input_ports`/`output_ports` function's docstring.

    Ports that do not depend on the instance are rendered at import time, so `help()` and the docs
    show them; ports that depend on init arguments are documented as such.
    """
    if wrapped is None:
        return functools.partial(add_port_docs, header=header)

    @wrapt.decorator
    def passthrough(wrapped, instance, args, kwargs):
        return wrapped(*args, **kwargs)

    decorated = passthrough(wrapped)
    try:
        ports = wrapped(None)
        lines = [f"    * *{name}* : {ntype}" for name, ntype in ports.items()]
        text = "\n".join(lines) if lines else "    (none)"
    except Exception:
        text = "    (depend on the module's init parameters)"
    decorated.__doc__ = (wrapped.__doc__ or "").rstrip() + f"\n\n{header}\n{text}\n"
    return decorated


def deprecated(wrapped: Optional[Callable] = None, *, version: Optional[str] = None, explanation: str = ""):
    """Mark a function or class as deprecated; the warning is logged once per process."""
    if wrapped is None:
        return functools.partial(deprecated, version=version, explanation=explanation)

    @wrapt.decorator
    def wrapper(wrapped, instance, args, kwargs):
        # Module-qualified, so two deprecated functions with the same name each warn once.
        qualname = getattr(wrapped, "__qualname__", repr(wrapped))
        key = f"{getattr(wrapped, '__module__', '')}.{qualname}"
        if key not in _warned:
            _warned.add(key)
            when = f" and will be removed in version {version}" if version else ""
            logger.warning(f"{qualname} is deprecated{when}. {explanation}".rstrip())
        return wrapped(*args, **kwargs)

    return wrapper(wrapped)
