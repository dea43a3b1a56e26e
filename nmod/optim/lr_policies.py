"""Learning-rate policies with NeMo 0.11's names and curves.

A policy is a pure function of the optimizer step: ``policy(initial_lr, step, epoch) -> lr``. It keeps
no counters, so a run resumed from a checkpoint gets exactly the learning rates an uninterrupted run
would have had, as long as the executor restores its own step counter. ``step`` is the number of
optimizer updates already applied (0 for the first update). ``epoch`` is accepted for NeMo
compatibility; no policy here uses it.

Differences from NeMo 0.11, each a fix of a discontinuity or an edge case:

* Past ``total_steps`` every policy returns ``min_lr`` (NeMo returned 0 from some and ``min_lr`` from
  others), except a cyclic polynomial decay, which keeps cycling.
* A hold policy given no hold length holds for zero steps after warmup (NeMo's decay then started
  from step 0 and jumped at the end of warmup).
* ``WarmupAnnealing`` and ``InverseSquareRootAnnealing`` accept ``min_lr`` as a floor (default 0).
* Bad arguments raise ``ValueError`` with the values found, instead of bare asserts.

The run's length belongs to the executor. ``get_lr_policy("WarmupAnnealing", warmup_ratio=0.1)``
without ``total_steps`` returns a ``DeferredLRPolicy``, and ``train(lr_policy=...)`` binds it to the
number of steps it will take, so a recipe never counts steps a second way.
"""
from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from typing import Any, Callable, Optional, Union

from nmod.log import get_logger

__all__ = [
    "LRPolicy",
    "WarmupPolicy",
    "WarmupHoldPolicy",
    "WarmupAnnealing",
    "CosineAnnealing",
    "SquareAnnealing",
    "SquareRootAnnealing",
    "InverseSquareRootAnnealing",
    "PolynomialDecayAnnealing",
    "PolynomialHoldDecayAnnealing",
    "DeferredLRPolicy",
    "get_lr_policy",
    "bind_lr_policy",
    "LR_POLICIES",
]

logger = get_logger(__name__)


