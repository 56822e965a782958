"""Train a classifier head from cached features, optimizing exactly what the Trainer would with freeze=backbone.

Same head initialization (same seed, same construction order), loss, optimizer and parameter group,
per-step lr schedule, batch order (the same seeded loader factory), grad clipping, precision, best-epoch
selection and early stopping; only the frozen backbone's forward pass is replaced by a cache lookup.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
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


def train_head(
    cfg: RunConfig,
    splits: dict[str, SplitFeatures],
    num_classes: int,
    on_epoch: Callable[[dict], None] | None = None,
) -> HeadRun:
    """Fit the head of `cfg` on cached train features, validating each epoch; on_epoch may raise to stop."""
    from torch.utils.data import TensorDataset

    from dogclf.data.dataset import make_loader, train_batches
    from dogclf.running_metrics import RunningMetrics
    from dogclf.runtime import resolve_runtime, seed_everything
    from dogclf.training.best import BestEpoch
    from dogclf.training.optim import make_optimization
    from dogclf.training.step import epoch_seed, train_step

    runtime = resolve_runtime(cfg.runtime)
    train = splits["train"]
    head = build_head(cfg, train.features.shape[1], num_classes).to(runtime.device)
    steps, drop = train_batches(len(train.labels), cfg.data.batch_size)  # as the Trainer: no last batch of one
    steps = min(steps, cfg.optim.max_steps_per_epoch or steps)
    opt = make_optimization(cfg.optim, runtime, steps, head.parameters())
    dataset, best, history = TensorDataset(train.features, train.labels), BestEpoch.from_config(cfg.optim), []
    for epoch in range(cfg.optim.epochs):
        seed = epoch_seed(cfg.runtime.seed, epoch)
        seed_everything(seed)
        head.train()
        running, lrs = RunningMetrics(), []
        for i, (x, y) in enumerate(make_loader(dataset, cfg.data.batch_size, True, 0, seed, drop_last=drop)):
            lrs.append(opt.optimizer.param_groups[0]["lr"])
            step = train_step(head, x, y, opt, runtime)
            running.update(step["ce_sum"], step["logits"], step["targets"])
            if i + 1 >= steps:
                break
        valid = evaluate_head(head, splits["valid"], runtime)
        record = {"epoch": epoch + 1, "train": running.result(), "valid": valid, "lr": sum(lrs) / len(lrs)}
        best.update(epoch + 1, valid)
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if best.exhausted:
            break
    return HeadRun(history, best.best_epoch)
