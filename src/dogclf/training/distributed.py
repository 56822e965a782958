"""Data-parallel training from the environment: torchrun and SageMaker torch_distributed set RANK etc.

One process per device; gloo on CPU, NCCL on CUDA. Each rank trains on its DistributedSampler shard,
gradients are averaged by DistributedDataParallel, metric sums are all-reduced, and rank 0 alone writes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from dogclf.errors import ConfigError
from dogclf.running_metrics import RunningMetrics


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process, so collectives are needed."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0, the process that logs and writes files."""
        return self.rank == 0


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {value!r}") from None


def info_from_env(environ: Mapping[str, str] | None = None) -> DistInfo:
    """RANK / WORLD_SIZE / LOCAL_RANK (torchrun, SageMaker torch_distributed); one process when unset."""
    env = os.environ if environ is None else environ
    info = DistInfo(_int(env, "RANK", 0), _int(env, "WORLD_SIZE", 1), _int(env, "LOCAL_RANK", 0))
    if not 0 <= info.rank < max(info.world_size, 1):
        raise ConfigError(f"RANK={info.rank} is outside WORLD_SIZE={info.world_size}")
    return info


def setup(info: DistInfo, device: torch.device) -> bool:
    """Join the process group `info` describes; True when this call created it (so it should end it)."""
    if not info.enabled or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=info.rank, world_size=info.world_size)
    return True


def active() -> bool:
    """True inside an initialized process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _device() -> torch.device:
    """Where collective tensors must live: the current GPU for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every rank (no-op for one process)."""
    if active():
        dist.barrier()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel over the currently trainable parameters (the model itself for one process)."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def reduce_metrics(running: RunningMetrics) -> RunningMetrics:
    """Sum per-sample loss and hit counts over ranks, so every rank gets the whole epoch's metrics."""
    if not active():
        return running
    values = [running.loss_sum, running.top1, running.top5, running.n]
    totals = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(totals)
    loss_sum, top1, top5, n = totals.tolist()
    return RunningMetrics(loss_sum, int(top1), int(top5), int(n), running.classes)


def any_rank(flag: bool) -> bool:
    """True when `flag` is true on any rank (stop decisions must agree, or ranks deadlock)."""
    if not active():
        return flag
    value = torch.tensor([int(flag)], device=_device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def from_main(value: Any) -> Any:
    """Rank 0's `value` on every rank (keeps best-epoch and stopping decisions identical across ranks)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
