"""torch.compile (inductor, freezing): weights folded into the compiled graph, one compile per process.

The batch dimension is compiled dynamic, so batches of any size share one graph. Inductor keeps its
compiled code in its on-disk cache (TORCHINDUCTOR_CACHE_DIR, default /tmp/torchinductor_USER), so a restart
on the same machine compiles much faster than the first start.
"""

from __future__ import annotations

import logging
import time

import torch

from dogclf.runtime import Runtime

log = logging.getLogger(__name__)


class CompiledBackend:
    """The artifact's model compiled by inductor with `freezing=True`, under the runtime's autocast."""

    name = "compile"

    def __init__(self, model: torch.nn.Module, runtime: Runtime) -> None:
        import copy

        self.runtime = runtime
        self.precision = runtime.precision
        module = runtime.prepare_model(copy.deepcopy(model).eval())
        self.model = torch.compile(module, dynamic=True, options={"freezing": True})
        self._compiled = False

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """NCHW float32 batch -> float32 logits on the CPU; the first call compiles."""
        start = time.perf_counter()
        with self.runtime.autocast():
            out = self.model(self.runtime.to_input(batch))
        if not self._compiled:
            self._compiled = True
            log.info("torch.compile: first batch (compile included) took %.1f s", time.perf_counter() - start)
        return out.float().cpu()

    def describe(self) -> str:
        """Engine and runtime, for logs."""
        return f"torch.compile (inductor, freezing, dynamic batch), {self.runtime.describe()}"
