"""What every task evaluator shares: which rank writes files, and the schedule it hands to nmod's
`EvaluatorCallback` unchanged."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from nmod.callbacks import EvaluatorCallback


def is_main() -> bool:
    """Rank 0, or the only process: the one that logs and writes prediction files."""
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


def task_evaluator(eval_tensors: Sequence[Any], on_batch: Callable[[dict, dict], None],
                   on_done: Callable[[dict], dict], **schedule: Any) -> EvaluatorCallback:
    """An `EvaluatorCallback` over ``eval_tensors``. ``schedule``: its ``eval_step``, ``eval_epoch``,
    ``eval_at_start``, ``eval_at_end`` and ``tb_writer`` (``recipe.eval_schedule(args)`` gives the
    recipes'); by default it evaluates once, on the final weights."""
    return EvaluatorCallback(eval_tensors=eval_tensors, user_iter_callback=on_batch,
                             user_epochs_done_callback=on_done, **schedule)
