"""Optimizers by name and learning-rate policies (NeMo 0.11 names)."""
from . import lr_policies
from .lamb import Lamb
from .lr_policies import *  # noqa: F403  (its __all__ is part of this one)
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
    *lr_policies.__all__,
]
