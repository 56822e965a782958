"""BatchNorm running statistics recomputed for the current weights (what eval-mode forwards normalize with)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader

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
