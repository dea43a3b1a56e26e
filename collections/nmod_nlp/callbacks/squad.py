"""An EvaluatorCallback that turns eval logits into SQuAD predictions, files and official EM/F1."""
from __future__ import annotations

from typing import Any, Optional

import torch

from nmod.callbacks import EvaluatorCallback

from ..data.squad.evaluation import SquadEvaluator

__all__ = ["squad_evaluator_callback"]


def _is_main() -> bool:
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


def squad_evaluator_callback(
    unique_ids: Any,
    start_logits: Any,
    end_logits: Any,
    evaluator: SquadEvaluator,
    output_prediction_file: Optional[str] = None,
    output_nbest_file: Optional[str] = None,
    output_null_log_odds_file: Optional[str] = None,
    eval_step: Optional[int] = None,
    eval_epoch: Optional[int] = None,
    eval_at_start: bool = False,
    tb_writer: Any = None,
) -> EvaluatorCallback:
    """Composition, not a subclass: two small functions handed to the generic EvaluatorCallback.

    Every rank receives the gathered logits and computes the same metrics; only rank 0 writes files.
    """

    def on_batch(values: dict, global_vars: dict) -> None:
        if not global_vars:
            evaluator.reset()
            global_vars["batches"] = 0
        for ids, start, end in zip(values[unique_ids.name], values[start_logits.name], values[end_logits.name]):
            evaluator.add(ids, start, end)
            global_vars["batches"] += 1

    def on_done(global_vars: dict) -> dict:
        write = _is_main()
        metrics = evaluator.compute(
            output_prediction_file if write else None,
            output_nbest_file if write else None,
            output_null_log_odds_file if write else None,
        )
        evaluator.reset()
        return dict(metrics)

    return EvaluatorCallback(
        eval_tensors=[unique_ids, start_logits, end_logits],
        user_iter_callback=on_batch,
        user_epochs_done_callback=on_done,
        eval_step=eval_step,
        eval_epoch=eval_epoch,
        eval_at_start=eval_at_start,
        tb_writer=tb_writer,
    )
