"""Per-step learning-rate factor: linear warmup, then cosine, step decay or constant."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from dogclf.config import OptimConfig


def lr_factor(step: int, cfg: OptimConfig, steps_per_epoch: int) -> float:
    """Multiplier of each group's base lr at optimizer step `step` (0-based)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if cfg.scheduler == "cosine":
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    if cfg.scheduler == "step":
        return cfg.gamma ** ((step // steps_per_epoch) // cfg.step_size)
    return 1.0


def make_scheduler(optimizer: Optimizer, cfg: OptimConfig, steps_per_epoch: int) -> LambdaLR:
    """A LambdaLR stepped once per optimizer step."""
    return LambdaLR(optimizer, lambda step: lr_factor(step, cfg, steps_per_epoch))
