"""Mixed precision: optimization levels O0-O3 mapped onto torch.amp, with one dynamic loss scaler.

O0: fp32. O1: autocast (fp16 on CUDA, bf16 on the CPU). O2: half weights, autocast, fp32 master
weights in the optimizer. O3: pure half. fp16 uses dynamic loss scaling; an overflowing step is
skipped (never applied) and logged.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterable, List, Optional

import torch

from nmod.log import get_logger

__all__ = ["Precision", "DynamicLossScaler", "OPT_LEVELS"]

logger = get_logger(__name__)
OPT_LEVELS = ("O0", "O1", "O2", "O3")


@dataclass
class Precision:
    opt_level: str
    device: torch.device
    dtype: Optional[torch.dtype] = None  # the half type; None picks fp16 on CUDA, bf16 elsewhere

    def __post_init__(self):
        if self.opt_level not in OPT_LEVELS:
            raise ValueError(f"optimization_level must be one of {OPT_LEVELS}, got {self.opt_level!r}")
        if self.dtype is None:
            self.dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        if self.dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"The half type must be torch.float16 or torch.bfloat16, got {self.dtype}")

    @property
    def autocast_enabled(self) -> bool:
        return self.opt_level in ("O1", "O2")

    @property
    def half_weights(self) -> bool:
        return self.opt_level in ("O2", "O3")

    @property
    def master_weights(self) -> bool:
        return self.opt_level == "O2"

    @property
    def loss_scaling(self) -> bool:
        return self.opt_level != "O0" and self.dtype == torch.float16

    def autocast(self):
        if not self.autocast_enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


class DynamicLossScaler:
    """Scale the loss up so fp16 gradients do not underflow; halve on overflow, grow when stable."""

    def __init__(self, init_scale: float = 2.0**16, growth_interval: int = 2000, enabled: bool = True):
        self.scale = init_scale if enabled else 1.0
        self.growth_interval = growth_interval
        self.enabled = enabled
        self.good_steps = 0
        self.skipped_steps = 0

    def unscale_and_check(self, params: Iterable[torch.nn.Parameter]) -> bool:
        """Divide gradients by the scale; False (and the step must be skipped) if any is inf/NaN."""
        grads: List[torch.Tensor] = [p.grad for p in params if p.grad is not None]
        if not self.enabled or not grads:
            return True
        inv = 1.0 / self.scale
        finite = torch.stack([torch.isfinite(g).all() for g in grads]).all()
        if not bool(finite):
            return False
        torch._foreach_mul_(grads, inv)
        return True

    def update(self, step_ok: bool, step: int) -> None:
        if not self.enabled:
            return
        if step_ok:
            self.good_steps += 1
            if self.good_steps % self.growth_interval == 0:
                self.scale *= 2.0
        else:
            self.skipped_steps += 1
            self.good_steps = 0
            self.scale = max(self.scale / 2.0, 1.0)
            logger.warning(f"step {step}: gradient overflow in fp16, step skipped; loss scale now {self.scale:g}")

    def state_dict(self) -> dict:
        return {"scale": self.scale, "good_steps": self.good_steps, "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: dict) -> None:
        self.scale = float(state["scale"])
        self.good_steps = int(state["good_steps"])
        self.skipped_steps = int(state["skipped_steps"])
