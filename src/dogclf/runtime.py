"""Device, precision and memory-format choice, and seeding."""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from dogclf.config import RuntimeConfig
from dogclf.errors import ConfigError


def cpu_supports_bf16() -> bool:
    """True where oneDNN has native bf16 kernels (AVX512-BF16/AMX); elsewhere bf16 is slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass(frozen=True)
class Runtime:
    """Resolved compute settings."""

    device: torch.device
    precision: str  # fp32 | bf16 | fp16
    channels_last: bool

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The reduced-precision dtype to autocast to, or None for fp32."""
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context for forward passes (a no-op for fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """Move a batch to the device in the model's memory format."""
        fmt = torch.channels_last if self.channels_last and x.dim() == 4 else torch.contiguous_format
        return x.to(self.device, non_blocking=True, memory_format=fmt)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move a model to the device and memory format."""
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def describe(self) -> str:
        """One line for logs and the run summary."""
        return f"device={self.device} precision={self.precision} channels_last={self.channels_last}"


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("runtime.device=cuda but no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("runtime.device=mps but MPS is not available")
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(name)


def _pick_precision(name: str, device: torch.device) -> str:
    if name != "auto":
        if name == "fp16" and device.type == "cpu":
            raise ConfigError("runtime.precision=fp16 is for GPUs; use bf16 or fp32 on the CPU")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return "fp32"


def resolve_runtime(cfg: RuntimeConfig) -> Runtime:
    """Turn 'auto' settings into concrete ones for this machine."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _pick_device(cfg.device)
    precision = _pick_precision(cfg.precision, device)
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type in ("cpu", "cuda")
    return Runtime(device, precision, channels_last)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """RNG states in a form torch.load(weights_only=True) accepts."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what rng_state() captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, key, *rest = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
