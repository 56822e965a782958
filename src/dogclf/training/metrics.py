"""The one metric line format printed by training, and the SageMaker metric_definitions that parse it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

PREFIX = "[metrics]"
PHASES = ("train", "valid", "test")
FIELDS = ("loss", "top1", "top5")
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"


def format_metric_line(epoch: int, phase: str, values: dict[str, float]) -> str:
    """'[metrics] epoch=3 phase=valid loss=0.412300 top1=0.912000 top5=0.990000 n=120' (fixed field order)."""
    parts = [PREFIX, f"epoch={epoch}", f"phase={phase}"]
    parts += [f"{k}={values[k]:.6f}" for k in FIELDS if k in values]
    parts += [f"{k}={values[k]}" if isinstance(values[k], int) else f"{k}={values[k]:.6g}"
              for k in values if k not in FIELDS]  # fmt: skip
    return " ".join(parts)


def metric_regex(phase: str, field: str) -> str:
    """Regex whose first group captures `field` from `phase` metric lines."""
    return rf"{re.escape(PREFIX)} epoch=\d+ phase={phase} .*?\b{field}={_NUMBER}"


def metric_definitions() -> list[dict[str, str]]:
    """SageMaker estimator/tuner metric_definitions, e.g. {'Name': 'valid:loss', 'Regex': ...}."""
    return [{"Name": f"{phase}:{field}", "Regex": metric_regex(phase, field)} for phase in PHASES for field in FIELDS]


def parse_metric_lines(text: str) -> dict[str, list[float]]:
    """Apply metric_definitions to a log the way SageMaker does (first group, as float)."""
    found: dict[str, list[float]] = {}
    for definition in metric_definitions():
        pattern = re.compile(definition["Regex"])
        found[definition["Name"]] = [float(m.group(1)) for m in pattern.finditer(text)]
    return found


@dataclass
class RunningMetrics:
    """Exact per-sample sums: loss is sum(loss_i)/n, not a mean of batch means."""

    loss_sum: float = 0.0
    top1: int = 0
    top5: int = 0
    n: int = 0

    def update(self, loss_sum: float, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch: its summed (not mean) loss, and top-1/top-5 hits of `logits` against `targets`."""
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top.eq(targets.view(-1, 1))
        self.loss_sum += loss_sum
        self.top1 += int(hits[:, 0].sum())
        self.top5 += int(hits.any(dim=1).sum())
        self.n += int(targets.numel())

    def result(self) -> dict[str, float]:
        """Loss, top-1 and top-5 over all samples so far (NaN before any)."""
        if self.n == 0:
            return {"loss": math.nan, "top1": math.nan, "top5": math.nan, "n": 0}
        return {"loss": self.loss_sum / self.n, "top1": self.top1 / self.n, "top5": self.top5 / self.n, "n": self.n}
