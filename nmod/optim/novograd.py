"""NovoGrad (Ginsburg et al., 2019, "Stochastic Gradient Methods with Layer-wise Adaptive Moments").

torch has no NovoGrad. This is NeMo 0.11's variant, which trained Jasper and QuartzNet: the second
moment is one number per tensor (the squared gradient norm, initialised with the first step's value
instead of zero, so there is no bias correction), the gradient is normalised by it before weight decay
is added, and the first moment accumulates that without the ``1 - beta1`` factor unless
``grad_averaging`` is set. Unlike NeMo's, it does not overwrite ``p.grad``.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

import torch
from torch.optim import Optimizer

from ._checks import check_hyperparameters

__all__ = ["Novograd"]


class Novograd(Optimizer):
    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.95, 0.98),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        grad_averaging: bool = False,
    ):
        check_hyperparameters("Novograd", lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, grad_averaging=grad_averaging)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], torch.Tensor]] = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Novograd does not support sparse gradients")
                state = self.state[p]
                grad_sq_norm = p.grad.float().pow(2).sum()
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = grad_sq_norm.clone()
                else:
                    state["exp_avg_sq"].mul_(beta2).add_(grad_sq_norm, alpha=1.0 - beta2)
                state["step"] += 1
                direction = p.grad / (state["exp_avg_sq"].sqrt() + group["eps"]).to(p.grad.dtype)
                if group["weight_decay"] != 0.0:
                    direction.add_(p, alpha=group["weight_decay"])
                if group["grad_averaging"]:
                    direction.mul_(1.0 - beta1)
                state["exp_avg"].mul_(beta1).add_(direction)
                p.add_(state["exp_avg"], alpha=-group["lr"])
        return loss
