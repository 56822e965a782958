"""Synthetic runs written as real smdebug trials: per-step train losses, validations, class counts, confusions.

The losses go through a real `nn.CrossEntropyLoss` registered with dogclf's smdebug hook (two-class logits chosen
so the loss is the wanted value), the validations through the same `record_tensor_value` calls as training,
so the rules read exactly what a run would save.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dogclf.debug.config import CLASS_COUNTS_TENSOR, TRAIN_LOSS_TENSOR, VALID_CONFUSION_TENSOR, DebugConfig
from dogclf.debug.hook import VALID_LOSS_TENSOR, configure, create_hook


@dataclass
class Run:
    """What a run saves: per-step train losses, per-epoch valid losses, and optionally counts and confusions."""

    train: np.ndarray
    steps_per_epoch: int
    valid: list[float]
    train_ce: list[float] = field(default_factory=list)  # per epoch; default: the mean of the epoch's steps
    counts: list[int] | None = None
    confusions: list[np.ndarray] = field(default_factory=list)

    def epoch_train(self) -> list[float]:
        """Each epoch's plain-CE train loss."""
        if self.train_ce:
            return self.train_ce
        e = self.steps_per_epoch
        return [float(np.mean(self.train[i * e : (i + 1) * e])) for i in range(len(self.valid))]


def _logits(loss: float) -> torch.Tensor:
    """Two-class logits whose cross-entropy with label 0 is `loss` (NaN/inf give NaN logits)."""
    if not math.isfinite(loss):
        return torch.tensor([[0.0, float("nan")]])
    a = loss if loss > 30 else math.log(math.expm1(max(loss, 1e-7)))  # log(1 + e^a) = loss (to float precision)
    return torch.tensor([[0.0, a]])


def write_trial(run: Run, out: Path) -> Path:
    """Write `run` as smdebug tensors under `out` with dogclf's hook configuration; returns `out`."""
    from smdebug.pytorch import modes

    cfg = DebugConfig(enabled=True, save_interval=1, collections=["losses", "dataset"])
    hook = create_hook(cfg, out)
    configure(hook, cfg)
    model, criterion = nn.Identity(), nn.CrossEntropyLoss()
    hook.register_module(model)
    hook.register_loss(criterion)
    target = torch.tensor([0])
    if run.counts is not None:
        hook.save_tensor(CLASS_COUNTS_TENSOR, np.asarray(run.counts, dtype=np.float32), "dataset")
    e, train_ce = run.steps_per_epoch, run.epoch_train()
    for epoch in range(math.ceil(len(run.train) / e)):
        hook.set_mode(modes.TRAIN)
        for loss in run.train[epoch * e : (epoch + 1) * e]:
            criterion(model(_logits(float(loss))), target)
        if epoch >= len(run.valid):
            continue
        hook.set_mode(modes.EVAL)
        model(torch.zeros(1, 2))
        hook.record_tensor_value(VALID_LOSS_TENSOR, torch.tensor(float(run.valid[epoch])))
        hook.record_tensor_value(TRAIN_LOSS_TENSOR, torch.tensor(float(train_ce[epoch])))
        if epoch < len(run.confusions):
            hook.record_tensor_value(VALID_CONFUSION_TENSOR, torch.tensor(run.confusions[epoch], dtype=torch.float32))
    hook.close()
    return out


# ------------------------------------------------------------------ curves
def decay(n: int, start: float, end: float, tau: float) -> np.ndarray:
    """`n` steps from `start` to `end` along an exponential of time constant `tau` steps (inf: a straight line)."""
    t = np.arange(n, dtype=float)
    if math.isinf(tau):
        return start + (end - start) * t / max(n - 1, 1)
    shape = (1 - np.exp(-t / tau)) / (1 - math.exp(-(n - 1) / tau))
    return start + (end - start) * shape


def noisy(curve: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """The curve plus per-step noise, kept positive (a cross-entropy)."""
    return np.maximum(curve + rng.normal(0, sd, curve.size), 1e-3)


def confusions(classes: int, per_class: int, accuracy: list, rng: np.random.Generator) -> list[np.ndarray]:
    """One valid confusion matrix per epoch: class c right with probability `accuracy[epoch]` (or its [c]), errors
    spread over the other classes."""
    out = []
    for acc in accuracy:
        m = np.zeros((classes, classes))
        for c in range(classes):
            right = rng.binomial(per_class, acc if np.isscalar(acc) else acc[c])
            wrong = rng.choice([k for k in range(classes) if k != c], per_class - right)
            m[c, c] = right
            np.add.at(m[c], wrong, 1)
        out.append(m)
    return out


Generator = Callable[[np.random.Generator, dict], Run]
