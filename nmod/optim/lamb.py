"""LAMB (You et al., 2019, "Large Batch Optimization for Deep Learning"), as apex's FusedLAMB computes it.

torch has no LAMB. This one follows apex's default arithmetic so that ``fused_lamb`` gives the same
updates with or without apex: Adam moments with bias correction, decoupled weight decay added to the
update, and a per-tensor trust ratio ``||w|| / ||update||`` applied only to tensors that are decayed
(apex's ``use_nvlamb=False``; set ``trust_zero_decay=True`` for NVLAMB). The arithmetic is written with
``torch._foreach_*`` ops so one step is a handful of kernel launches per device, not per tensor.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable, Optional

import torch
from torch.optim import Optimizer

from ._checks import check_hyperparameters

__all__ = ["Lamb"]


class Lamb(Optimizer):
    """LAMB.

    Args:
        grad_averaging: scale the gradient by ``1 - beta1`` in the first moment (Adam's form); apex's
            default, and the paper's.
        trust_zero_decay: apply the trust ratio to tensors with ``weight_decay == 0`` too (NVLAMB).
        max_grad_norm: if set, gradients of all parameters are first divided by
            ``global_norm / max_grad_norm`` when the global norm exceeds it, as apex does by default.
            None (the default) leaves clipping to the executor's ``grad_norm_clip``.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        bias_correction: bool = True,
        grad_averaging: bool = True,
        trust_zero_decay: bool = False,
        max_grad_norm: Optional[float] = None,
    ):
        check_hyperparameters("Lamb", lr, betas, eps, weight_decay)
        if max_grad_norm is not None and max_grad_norm <= 0.0:
            raise ValueError(f"Lamb: max_grad_norm must be > 0 or None, got {max_grad_norm}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            bias_correction=bias_correction,
            grad_averaging=grad_averaging,
            trust_zero_decay=trust_zero_decay,
        )
        super().__init__(params, defaults)
        self.max_grad_norm = max_grad_norm

    def _clip_scale(self) -> Optional[torch.Tensor]:
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        if self.max_grad_norm is None or not grads:
            return None
        norms = [torch.linalg.vector_norm(g.float()) for g in grads]
        device = grads[0].device
        total = torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]))
        return torch.where(total > self.max_grad_norm, self.max_grad_norm / total, torch.ones_like(total))

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], torch.Tensor]] = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        clip_scale = self._clip_scale()
        for group in self.param_groups:
            # foreach ops need tensors on one device and of one dtype.
            buckets = defaultdict(lambda: ([], [], [], [], []))
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Lamb does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                params, grads, exp_avgs, exp_avg_sqs, steps = buckets[(p.device, p.dtype)]
                params.append(p)
                grads.append(p.grad)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            for bucket in buckets.values():
                self._update(group, *bucket, clip_scale=clip_scale)
        return loss

    @staticmethod
    def _update(group, params, grads, exp_avgs, exp_avg_sqs, steps, clip_scale):
        beta1, beta2 = group["betas"]
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        if clip_scale is not None:
            grads = torch._foreach_mul(grads, clip_scale.to(grads[0].device))
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, grads, alpha=(1.0 - beta1) if group["grad_averaging"] else 1.0)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta2)

        if group["bias_correction"]:
            update = torch._foreach_div(exp_avgs, [1.0 - beta1**t for t in steps])
            denom = torch._foreach_div(exp_avg_sqs, [1.0 - beta2**t for t in steps])
        else:
            update = torch._foreach_mul(exp_avgs, 1.0)
            denom = torch._foreach_mul(exp_avg_sqs, 1.0)
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, eps)
        torch._foreach_div_(update, denom)
        if weight_decay != 0.0:
            torch._foreach_add_(update, params, alpha=weight_decay)

        if weight_decay != 0.0 or group["trust_zero_decay"]:
            w_norm = torch.stack(torch._foreach_norm(params))
            u_norm = torch.stack(torch._foreach_norm(update))
            ratio = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))
            torch._foreach_mul_(update, list((ratio * -lr).unbind()))
            torch._foreach_add_(params, update)
        else:
            torch._foreach_add_(params, update, alpha=-lr)
