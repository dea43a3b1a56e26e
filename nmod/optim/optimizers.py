"""Optimizers by name, with weight decay kept off biases and normalisation weights.

``get_optimizer("adam_w", model.named_parameters(), lr=3e-5, weight_decay=0.01)`` is what the executor
calls for ``train(optimizer="adam_w", ...)``. The ``fused_*`` names use NVIDIA apex's fused optimizers
when apex imports and the parameters live on CUDA, and otherwise the closest torch implementation
(``AdamW(fused=True)`` on CUDA, ``AdamW(foreach=True)`` elsewhere, nmod's foreach LAMB); one log line
on the ``"nmod"`` logger says which. The PyPI package named ``apex`` is unrelated to NVIDIA's: never
install it; build NVIDIA apex from source if you want its kernels.
"""
from __future__ import annotations

import functools
from typing import Any, Iterable, Optional, Union

import torch
from torch.optim import Optimizer

from nmod.log import get_logger

from .lamb import Lamb
from .novograd import Novograd

__all__ = ["get_optimizer", "weight_decay_groups", "apex_available", "OPTIMIZERS", "no_weight_decay"]

logger = get_logger(__name__)

OPTIMIZERS = ("sgd", "adam", "adam_w", "novograd", "lamb", "fused_adam", "fused_lamb", "fused_novograd")

_DEFAULT_BETAS = {"adam": (0.9, 0.999), "novograd": (0.95, 0.98), "lamb": (0.9, 0.999)}
_DEFAULT_EPS = {"adam": 1e-8, "novograd": 1e-8, "lamb": 1e-6}

Params = Union[
    torch.nn.Module, Iterable[torch.nn.Parameter], Iterable[tuple[str, torch.nn.Parameter]], Iterable[dict]
]


def no_weight_decay(name: str, param: torch.Tensor) -> bool:
    """Biases, LayerNorm weights and other 1-D tensors are not decayed (BERT's and Megatron's rule)."""
    lowered = name.lower()
    return param.ndim <= 1 or "bias" in lowered or "norm" in lowered


def weight_decay_groups(params: Params, weight_decay: float) -> list[dict]:
    """Split trainable parameters into a decayed group and a ``weight_decay=0`` group.

    ``params`` is a module, ``named_parameters()`` pairs, bare parameters (then only the 1-D rule can
    apply) or ready-made param-group dicts, which are returned unchanged. Frozen parameters are left
    out; a parameter listed twice (weights tied across modules) is kept once, under its first name.
    """
    if isinstance(params, torch.nn.Module):
        params = params.named_parameters()
    if isinstance(params, torch.Tensor):
        raise TypeError("get_optimizer: params must be an iterable of parameters, got a single tensor")
    items = list(params)
    if items and all(isinstance(item, dict) for item in items):
        return items
    decay, no_decay, seen = [], [], set()
    for index, item in enumerate(items):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], torch.Tensor):
            name, param = item
        elif isinstance(item, torch.Tensor):
            name, param = "", item
        else:
            raise TypeError(
                "get_optimizer: params must be a module, parameters, (name, parameter) pairs or param-group "
                f"dicts; item {index} is {type(item).__name__}"
            )
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        (no_decay if no_weight_decay(name, param) else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


@functools.lru_cache(maxsize=None)
def apex_available() -> bool:
    """True when NVIDIA apex's fused optimizers import (a broken or unrelated `apex` counts as absent)."""
    try:
        from apex.optimizers import FusedAdam, FusedLAMB  # noqa: F401
    except Exception:  # the unrelated PyPI `apex` fails with all sorts of errors
        return False
    return True


def _all_cuda(groups: list[dict]) -> bool:
    return all(p.is_cuda for g in groups for p in g["params"])


def _check_hyper(name: str, lr, betas, eps, momentum, weight_decay) -> None:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr < 0:
        raise ValueError(f"get_optimizer({name!r}): lr must be a number >= 0, got {lr!r}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise ValueError(f"get_optimizer({name!r}): weight_decay must be a number >= 0, got {weight_decay!r}")
    if betas is not None:
        try:
            ok = len(betas) == 2 and all(0.0 <= float(b) < 1.0 for b in betas)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"get_optimizer({name!r}): betas must be two numbers in [0, 1), got {betas!r}")
    if eps is not None and (not isinstance(eps, (int, float)) or eps <= 0):
        raise ValueError(f"get_optimizer({name!r}): eps must be a number > 0, got {eps!r}")
    if momentum is not None and (not isinstance(momentum, (int, float)) or momentum < 0):
        raise ValueError(f"get_optimizer({name!r}): momentum must be a number >= 0, got {momentum!r}")


def get_optimizer(
    name: Union[str, type],
    params: Params,
    lr: float,
    weight_decay: float = 0.0,
    betas: Optional[tuple[float, float]] = None,
    eps: Optional[float] = None,
    momentum: Optional[float] = None,
    **kwargs: Any,
) -> Optimizer:
    """Build an optimizer by name over ``params`` with biases and norms excluded from weight decay.

    ``betas``, ``eps`` and ``momentum`` left as None take each optimizer's own default (NovoGrad
    betas (0.95, 0.98), LAMB eps 1e-6, SGD momentum 0.9 as in NeMo); options that an optimizer does
    not have (``momentum`` for Adam, ``betas`` for SGD) are ignored. Extra keyword arguments go to
    the optimizer's constructor. An ``Optimizer`` subclass may be passed instead of a name.
    """
    _check_hyper(str(name), lr, betas, eps, momentum, weight_decay)
    groups = weight_decay_groups(params, float(weight_decay))
    if not groups:
        raise ValueError(f"get_optimizer({name!r}): no trainable parameters (all are frozen, or none given)")
    if isinstance(name, type) and issubclass(name, Optimizer):
        return name(groups, lr=lr, **kwargs)
    key = name.lower().replace("-", "_") if isinstance(name, str) else None
    if key not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; known optimizers: {', '.join(OPTIMIZERS)}")

    family = {"adam_w": "adam", "fused_adam": "adam", "fused_lamb": "lamb", "fused_novograd": "novograd"}
    family = family.get(key, key)
    adam_like = dict(
        lr=lr,
        betas=tuple(betas) if betas is not None else _DEFAULT_BETAS.get(family),
        eps=eps if eps is not None else _DEFAULT_EPS.get(family),
        weight_decay=weight_decay,
    )
    if key == "sgd":
        momentum = 0.9 if momentum is None else momentum
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, **kwargs)
    if key == "adam":
        return torch.optim.Adam(groups, **adam_like, **kwargs)
    if key == "adam_w":
        return torch.optim.AdamW(groups, **adam_like, **kwargs)
    if key == "novograd":
        return Novograd(groups, **adam_like, **kwargs)
    if key == "lamb":
        return Lamb(groups, **adam_like, **kwargs)
    return _fused(key, groups, adam_like, kwargs)


