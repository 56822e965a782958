"""Exact running loss and top-1/top-5 accuracy over the batches of one pass."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class RunningMetrics:
    """Exact per-sample sums: loss is sum(loss_i)/n, not a mean of batch means."""

    loss_sum: float = 0.0
    top1: int = 0
    top5: int = 0
    n: int = 0
    classes: int = 0

    def update(self, loss_sum: float, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch: its summed (not mean) loss, and top-1/top-5 hits of `logits` against `targets`."""
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top.eq(targets.view(-1, 1))
        self.loss_sum += loss_sum
        self.top1 += int(hits[:, 0].sum())
        self.top5 += int(hits.any(dim=1).sum())
        self.n += int(targets.numel())
        self.classes = max(self.classes, int(logits.shape[1]))

    def result(self) -> dict[str, float | None]:
        """Loss, top-1 and top-5 over all samples so far (NaN before any); top-5 is None with 5 classes or fewer."""
        if self.n == 0:
            return {"loss": math.nan, "top1": math.nan, "top5": math.nan, "n": 0}
        top5 = self.top5 / self.n if self.classes > 5 else None
        return {"loss": self.loss_sum / self.n, "top1": self.top1 / self.n, "top5": top5, "n": self.n}
