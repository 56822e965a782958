"""Where a request's time goes: seconds and counts per serving stage, published in /metrics."""

from __future__ import annotations

import threading
from collections.abc import Callable

# In request order: body read, wait for a decode thread, JPEG/PNG decode, resize + crop to uint8, wait for
# a batch (queue + batch delay), the engine's forward pass (batch assembly and normalization included), the
# logits' way back to the request, response encoding, and writing the response.
STAGES = ("read", "decode_queue", "decode", "resize_crop", "batch_wait", "engine", "return", "encode", "write")
StageHook = Callable[[str, float], None]


class StageClock:
    """Thread-safe totals of seconds and observations per stage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.counts = dict.fromkeys(STAGES, 0)

    def add(self, stage: str, seconds: float) -> None:
        """Record one observation of `stage` (one of STAGES)."""
        with self._lock:
            self.seconds[stage] += seconds
            self.counts[stage] += 1

    def render(self) -> list[str]:
        """Prometheus counter lines for /metrics."""
        with self._lock:
            lines = [
                "# HELP dogclf_stage_seconds_total Seconds spent per serving stage (per image for decode and "
                "resize_crop, per forward pass for engine, else per request).",
                "# TYPE dogclf_stage_seconds_total counter",
                *(f'dogclf_stage_seconds_total{{stage="{s}"}} {self.seconds[s]:.6f}' for s in STAGES),
                "# HELP dogclf_stage_observations_total Observations per serving stage.",
                "# TYPE dogclf_stage_observations_total counter",
                *(f'dogclf_stage_observations_total{{stage="{s}"}} {self.counts[s]}' for s in STAGES),
            ]
        return lines
