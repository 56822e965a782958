"""One optimizer set-up for the Trainer and head-only tuning: loss, optimizer, lr schedule, gradient scaler."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from dogclf.config import OptimConfig
from dogclf.runtime import Runtime
from dogclf.training.schedule import make_scheduler


@dataclass
class Optimization:
    """What a training step uses and updates: loss, optimizer, per-step lr schedule, fp16 scaler, clipping."""

    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    grad_clip: float | None


def make_optimizer(
    cfg: OptimConfig,
    head: Iterable[nn.Parameter],
    backbone: Iterable[nn.Parameter] | None = None,
    backbone_lr_mult: float = 1.0,
) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW over a 'head' group and, when given, a 'backbone' group at lr * backbone_lr_mult."""
    groups = [{"params": list(head), "lr": cfg.lr, "name": "head"}]
    if backbone is not None:
        groups.append({"params": list(backbone), "lr": cfg.lr * backbone_lr_mult, "name": "backbone"})
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_optimization(
    cfg: OptimConfig,
    runtime: Runtime,
    steps_per_epoch: int,
    head: Iterable[nn.Parameter],
    backbone: Iterable[nn.Parameter] | None = None,
    backbone_lr_mult: float = 1.0,
    class_weights: torch.Tensor | None = None,
) -> Optimization:
    """(Class-weighted, label-smoothed) cross-entropy, the optimizer, its per-step schedule and an fp16 scaler."""
    weight = class_weights.to(runtime.device) if class_weights is not None else None
    criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
    optimizer = make_optimizer(cfg, head, backbone, backbone_lr_mult)
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.precision == "fp16")
    return Optimization(criterion, optimizer, scheduler, scaler, cfg.grad_clip)
