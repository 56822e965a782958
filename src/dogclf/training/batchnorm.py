"""BatchNorm running statistics recomputed for the current weights (what eval-mode forwards normalize with)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader

from dogclf.data.dataset import loader_workers, make_loader
from dogclf.models import train_mode
from dogclf.runtime import Runtime


def recalibrate_batchnorm(model: nn.Module, loader: DataLoader, runtime: Runtime) -> int:
    """Replace the running mean/var of every BatchNorm that trains by their average over `loader`; how many.

    BatchNorm's running statistics are a moving average (momentum 0.1) of past batches, computed with past
    weights: when the weights move fast (a high lr early in a from-scratch run) they lag behind, and eval-mode
    losses spike although the network is fine. Frozen BatchNorm layers (kept in eval mode) are left alone.
    """
    train_mode(model)
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training]
    if layers:
        momenta = [m.momentum for m in layers]
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average over the batches below
        with torch.no_grad():
            for images, _ in loader:
                with runtime.autocast():
                    model(runtime.to_input(images))
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    model.eval()
    return len(layers)


def recalibrate_on_train_set(trainer: Any, model: nn.Module | None = None) -> int:
    """recalibrate_batchnorm of `model` (default: what `trainer`, a Trainer, trains) over its epoch's train images.

    The training transform: the layers after each BatchNorm learnt on augmented images' statistics (measured:
    eval-transform statistics left the final valid loss at 0.29 where the running ones gave 0.04).
    """
    data = trainer.cfg.data
    bs = data.eval_batch_size or 2 * data.batch_size
    dataset = trainer.train_set  # augmentation seeded by the epoch: this epoch's crops, in order
    loader = make_loader(dataset, bs, False, loader_workers(trainer.workers, len(dataset), bs), 0)
    return recalibrate_batchnorm(trainer.model if model is None else model, loader, trainer.runtime)


def recalibrate_before_validation(trainer: Any) -> None:
    """With optim.bn_recalibrate, recalibrate what trains; callbacks see a "recalibrate" phase, not training steps."""
    if trainer.cfg.optim.bn_recalibrate:
        trainer.notify("on_phase_start", "recalibrate")  # the debug hook: PREDICT mode
        recalibrate_on_train_set(trainer)
