"""Best-epoch selection and early stopping, shared by the Trainer and head-only tuning."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dogclf.config import OptimConfig


@dataclass
class BestEpoch:
    """Tracks the best epoch by the monitored value (valid_loss or valid_top1) and the epochs since."""

    monitor: str
    min_delta: float = 0.0
    patience: int | None = None
    best_value: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0

    @classmethod
    def from_config(cls, cfg: OptimConfig) -> BestEpoch:
        """A tracker for `cfg.monitor`, `cfg.early_stopping_min_delta` and `cfg.early_stopping_patience`."""
        return cls(cfg.monitor, cfg.early_stopping_min_delta, cfg.early_stopping_patience)

    def update(self, epoch: int, valid: dict[str, float]) -> bool:
        """Record epoch `epoch` (1-based) by its validation metrics; True when it is the new best.

        A NaN or infinite value is never best: it counts as an epoch without improvement.
        """
        value = valid["loss"] if self.monitor == "valid_loss" else -valid["top1"]
        finite = math.isfinite(value)
        if finite and (self.best_value is None or value < self.best_value - self.min_delta):
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def exhausted(self) -> bool:
        """True once `patience` epochs in a row brought no improvement (never without a patience)."""
        return bool(self.patience and self.bad_epochs >= self.patience)
