"""Print (and optionally TensorBoard-log) training tensors every few steps, on rank 0 only."""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

from nmod.log import get_logger

from .base import Callback, TrainingState

__all__ = ["SimpleLossLoggerCallback"]

logger = get_logger(__name__)


def _default_print(values: List[Any]) -> None:
    logger.info("loss: " + ", ".join(f"{float(v):.4f}" for v in values))


class SimpleLossLoggerCallback(Callback):
    """NeMo's loss logger: `print_func(values)` receives the values of `tensors` every `step_freq` steps.

    `get_tb_values(values)` returns `[(tag, scalar), ...]` for TensorBoard; `history` keeps
    `(step, [floats])` so scripts and tests can read the curve back.
    """

    def __init__(
        self,
        tensors: Sequence[Any],
        print_func: Optional[Callable[[List[Any]], None]] = None,
        get_tb_values: Optional[Callable[[List[Any]], List[tuple]]] = None,
        step_freq: int = 25,
        tb_writer: Any = None,
    ):
        if step_freq <= 0:
            raise ValueError(f"step_freq must be positive, got {step_freq}")
        self._tensors = list(tensors)
        self.print_func = print_func or _default_print
        self.get_tb_values = get_tb_values
        self.step_freq = step_freq
        self.tb_writer = tb_writer
        self.history: List[tuple] = []

    @property
    def tensors(self) -> List[Any]:
        return self._tensors

    def on_step_end(self, state: TrainingState) -> None:
        if state.step % self.step_freq != 0 or not state.is_main:
            return
        values = [state.values[t] for t in self._tensors]
        self.history.append((state.step, [float(v.float().mean()) if hasattr(v, "float") else float(v) for v in values]))
        self.print_func(values)
        writer = self.tb_writer or state.tb_writer
        if writer is not None:
            pairs = self.get_tb_values(values) if self.get_tb_values else [("loss", values[0])]
            for tag, value in pairs:
                writer.add_scalar(tag, float(value), state.step)
            writer.add_scalar("lr", state.lr, state.step)