def _check_nonnegative_int(name: str, value, policy: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{policy}: {name} must be a non-negative int, got {value!r}")
    return value


class LRPolicy(ABC):
    """Base of all policies: holds ``total_steps`` and the floor ``min_lr``."""

    requires_total_steps = False

    def __init__(self, total_steps: Optional[int] = None, min_lr: float = 0.0):
        name = type(self).__name__
        if total_steps is None:
            if self.requires_total_steps:
                raise ValueError(f"{name} anneals towards total_steps, so total_steps is required; got None")
        elif isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps <= 0:
            raise ValueError(f"{name}: total_steps must be a positive int or None, got {total_steps!r}")
        if not isinstance(min_lr, (int, float)) or min_lr < 0:
            raise ValueError(f"{name}: min_lr must be a non-negative number, got {min_lr!r}")
        self.total_steps = total_steps
        self.min_lr = float(min_lr)

    @abstractmethod
    def __call__(self, initial_lr: float, step: int, epoch: int = 0) -> float:
        """The learning rate for the update that follows ``step`` applied updates."""

    def state_dict(self) -> dict:
        """The policy's settings; there is no running state, so this exists to check a resume."""
        state = {k: v for k, v in vars(self).items() if isinstance(v, (bool, int, float, str, type(None)))}
        return {"policy": type(self).__name__, **state}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore (lr is a function of step); warn if the checkpoint used other settings."""
        mine = self.state_dict()
        if dict(state) != mine:
            logger.warning(
                "LR policy differs from the checkpoint's: checkpoint %s, now %s; the new settings are used",
                dict(state),
                mine,
            )

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.state_dict().items() if k != "policy")
        return f"{type(self).__name__}({settings})"


class WarmupPolicy(LRPolicy):
    """Linear warmup from ``initial_lr / (warmup_steps + 1)`` to ``initial_lr``, then constant.

    Subclasses replace the constant part (``_get_lr``). Warmup is given as ``warmup_steps`` or as
    ``warmup_ratio`` of ``total_steps`` (rounded down), never both.
    """

    def __init__(
        self,
        total_steps: Optional[int] = None,
        warmup_steps: Optional[int] = None,
        warmup_ratio: Optional[float] = None,
        min_lr: float = 0.0,
    ):
        super().__init__(total_steps=total_steps, min_lr=min_lr)
        name = type(self).__name__
        if warmup_steps is not None and warmup_ratio is not None:
            raise ValueError(
                f"{name}: give warmup_steps or warmup_ratio, not both (got warmup_steps={warmup_steps!r}, "
                f"warmup_ratio={warmup_ratio!r})"
            )
        if warmup_ratio is not None:
            if total_steps is None:
                raise ValueError(f"{name}: warmup_ratio={warmup_ratio!r} needs total_steps, got None")
            if not isinstance(warmup_ratio, (int, float)) or not 0.0 <= warmup_ratio <= 1.0:
                raise ValueError(f"{name}: warmup_ratio must be in [0, 1], got {warmup_ratio!r}")
            warmup_steps = int(warmup_ratio * total_steps)
        self.warmup_steps = _check_nonnegative_int("warmup_steps", warmup_steps or 0, name)
        self.warmup_ratio = warmup_ratio

    def _check_decay_room(self, decay_start: int, what: str) -> None:
        if self.total_steps is not None and decay_start >= self.total_steps:
            raise ValueError(
                f"{type(self).__name__}: {what}={decay_start} leaves no steps to anneal over; it must be "
                f"smaller than total_steps={self.total_steps}"
            )

    def _past_end(self, step: int) -> bool:
        return self.total_steps is not None and step > self.total_steps

    def __call__(self, initial_lr: float, step: int, epoch: int = 0) -> float:
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"{type(self).__name__}: step must be a non-negative int, got {step!r}")
        if step < self.warmup_steps:
            return initial_lr * (step + 1) / (self.warmup_steps + 1)
        if self._past_end(step):
            return self.min_lr
        return self._get_lr(initial_lr, step)

    def _get_lr(self, initial_lr: float, step: int) -> float:
        return initial_lr


class WarmupHoldPolicy(WarmupPolicy):
    """Warmup, then ``initial_lr`` held for ``hold_steps`` (or ``hold_ratio`` of ``total_steps``)."""

    def __init__(
        self,
        total_steps: Optional[int] = None,
        warmup_steps: Optional[int] = None,
        warmup_ratio: Optional[float] = None,
        hold_steps: Optional[int] = None,
        hold_ratio: Optional[float] = None,
        min_lr: float = 0.0,
    ):
        super().__init__(total_steps, warmup_steps=warmup_steps, warmup_ratio=warmup_ratio, min_lr=min_lr)
        name = type(self).__name__
        if hold_steps is not None and hold_ratio is not None:
            raise ValueError(
                f"{name}: give hold_steps or hold_ratio, not both (got hold_steps={hold_steps!r}, "
                f"hold_ratio={hold_ratio!r})"
            )
        if hold_ratio is not None:
            if total_steps is None:
                raise ValueError(f"{name}: hold_ratio={hold_ratio!r} needs total_steps, got None")
            if not isinstance(hold_ratio, (int, float)) or not 0.0 <= hold_ratio <= 1.0:
                raise ValueError(f"{name}: hold_ratio must be in [0, 1], got {hold_ratio!r}")
            hold_steps = int(hold_ratio * total_steps)
        self.hold_steps = _check_nonnegative_int("hold_steps", hold_steps or 0, name)
        self.hold_ratio = hold_ratio
        # First step after the hold phase (NeMo stored this sum in `hold_steps`).
        self.hold_end = self.warmup_steps + self.hold_steps

    def __call__(self, initial_lr: float, step: int, epoch: int = 0) -> float:
        if isinstance(step, int) and self.warmup_steps <= step < self.hold_end:
            return initial_lr
        return super().__call__(initial_lr, step, epoch)


class SquareAnnealing(WarmupPolicy):
    """After warmup: ``initial_lr * ((T - step) / (T - warmup))**2``, floored at ``min_lr``."""

    requires_total_steps = True

    def __init__(self, total_steps: int, min_lr: float = 1e-5, **warmup):
        super().__init__(total_steps, min_lr=min_lr, **warmup)
        self._check_decay_room(self.warmup_steps, "warmup_steps")

    def _get_lr(self, initial_lr: float, step: int) -> float:
        remaining = (self.total_steps - step) / (self.total_steps - self.warmup_steps)
        return max(initial_lr * remaining**2, self.min_lr)


class SquareRootAnnealing(WarmupPolicy):
    """After warmup: ``initial_lr * sqrt((T - step) / T)``, floored at ``min_lr``.

    As in NeMo the decay is measured from step 0, not from the end of warmup, so the curve drops a
    little when warmup ends; kept so that NeMo recipes reproduce.
    """

    requires_total_steps = True

    def __init__(self, total_steps: int, min_lr: float = 0.0, **warmup):
        super().__init__(total_steps, min_lr=min_lr, **warmup)
        self._check_decay_room(self.warmup_steps, "warmup_steps")

    def _get_lr(self, initial_lr: float, step: int) -> float:
        return max(initial_lr * math.sqrt((self.total_steps - step) / self.total_steps), self.min_lr)


class CosineAnnealing(WarmupPolicy):
    """After warmup: half a cosine from ``initial_lr`` down to ``min_lr`` at ``total_steps``."""

    requires_total_steps = True

    def __init__(self, total_steps: int, min_lr: float = 0.0, **warmup):
        super().__init__(total_steps, min_lr=min_lr, **warmup)
        self._check_decay_room(self.warmup_steps, "warmup_steps")

    def _get_lr(self, initial_lr: float, step: int) -> float:
        if initial_lr < self.min_lr:
            raise ValueError(f"CosineAnnealing: initial lr {initial_lr} is below min_lr {self.min_lr}")
        progress = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return self.min_lr + (initial_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupAnnealing(WarmupPolicy):
    """After warmup: linear from ``initial_lr`` to 0 at ``total_steps`` (BERT's schedule), floored."""

    requires_total_steps = True

    def __init__(self, total_steps: int, min_lr: float = 0.0, **warmup):
        super().__init__(total_steps, min_lr=min_lr, **warmup)
        self._check_decay_room(self.warmup_steps, "warmup_steps")

    def _get_lr(self, initial_lr: float, step: int) -> float:
        remaining = (self.total_steps - step) / (self.total_steps - self.warmup_steps)
        return max(initial_lr * remaining, self.min_lr)


class InverseSquareRootAnnealing(WarmupPolicy):
    """After warmup: ``initial_lr * sqrt((warmup + 1) / (step + 1))`` (the Transformer schedule)."""

    def __init__(self, total_steps: Optional[int] = None, min_lr: float = 0.0, **warmup):
        super().__init__(total_steps, min_lr=min_lr, **warmup)

    def _get_lr(self, initial_lr: float, step: int) -> float:
        return max(initial_lr * math.sqrt((self.warmup_steps + 1) / (step + 1)), self.min_lr)


def _poly_decay(initial_lr: float, step: int, decay_steps: int, power: float, min_lr: float, cycle: bool) -> float:
    if cycle:
        # Each cycle restarts from initial_lr and is as long as all cycles before it together.
        decay_steps = decay_steps * max(1, math.ceil(step / decay_steps))
    else:
        step = min(step, decay_steps)
    return (initial_lr - min_lr) * (1.0 - step / decay_steps) ** power + min_lr


class _PolynomialMixin:
    def _set_poly(self, power: float, cycle: bool) -> None:
        if not isinstance(power, (int, float)) or power <= 0:
            raise ValueError(f"{type(self).__name__}: power must be a positive number, got {power!r}")
        self.power = float(power)
        self.cycle = bool(cycle)

    def _past_end(self, step: int) -> bool:
        return not self.cycle and step > self.total_steps


class PolynomialDecayAnnealing(_PolynomialMixin, WarmupPolicy):
    """After warmup: ``(initial_lr - min_lr) * (1 - progress)**power + min_lr``; ``cycle`` restarts."""

    requires_total_steps = True

    def __init__(self, total_steps: int, min_lr: float = 0.0, power: float = 1.0, cycle: bool = False, **warmup):
        super().__init__(total_steps, min_lr=min_lr, **warmup)
        self._check_decay_room(self.warmup_steps, "warmup_steps")
        self._set_poly(power, cycle)

    def _get_lr(self, initial_lr: float, step: int) -> float:
        return _poly_decay(
            initial_lr,
            step - self.warmup_steps,
            self.total_steps - self.warmup_steps,
            self.power,
            self.min_lr,
            self.cycle,
        )


class PolynomialHoldDecayAnnealing(_PolynomialMixin, WarmupHoldPolicy):
    """Warmup, hold at ``initial_lr``, then polynomial decay to ``min_lr`` at ``total_steps``."""

    requires_total_steps = True

    def __init__(self, total_steps: int, min_lr: float = 0.0, power: float = 1.0, cycle: bool = False, **warmup_hold):
        super().__init__(total_steps, min_lr=min_lr, **warmup_hold)
        self._check_decay_room(self.hold_end, "warmup_steps + hold_steps")
        self._set_poly(power, cycle)

    def _get_lr(self, initial_lr: float, step: int) -> float:
        return _poly_decay(
            initial_lr,
            step - self.hold_end,
            self.total_steps - self.hold_end,
            self.power,
            self.min_lr,
            self.cycle,
        )


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


LR_POLICIES: dict[str, type[LRPolicy]] = {
    cls.__name__: cls
    for cls in (
        WarmupPolicy,
        WarmupHoldPolicy,
        WarmupAnnealing,
        CosineAnnealing,
        SquareAnnealing,
        SquareRootAnnealing,
        InverseSquareRootAnnealing,
        PolynomialDecayAnnealing,
        PolynomialHoldDecayAnnealing,
    )
}
_BY_ANY_NAME = {**LR_POLICIES, **{_snake_case(name): cls for name, cls in LR_POLICIES.items()}}


# A stand-in run length for checking a deferred policy's settings: far longer than any run, so only
# settings that are wrong for every length (a ratio out of range, warmup + hold >= 100%) fail with it.
_STAND_IN_TOTAL_STEPS = 10**9


class DeferredLRPolicy:
    """A policy waiting for the run's length: `train()` binds it to the number of steps it will take.

    ``DeferredLRPolicy(WarmupAnnealing, warmup_ratio=0.1).bind(total_steps)`` is
    ``WarmupAnnealing(total_steps, warmup_ratio=0.1)``; `get_lr_policy` without `total_steps` makes one
    for the policies that need it. The settings are checked when it is made, so a wrong one fails when a
    recipe starts; one that only this run's length rules out (warmup_steps >= total_steps) fails when
    `train()` binds it, before the first step.
    """

    def __init__(self, policy: type[LRPolicy], **settings: Any):
        if not (isinstance(policy, type) and issubclass(policy, LRPolicy)):
            raise TypeError(f"DeferredLRPolicy needs an LRPolicy class, got {policy!r}")
        if "total_steps" in settings:
            raise TypeError(f"DeferredLRPolicy({policy.__name__}, ...): total_steps is what train() binds; leave it out")
        self.policy = policy
        self.settings = dict(settings)
        try:
            self.bind(_STAND_IN_TOTAL_STEPS)
        except ValueError as err:
            raise ValueError(f"{self!r}: {err} (checked against a stand-in run of {_STAND_IN_TOTAL_STEPS} steps, "
                             "before train() binds the run's own count)") from None

    def bind(self, total_steps: int) -> LRPolicy:
        """The policy for a run of `total_steps` optimizer steps."""
        return self.policy(total_steps=total_steps, **self.settings)

    def __call__(self, initial_lr: float, step: int, epoch: int = 0) -> float:
        raise TypeError(f"{self!r} has no total_steps yet: pass it to train(lr_policy=...), which binds the "
                        "run's step count, or call .bind(total_steps)")

    def __repr__(self) -> str:
        settings = "".join(f", {k}={v!r}" for k, v in self.settings.items())
        return f"{self.policy.__name__}(total_steps=<the run's>{settings})"


def get_lr_policy(name: str, total_steps: Optional[int] = None, **kwargs) -> Union[LRPolicy, DeferredLRPolicy]:
    """Build a policy by class name (``"WarmupAnnealing"``) or snake_case (``"warmup_annealing"``).

    Without `total_steps`, a policy that needs it (an annealing one, or any ``*_ratio`` setting) comes
    back as a `DeferredLRPolicy` for `train()` to bind to the run's own step count.
    """
    cls = _BY_ANY_NAME.get(name) if isinstance(name, str) else None
    if cls is None:
        known = ", ".join(f"{n} ({_snake_case(n)})" for n in LR_POLICIES)
        raise ValueError(f"Unknown lr policy {name!r}; known policies: {known}")
    needs_total = cls.requires_total_steps or any(k.endswith("_ratio") and v is not None for k, v in kwargs.items())
    try:
        if total_steps is None and needs_total:
            return DeferredLRPolicy(cls, **kwargs)
        return cls(total_steps=total_steps, **kwargs)
    except TypeError as err:
        raise TypeError(f"get_lr_policy({name!r}, ...): {err}") from None


LRPolicyArg = Union[None, str, LRPolicy, DeferredLRPolicy, Callable[[float, int, int], float]]


def bind_lr_policy(policy: LRPolicyArg, total_steps: int) -> Optional[Callable[[float, int, int], float]]:
    """What `train()` steps with, given its `lr_policy` argument and the run's own `total_steps`.

    A name is built for the run, a `DeferredLRPolicy` bound to it; a built policy is used as it is,
    with a warning when it anneals over another number of steps than the run takes.
    """
    if isinstance(policy, str):
        return get_lr_policy(policy, total_steps=total_steps)
    if isinstance(policy, DeferredLRPolicy):
        try:
            return policy.bind(total_steps)
        except ValueError as err:
            raise ValueError(f"lr_policy {policy!r} does not fit this run of {total_steps} steps: {err}") from None
    if isinstance(policy, LRPolicy) and policy.total_steps not in (None, total_steps):
        logger.warning(
            "%r anneals over %d steps but this run takes %d; build it without total_steps "
            "(get_lr_policy(name, warmup_ratio=...)) to use the run's own count",
            policy, policy.total_steps, total_steps,
        )
    return policy
