"""The epoch loop of the Trainer and head-only tuning: seeded epochs, validation, best epoch, early stopping.

The Trainer and `dogclf.tune.head` differ only in what one epoch trains and validates (images through the model,
or cached features through the head); the order of the work, the per-epoch record, the best-epoch choice and
early stopping are written here once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from dogclf.running_metrics import RunningMetrics
from dogclf.runtime import seed_everything
from dogclf.training.best import BestEpoch
from dogclf.training.step import epoch_seed, train_step

if TYPE_CHECKING:
    from torch import nn

    from dogclf.runtime import Runtime
    from dogclf.training.optim import Optimization

log = logging.getLogger("dogclf")


@dataclass
class EpochSteps:
    """What the steps of one epoch added up to: plain cross-entropy, the objective, and each step's lr."""

    plain: RunningMetrics = field(default_factory=RunningMetrics)
    objective: RunningMetrics = field(default_factory=RunningMetrics)
    lrs: list[float] = field(default_factory=list)


def run_steps(
    model: nn.Module,
    batches: Iterable[tuple[Any, Any]],
    steps: int,
    opt: Optimization,
    runtime: Runtime,
    after_step: Callable[[dict[str, Any]], bool] | None = None,
) -> EpochSteps:
    """Train `model` on at most `steps` batches; `after_step(step)` sees every step and returns True to stop."""
    out = EpochSteps()
    for i, (inputs, targets) in enumerate(batches):
        out.lrs.append(opt.optimizer.param_groups[0]["lr"])  # the lr this step uses
        step = train_step(model, inputs, targets, opt, runtime)
        y = step["targets"]
        out.plain.update(step["ce_sum"], step["logits"], y)  # plain CE: comparable with the valid loss
        out.objective.update(step["loss"] * y.numel(), step["logits"], y)
        stop = after_step is not None and after_step(step)
        if i + 1 >= steps or stop:
            break
    return out


class EpochWork(Protocol):
    """What one epoch trains and validates; the loop calls these in order every epoch."""

    def begin_epoch(self, epoch: int) -> None:
        """Prepare epoch `epoch` (0-based) before its seed is set (e.g. unfreeze, build the training forward)."""

    def train_epoch(self, epoch: int) -> tuple[dict[str, float], list[float]]:
        """Train one epoch: its train metrics and the lr of each of its steps."""

    def validate(self) -> dict[str, float]:
        """The valid metrics after this epoch's training."""

    def end_epoch(self, record: dict[str, Any], improved: bool) -> None:
        """Take the epoch's record (already in the history); may raise to end training (a pruned trial)."""


def run_epochs(
    work: EpochWork,
    epochs: range,
    seed: int,
    best: BestEpoch,
    history: list[dict],
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Run `epochs` of `work` into `history` until done, `stop()` or early stopping (`best` exhausted)."""
    for epoch in epochs:
        if stop() or best.exhausted:
            break
        work.begin_epoch(epoch)
        seed_everything(epoch_seed(seed, epoch))
        started = time.perf_counter()
        train, lrs = work.train_epoch(epoch)
        valid = work.validate()
        lr = sum(lrs) / len(lrs)  # mean over the epoch's steps (every epoch has at least one)
        record = {"epoch": epoch + 1, "train": train, "valid": valid, "lr": lr}
        record["seconds"] = round(time.perf_counter() - started, 3)
        improved = best.update(epoch + 1, valid)
        history.append(record)
        if best.exhausted:
            log.info("early stopping: no better %s for %d epochs", best.monitor, best.patience)
        work.end_epoch(record, improved)
