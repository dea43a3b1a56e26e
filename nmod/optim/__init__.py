"""Optimizers by name and learning-rate policies (NeMo 0.11 names)."""
from .lamb import Lamb
from .lr_policies import (
    LR_POLICIES,
    CosineAnnealing,
    DeferredLRPolicy,
    InverseSquareRootAnnealing,
    LRPolicy,
    PolynomialDecayAnnealing,
    PolynomialHoldDecayAnnealing,
    SquareAnnealing,
    SquareRootAnnealing,
    WarmupAnnealing,
    WarmupHoldPolicy,
    WarmupPolicy,
    bind_lr_policy,
    get_lr_policy,
)
from .novograd import Novograd
from .optimizers import OPTIMIZERS, apex_available, get_optimizer, no_weight_decay, weight_decay_groups

__all__ = [
    "get_optimizer",
    "weight_decay_groups",
    "no_weight_decay",
    "apex_available",
    "OPTIMIZERS",
    "Lamb",
    "Novograd",
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
    "get_lr_policy",
    "DeferredLRPolicy",
    "bind_lr_policy",
    "LR_POLICIES",
]
