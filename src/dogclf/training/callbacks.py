"""Callback protocol: debug hooks, profilers, live rules and HPO pruning plug in here, not in the loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dogclf.training.loop import Trainer, TrainResult


class Callback:
    """No-op base; override what you need. Set `trainer.should_stop = True` to end training early."""

    def on_train_start(self, trainer: Trainer) -> None:
        """After model, optimizer and data are ready (and a resume is applied)."""

    def on_phase_start(self, trainer: Trainer, phase: str) -> None:
        """Before 'train', 'valid' or 'test' passes."""

    def on_step_end(self, trainer: Trainer, out: dict[str, Any]) -> None:
        """After each training step: out has step, epoch, loss, batch_size and timing splits."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """After validation of each epoch, with the epoch's metrics record."""

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        """After the test evaluation and the artifact are written."""
