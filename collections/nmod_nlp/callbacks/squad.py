"""An EvaluatorCallback that turns eval logits into SQuAD predictions, files and official EM/F1."""
from __future__ import annotations

from typing import Any, Optional

from nmod.callbacks import EvaluatorCallback

from ..data.squad.evaluation import SquadEvaluator
from ._evaluator import is_main, task_evaluator

__all__ = ["squad_evaluator_callback"]


def squad_evaluator_callback(
    unique_ids: Any,
    start_logits: Any,
    end_logits: Any,
    evaluator: SquadEvaluator,
    output_prediction_file: Optional[str] = None,
    output_nbest_file: Optional[str] = None,
    output_null_log_odds_file: Optional[str] = None,
    **schedule: Any,
) -> EvaluatorCallback:
    """Composition, not a subclass: two small functions handed to the generic EvaluatorCallback.

    Every rank receives the gathered logits and computes the same metrics; only rank 0 writes files.

    ``schedule``: when it evaluates, `EvaluatorCallback`'s keywords (``eval_step``, ``eval_epoch``, ...).
    """

    def on_batch(values: dict, global_vars: dict) -> None:
        if not global_vars:
            evaluator.reset()
            global_vars["batches"] = 0
        for ids, start, end in zip(values[unique_ids.name], values[start_logits.name], values[end_logits.name]):
            evaluator.add(ids, start, end)
            global_vars["batches"] += 1

    def on_done(global_vars: dict) -> dict:
        write = is_main()
        metrics = evaluator.compute(
            output_prediction_file if write else None,
            output_nbest_file if write else None,
            output_null_log_odds_file if write else None,
        )
        evaluator.reset()
        return dict(metrics)

    return task_evaluator([unique_ids, start_logits, end_logits], on_batch, on_done, **schedule)
