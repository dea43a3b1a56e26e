"""Callbacks: hooks the executor calls during training, with one explicit state object."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

__all__ = ["Callback", "TrainingState"]


@dataclass
class TrainingState:
    """What callbacks see. `values` maps each NmTensor a callback asked for to its value on the last
    micro-batch of the step (`state.values[tensor]`)."""

    actions: Any
    step: int = 0  # optimizer steps completed
    total_steps: int = 0  # optimizer steps the whole run takes, as the executor counted them
    epoch: int = 0
    batch_in_epoch: int = 0  # micro-batches consumed in the current epoch
    lr: float = 0.0
    loss: Optional[float] = None
    values: Dict[Any, Any] = field(default_factory=dict)
    is_main: bool = True
    should_stop: bool = False
    tb_writer: Any = None


class Callback:
    """Override what you need. `tensors` lists the graph tensors to compute on every training step."""

    @property
    def tensors(self) -> List[Any]:
        return []

    def on_train_start(self, state: TrainingState) -> None:
        pass

    def on_step_end(self, state: TrainingState) -> None:
        pass

    def on_epoch_end(self, state: TrainingState) -> None:
        pass

    def on_train_end(self, state: TrainingState) -> None:
        pass
