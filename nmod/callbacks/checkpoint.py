"""Save module weights and the trainer state every N steps/epochs; resume from the latest one."""
from __future__ import annotations

from typing import Optional

from .base import Callback, TrainingState

__all__ = ["CheckpointCallback"]


class CheckpointCallback(Callback):
    """Checkpoints go to `folder/step-XXXXXXXX/` (one file per module + `trainer.pt` + a manifest of
    their sizes and SHA-256), written to a temporary folder and renamed, so the last good checkpoint is
    never half-written. Old ones are pruned beyond `checkpoints_to_keep` only once the new one is in
    place; a failed write (a full disk) stops training with CheckpointWriteError and prunes nothing.

    `load_from_folder` (default: `folder`) is searched for the newest intact checkpoint before training
    starts (a damaged newer one is skipped with a warning); the run then resumes exactly where it
    stopped. Only rank 0 writes.
    """

    def __init__(
        self,
        folder: str,
        load_from_folder: Optional[str] = None,
        step_freq: int = -1,
        epoch_freq: int = -1,
        checkpoints_to_keep: int = 4,
        force_load: bool = False,
        save_at_end: bool = True,
    ):
        if step_freq <= 0 and epoch_freq <= 0 and not save_at_end:
            raise ValueError("CheckpointCallback needs step_freq > 0, epoch_freq > 0 or save_at_end=True")
        if checkpoints_to_keep < 1:
            raise ValueError(f"checkpoints_to_keep must be >= 1, got {checkpoints_to_keep}")
        self.folder = folder
        self.load_from_folder = load_from_folder if load_from_folder is not None else folder
        self.step_freq = step_freq
        self.epoch_freq = epoch_freq
        self.checkpoints_to_keep = checkpoints_to_keep
        self.force_load = force_load
        self.save_at_end = save_at_end
        self._last_saved_step: Optional[int] = None

    def _save(self, state: TrainingState) -> None:
        if self._last_saved_step == state.step:
            return
        state.actions.save_checkpoint(self.folder, self.checkpoints_to_keep)
        self._last_saved_step = state.step

    def restore(self, actions) -> None:
        """Called by the executor before any other hook, so every callback sees the resumed state."""
        actions.restore_checkpoint(self.load_from_folder, required=self.force_load)
        self._last_saved_step = actions.state.step

    def on_step_end(self, state: TrainingState) -> None:
        if self.step_freq > 0 and state.step % self.step_freq == 0:
            self._save(state)

    def on_epoch_end(self, state: TrainingState) -> None:
        if self.epoch_freq > 0 and (state.epoch + 1) % self.epoch_freq == 0:
            self._save(state)

    def on_train_end(self, state: TrainingState) -> None:
        if self.save_at_end:
            self._save(state)
