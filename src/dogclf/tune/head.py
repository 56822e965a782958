"""Train a classifier head from cached features, optimizing exactly what the Trainer would with freeze=backbone.

Same head initialization (same seed, same construction order), loss, optimizer and parameter group,
per-step lr schedule, batch order (the same seeded loader factory), grad clipping, precision, best-epoch
selection and early stopping; only the frozen backbone's forward pass is replaced by a cache lookup.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from dogclf.config import RunConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dogclf.runtime import Runtime
    from dogclf.tune.features import SplitFeatures


@dataclass
class HeadRun:
    """Per-epoch records (as the Trainer's metrics.jsonl) and the selected epoch."""

    history: list[dict]
    best_epoch: int


@cache
def _initial_head_state(arch: str, num_classes: int, seed: int) -> dict[str, torch.Tensor]:
    """The head's initial weights in the Trainer: built after the backbone, from the same seeded RNG."""
    from dogclf.models import create_model, get_spec
    from dogclf.runtime import seed_everything

    seed_everything(seed)
    model = create_model(arch, num_classes, None, "backbone")  # weights don't consume RNG: skip loading them
    return copy.deepcopy(model.get_submodule(get_spec(arch).head).state_dict())


def build_head(cfg: RunConfig, in_features: int, num_classes: int) -> nn.Module:
    """The classifier head of `cfg` (dropout + linear), initialized as the Trainer initializes it."""
    from torch import nn

    linear = nn.Linear(in_features, num_classes)
    linear.load_state_dict(_initial_head_state(cfg.model.arch, num_classes, cfg.runtime.seed))
    return nn.Sequential(nn.Dropout(cfg.model.dropout), linear) if cfg.model.dropout > 0 else linear


def evaluate_head(head: nn.Module, split: SplitFeatures, runtime: Runtime, chunk: int = 4096) -> dict[str, float]:
    """Plain cross-entropy summed per sample, top-1/top-5, like dogclf.evaluation.evaluate_loader."""
    import torch
    import torch.nn.functional as F

    from dogclf.running_metrics import RunningMetrics

    head.eval()
    running = RunningMetrics()
    with torch.inference_mode():
        for start in range(0, len(split.labels), chunk):
            x = split.features[start : start + chunk].to(runtime.device)
            y = split.labels[start : start + chunk].to(runtime.device)
            with runtime.autocast():
                logits = head(x)
            logits = logits.float()
            running.update(float(F.cross_entropy(logits, y, reduction="sum")), logits, y)
    return running.result()


class _HeadEpochs:
    """One epoch of head-only training: cached train features through the head, then the cached valid split."""

    def __init__(self, cfg: RunConfig, splits: dict[str, SplitFeatures], num_classes: int, on_epoch: Callable | None):
        from torch.utils.data import TensorDataset

        from dogclf.data.dataset import train_batches
        from dogclf.runtime import resolve_runtime
        from dogclf.training.optim import make_optimization

        self.cfg, self.splits, self.on_epoch = cfg, splits, on_epoch
        self.runtime = resolve_runtime(cfg.runtime)
        train = splits["train"]
        self.head = build_head(cfg, train.features.shape[1], num_classes).to(self.runtime.device)
        steps, self.drop = train_batches(len(train.labels), cfg.data.batch_size)  # as the Trainer: no batch of one
        self.steps = min(steps, cfg.optim.max_steps_per_epoch or steps)
        self.opt = make_optimization(cfg.optim, self.runtime, self.steps, self.head.parameters())
        self.dataset = TensorDataset(train.features, train.labels)

    def begin_epoch(self, epoch: int) -> None:
        """Nothing to prepare: the head alone trains."""

    def train_epoch(self, epoch: int) -> tuple[dict[str, float], list[float]]:
        """The epoch's seeded batches of cached features, as the Trainer's loader orders the images."""
        from dogclf.data.dataset import make_loader
        from dogclf.training.epochs import run_steps
        from dogclf.training.step import epoch_seed

        seed = epoch_seed(self.cfg.runtime.seed, epoch)
        self.head.train()
        batches = make_loader(self.dataset, self.cfg.data.batch_size, True, 0, seed, drop_last=self.drop)
        done = run_steps(self.head, batches, self.steps, self.opt, self.runtime)
        return done.plain.result(), done.lrs

    def validate(self) -> dict[str, float]:
        """The head on the cached valid split."""
        return evaluate_head(self.head, self.splits["valid"], self.runtime)

    def end_epoch(self, record: dict, improved: bool) -> None:
        """Hand the record to `on_epoch`, which may raise to stop (a pruned trial)."""
        if self.on_epoch is not None:
            self.on_epoch(record)


@contextmanager
def _one_thread(runtime: Runtime) -> Iterator[None]:
    """One intra-op CPU thread: a linear head's steps are too small to split, and splitting them costs more."""
    import torch

    if runtime.device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_head(
    cfg: RunConfig,
    splits: dict[str, SplitFeatures],
    num_classes: int,
    on_epoch: Callable[[dict], None] | None = None,
) -> HeadRun:
    """Fit the head of `cfg` on cached train features, validating each epoch; on_epoch may raise to stop."""
    from dogclf.training.best import BestEpoch
    from dogclf.training.epochs import run_epochs

    work = _HeadEpochs(cfg, splits, num_classes, on_epoch)
    best, history = BestEpoch.from_config(cfg.optim), []
    with _one_thread(work.runtime):
        run_epochs(work, range(cfg.optim.epochs), cfg.runtime.seed, best, history)
    return HeadRun(history, best.best_epoch)