def _fused(key: str, groups: list[dict], adam_like: dict, kwargs: dict) -> Optimizer:
    on_cuda = _all_cuda(groups)
    use_apex = apex_available() and on_cuda
    if use_apex:
        why = ""
    elif apex_available():
        why = "apex imports but its fused optimizers need CUDA parameters"
    else:
        why = "NVIDIA apex is not importable"
    if key == "fused_adam":
        if use_apex:
            from apex.optimizers import FusedAdam

            logger.info("fused_adam: using apex.optimizers.FusedAdam (adam_w_mode=True)")
            return FusedAdam(groups, adam_w_mode=True, **adam_like, **kwargs)
        if "fused" not in kwargs and "foreach" not in kwargs:
            # torch's fused AdamW has CPU kernels too: 7.6x faster than foreach per step on MiniLM
            # here (benchmarks/optimizer_step.py); foreach stays for devices without a fused kernel.
            on_cpu = all(p.device.type == "cpu" for g in groups for p in g["params"])
            kwargs = {**kwargs, ("fused" if on_cuda or on_cpu else "foreach"): True}
        chosen = "fused=True" if kwargs.get("fused") else "foreach=True" if kwargs.get("foreach") else "default"
        logger.info("fused_adam: %s; using torch.optim.AdamW(%s)", why, chosen)
        return torch.optim.AdamW(groups, **adam_like, **kwargs)
    if key == "fused_lamb":
        if use_apex:
            from apex.optimizers import FusedLAMB

            # apex clips by global norm (default 1.0) inside the step; nmod clips in the executor
            # (grad_norm_clip), so clipping is off unless max_grad_norm is passed.
            max_grad_norm = kwargs.pop("max_grad_norm", None)
            logger.info("fused_lamb: using apex.optimizers.FusedLAMB")
            return FusedLAMB(
                groups,
                max_grad_norm=float("inf") if max_grad_norm is None else max_grad_norm,
                **adam_like,
                **kwargs,
            )
        logger.info("fused_lamb: %s; using nmod.optim.Lamb (torch foreach ops)", why)
        return Lamb(groups, **adam_like, **kwargs)
    # fused_novograd
    if use_apex:
        try:
            from apex.optimizers import FusedNovoGrad
        except Exception:
            FusedNovoGrad = None
        if FusedNovoGrad is not None:
            # Settings that make apex compute NeMo's NovoGrad (see nmod/optim/novograd.py).
            options = dict(bias_correction=False, grad_averaging=False, reg_inside_moment=True, init_zero=False)
            logger.info("fused_novograd: using apex.optimizers.FusedNovoGrad")
            return FusedNovoGrad(groups, **adam_like, **{**options, **kwargs})
        why = "this apex has no FusedNovoGrad"
    logger.info("fused_novograd: %s; using nmod.optim.Novograd", why)
    return Novograd(groups, **adam_like, **kwargs)
