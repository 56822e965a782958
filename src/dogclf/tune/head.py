"""Train a classifier head from cached features, optimizing exactly what the Trainer would with freeze=head.

Same head initialization (same seed, same construction order), loss, optimizer and parameter group,
per-step lr schedule, batch order (the same seeded loader factory), grad clipping, precision, best-epoch
selection and early stopping; only the frozen backbone's forward pass is replaced by a cache lookup.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from dogclf.config import RunConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dogclf.training.runtime import Runtime
    from dogclf.tune.features import SplitFeatures


@dataclass
class HeadRun:
    """Per-epoch records (as the Trainer's metrics.jsonl) and the selected epoch."""

    history: list[dict]
    best_epoch: int


def epoch_seed(seed: int, epoch: int) -> int:
    """The Trainer's per-epoch seed (Trainer._epoch_seed): data order and dropout of epoch `epoch`."""
    return seed * 1_000_003 + epoch + 1


@cache
def _initial_head_state(arch: str, num_classes: int, seed: int) -> dict[str, torch.Tensor]:
    """The head's initial weights in the Trainer: built after the backbone, from the same seeded RNG."""
    from dogclf.models import create_model, get_spec
    from dogclf.training.runtime import seed_everything

    seed_everything(seed)
    model = create_model(arch, num_classes, None, "head")  # weights don't consume RNG: skip loading them
    return copy.deepcopy(model.get_submodule(get_spec(arch).head).state_dict())


def build_head(cfg: RunConfig, in_features: int, num_classes: int) -> nn.Module:
    """The classifier head of `cfg` (dropout + linear), initialized as the Trainer initializes it."""
    from torch import nn

    linear = nn.Linear(in_features, num_classes)
    linear.load_state_dict(_initial_head_state(cfg.model.arch, num_classes, cfg.runtime.seed))
    return nn.Sequential(nn.Dropout(cfg.model.dropout), linear) if cfg.model.dropout > 0 else linear


def _optimizer(cfg: RunConfig, head: nn.Module) -> torch.optim.Optimizer:
    import torch

    o = cfg.optim
    groups = [{"params": list(head.parameters()), "lr": o.lr, "name": "head"}]
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=True)
    return torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay)


def evaluate_head(head: nn.Module, split: SplitFeatures, runtime: Runtime, chunk: int = 4096) -> dict[str, float]:
    """Plain cross-entropy summed per sample, top-1/top-5, like dogclf.evaluation.evaluate_loader."""
    import torch
    import torch.nn.functional as F

    from dogclf.training.metrics import RunningMetrics

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


class _Selector:
    """The Trainer's best-epoch choice (monitor, min_delta) and early-stopping patience."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg, self.best_value, self.best_epoch, self.bad_epochs = cfg, None, 0, 0

    def update(self, epoch: int, valid: dict[str, float]) -> bool:
        """Record an epoch; True when training should stop early."""
        o = self.cfg.optim
        value = valid["loss"] if o.monitor == "valid_loss" else -valid["top1"]
        if self.best_value is None or value < self.best_value - o.early_stopping_min_delta:
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return bool(o.early_stopping_patience and self.bad_epochs >= o.early_stopping_patience)


def train_head(
    cfg: RunConfig,
    splits: dict[str, SplitFeatures],
    num_classes: int,
    on_epoch: Callable[[dict], None] | None = None,
) -> HeadRun:
    """Fit the head of `cfg` on cached train features, validating each epoch; on_epoch may raise to stop."""
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset

    from dogclf.data.dataset import make_loader
    from dogclf.training.metrics import RunningMetrics
    from dogclf.training.runtime import resolve_runtime, seed_everything
    from dogclf.training.schedule import make_scheduler

    runtime = resolve_runtime(cfg.runtime)
    train = splits["train"]
    head = build_head(cfg, train.features.shape[1], num_classes).to(runtime.device)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)
    optimizer = _optimizer(cfg, head)
    steps = math.ceil(len(train.labels) / cfg.data.batch_size)
    steps = min(steps, cfg.optim.max_steps_per_epoch or steps)
    scheduler = make_scheduler(optimizer, cfg.optim, steps)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.precision == "fp16")
    dataset, selector, history = TensorDataset(train.features, train.labels), _Selector(cfg), []
    for epoch in range(cfg.optim.epochs):
        seed = epoch_seed(cfg.runtime.seed, epoch)
        seed_everything(seed)
        head.train()
        running = RunningMetrics()
        for i, (x, y) in enumerate(make_loader(dataset, cfg.data.batch_size, True, 0, seed)):
            x, y = x.to(runtime.device), y.to(runtime.device)
            with runtime.autocast():
                logits = head(x)
            loss = criterion(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.optim.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(head.parameters(), cfg.optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            running.update(float(loss.detach()) * y.numel(), logits.detach().float(), y)
            if i + 1 >= steps:
                break
        valid = evaluate_head(head, splits["valid"], runtime)
        record = {
            "epoch": epoch + 1,
            "train": running.result(),
            "valid": valid,
            "lr": optimizer.param_groups[0]["lr"],
        }
        stop = selector.update(epoch + 1, valid)
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if stop:
            break
    return HeadRun(history, selector.best_epoch)
