"""One training step and the per-epoch seed, shared by the Trainer and head-only tuning (torch loads on use)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dogclf.runtime import Runtime
    from dogclf.training.optim import Optimization


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch `epoch` (0-based): its data order, augmentation and dropout."""
    return seed * 1_000_003 + epoch + 1


def train_step(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, opt: Optimization, runtime: Runtime
) -> dict[str, Any]:
    """Forward, loss, backward, clipping, optimizer and scheduler step on one batch.

    Returns the batch's mean loss (float, the objective minimized), `ce_sum` (plain cross-entropy summed over
    the batch: what train metrics report, comparable with the valid loss whatever smoothing or class weights
    the objective has), its detached float logits, the targets on the device and the seconds spent in forward
    (with the copy to the device), backward and the optimizer.
    """
    import torch.nn.functional as F
    from torch.nn.utils import clip_grad_norm_

    start = time.perf_counter()
    x, y = runtime.to_input(inputs), targets.to(runtime.device, non_blocking=True)
    with runtime.autocast():
        logits = model(x)
    loss = opt.criterion(logits.float(), y)
    t_fwd = time.perf_counter()
    opt.optimizer.zero_grad(set_to_none=True)
    opt.scaler.scale(loss).backward()
    t_bwd = time.perf_counter()
    if opt.grad_clip:
        opt.scaler.unscale_(opt.optimizer)
        clip_grad_norm_(model.parameters(), opt.grad_clip)
    opt.scaler.step(opt.optimizer)
    opt.scaler.update()
    opt.scheduler.step()
    t_opt = time.perf_counter()
    detached = logits.detach().float()
    return {
        "loss": float(loss.detach()),
        "ce_sum": float(F.cross_entropy(detached, y, reduction="sum")),
        "logits": detached,
        "targets": y,
        "forward_time": t_fwd - start,
        "backward_time": t_bwd - t_fwd,
        "optimizer_time": t_opt - t_bwd,
    }
