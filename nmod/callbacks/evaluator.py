"""Evaluate a graph during training (or once, with `factory.eval`) through two user functions."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence

from nmod.log import get_logger

from .base import Callback, TrainingState

__all__ = ["EvaluatorCallback"]

logger = get_logger(__name__)


class EvaluatorCallback(Callback):
    """NeMo's evaluator.

    For every eval batch, `user_iter_callback(values, global_vars)` gets `values[tensor.name]`: the
    list of that batch's values from all ranks. After the data, `user_epochs_done_callback(global_vars)`
    returns a dict of metrics, which every rank keeps in `self.results` as `(step, metrics)`, and rank 0
    logs and writes to TensorBoard. `global_vars` is a fresh dict for each evaluation.

    It evaluates every `eval_step` steps, every `eval_epoch` epochs, before training
    (`eval_at_start`) and on the final weights (`eval_at_end`, unless the last evaluation was there).
    """

    def __init__(
        self,
        eval_tensors: Sequence[Any],
        user_iter_callback: Callable[[Dict[str, List[Any]], dict], None],
        user_epochs_done_callback: Callable[[dict], Optional[dict]],
        eval_step: Optional[int] = None,
        eval_epoch: Optional[int] = None,
        eval_at_start: bool = False,
        tb_writer: Any = None,
        eval_at_end: bool = True,
    ):
        if eval_step is not None and eval_step <= 0:
            raise ValueError(f"eval_step must be positive, got {eval_step}")
        self.eval_tensors = list(eval_tensors)
        self.user_iter_callback = user_iter_callback
        self.user_epochs_done_callback = user_epochs_done_callback
        self.eval_step = eval_step
        self.eval_epoch = eval_epoch
        self.eval_at_start = eval_at_start
        self.eval_at_end = eval_at_end
        self.tb_writer = tb_writer
        self.results: List[tuple] = []

    def run(self, actions: Any, step: int = 0, tb_writer: Any = None) -> Optional[dict]:
        global_vars: dict = {}
        for values in actions.iterate_eval(self.eval_tensors):
            self.user_iter_callback(values, global_vars)
        metrics = self.user_epochs_done_callback(global_vars) or {}
        self.results.append((step, dict(metrics)))  # every rank: each computed them from the gathered values
        if actions.is_main:
            if metrics:
                logger.info(f"step {step}: " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
            writer = self.tb_writer or tb_writer
            if writer is not None:
                for key, value in metrics.items():
                    if isinstance(value, (int, float)):
                        writer.add_scalar(f"eval/{key}", value, step)
        return metrics

    def on_train_start(self, state: TrainingState) -> None:
        if self.eval_at_start and state.step == 0:
            self.run(state.actions, state.step, state.tb_writer)

    def on_step_end(self, state: TrainingState) -> None:
        if self.eval_step and state.step % self.eval_step == 0:
            self.run(state.actions, state.step, state.tb_writer)

    def on_epoch_end(self, state: TrainingState) -> None:
        if self.eval_epoch and (state.epoch + 1) % self.eval_epoch == 0:
            self.run(state.actions, state.step, state.tb_writer)

    def on_train_end(self, state: TrainingState) -> None:
        """Evaluate the final weights, unless the last evaluation already did (a run shorter than an
        epoch, or one that ends between two `eval_step`s, would otherwise report its start as its end)."""
        if self.eval_at_end and (not self.results or self.results[-1][0] != state.step):
            self.run(state.actions, state.step, state.tb_writer)
