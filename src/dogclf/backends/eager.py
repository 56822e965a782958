"""Eager PyTorch: the artifact's inference copy (dogclf.models.folding) run op by op."""

from __future__ import annotations

import torch

from dogclf.models.folding import inference_model
from dogclf.runtime import Runtime


class EagerBackend:
    """The model run op by op by PyTorch on the runtime's device and precision."""

    name = "eager"

    def __init__(self, model: torch.nn.Module, runtime: Runtime) -> None:
        self.runtime = runtime
        self.precision = runtime.precision
        self.model = runtime.prepare_model(inference_model(model, runtime))

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """NCHW float32 batch -> float32 logits on the CPU."""
        with self.runtime.autocast():
            out = self.model(self.runtime.to_input(batch))
        return out.float().cpu()

    def describe(self) -> str:
        """Engine and runtime, for logs."""
        return f"eager torch, {self.runtime.describe()}"
