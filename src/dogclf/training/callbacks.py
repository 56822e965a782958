"""Callback protocol: debug hooks, profilers, live rules and HPO pruning plug in here, not in the loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from dogclf.config import RunConfig
    from dogclf.runtime import Runtime
    from dogclf.training.result import TrainResult


@dataclass
class TrainContext:
    """What callbacks see of a run; the Trainer keeps `global_step` and `epoch` current."""

    run_root: Path
    config: RunConfig
    model: nn.Module
    criterion: nn.Module
    runtime: Runtime
    is_main: bool
    steps_per_epoch: int
    workers: int
    class_names: list[str]
    class_counts: dict[str, list[int]] = field(default_factory=dict)
    valid_confusion: list[list[int]] = field(default_factory=list)  # the latest validation's, set before on_epoch_end
    global_step: int = 0
    epoch: int = 0
    stop_requested: bool = False

    def request_stop(self) -> None:
        """Ask the Trainer to stop after this step (or, under DDP, this epoch)."""
        self.stop_requested = True


class Callback:
    """No-op base; override what you need. Call `ctx.request_stop()` to end training early."""

    def on_train_start(self, ctx: TrainContext) -> None:
        """After model, optimizer and data are ready (and a resume is applied)."""

    def on_phase_start(self, ctx: TrainContext, phase: str) -> None:
        """Before 'train', 'valid' or 'test' passes."""

    def on_step_end(self, ctx: TrainContext, out: dict[str, Any]) -> None:
        """After each training step: out has step, epoch, loss, batch_size, lr and timing splits."""

    def on_epoch_end(self, ctx: TrainContext, record: dict[str, Any]) -> None:
        """After validation of each epoch, with the epoch's metrics record."""

    def on_train_end(self, ctx: TrainContext, result: TrainResult) -> None:
        """After the test evaluation and the artifact are written."""
