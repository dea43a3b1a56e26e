"""One evaluation pass for a task with two heads: several evaluator callbacks over the same eval graph."""
from __future__ import annotations

from typing import Sequence

from nmod.callbacks import EvaluatorCallback

__all__ = ["combined_evaluator_callback"]


def combined_evaluator_callback(callbacks: Sequence[EvaluatorCallback]) -> EvaluatorCallback:
    """An EvaluatorCallback that runs the eval data once and feeds every one of `callbacks`.

    Each keeps its own `global_vars`, and the metrics are merged (keys should differ: give each a
    `name`, such as "punct" and "capit"). The schedule (eval_step, eval_epoch, eval_at_start,
    eval_at_end, tb_writer) is the first callback's. Without this, two evaluators would each run the encoder
    over the eval set.
    """
    callbacks = list(callbacks)
    if not callbacks:
        raise ValueError("combined_evaluator_callback needs at least one callback")
    tensors = list({t.name: t for cb in callbacks for t in cb.eval_tensors}.values())

    def on_batch(values: dict, global_vars: dict) -> None:
        for i, cb in enumerate(callbacks):
            cb.user_iter_callback(values, global_vars.setdefault(i, {}))

    def on_done(global_vars: dict) -> dict:
        metrics: dict = {}
        for i, cb in enumerate(callbacks):
            metrics.update(cb.user_epochs_done_callback(global_vars.get(i, {})) or {})
        return metrics

    first = callbacks[0]
    return EvaluatorCallback(tensors, on_batch, on_done, eval_step=first.eval_step, eval_epoch=first.eval_epoch,
                             eval_at_start=first.eval_at_start, tb_writer=first.tb_writer,
                             eval_at_end=getattr(first, "eval_at_end", True))
