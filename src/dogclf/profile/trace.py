"""A short torch.profiler window over a few training steps: operator table and Chrome trace."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from dogclf.fsutil import atomic_write_text
from dogclf.profile.data import OPS_FILE, OPS_TABLE_FILE, TRACE_FILE

log = logging.getLogger("dogclf")
TOP_OPS = 30


class TraceWindow:
    """torch.profiler opened after step `start - 2`, warm-up on `start - 1`, records `steps` from `start`."""

    def __init__(self, folder: Path, start: int, steps: int, cuda: bool) -> None:
        self.folder, self.start, self.steps, self.cuda = folder, start, steps, cuda
        self.prof = None
        self.done = steps == 0
        self.exported = False

    def on_step(self, step: int) -> None:
        """Call after every training step with its global step number."""
        if self.prof is not None:
            self.prof.step()
            if step >= self.start + self.steps - 1:
                self.close()
        elif not self.done and step == self.start - 2:
            self._open()

    def _open(self) -> None:
        from torch.profiler import ProfilerActivity, profile, schedule

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.cuda else [])
        self.prof = profile(
            activities=activities,
            schedule=schedule(wait=0, warmup=1, active=self.steps, repeat=1),
            on_trace_ready=self._export,
        )
        self.prof.start()

    def close(self) -> None:
        """Stop recording (exports when at least one step was recorded); later steps are not traced."""
        if self.prof is not None:
            prof, self.prof = self.prof, None
            prof.stop()
        self.done = True

    def warn_if_missing(self, last_step: int) -> None:
        """Say so when the run ended before the window recorded anything (too few training steps)."""
        if self.steps and not self.exported:
            log.warning(
                "profiler: no torch.profiler trace (ops.txt, ops.json, trace.json): the run had %d training "
                "step(s), the window opens at step %d (profile.trace_start_step)",
                last_step,
                self.start,
            )

    def _export(self, prof) -> None:
        self.exported = True
        self.folder.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(self.folder / TRACE_FILE))
        averages = prof.key_averages()
        sort = "self_cuda_time_total" if self.cuda else "self_cpu_time_total"
        atomic_write_text(self.folder / OPS_TABLE_FILE, averages.table(sort_by=sort, row_limit=TOP_OPS))
        rows = [
            {
                "name": e.key,
                "calls": int(e.count),
                "self_cpu_ms": e.self_cpu_time_total / 1e3,
                "cpu_total_ms": e.cpu_time_total / 1e3,
                "self_device_ms": getattr(e, "self_device_time_total", 0.0) / 1e3,
            }
            for e in averages
        ]
        key = "self_device_ms" if self.cuda else "self_cpu_ms"
        rows = sorted((r for r in rows if not r["name"].startswith("ProfilerStep")), key=lambda r: r[key], reverse=True)
        atomic_write_text(self.folder / OPS_FILE, json.dumps(rows[:TOP_OPS], indent=1))
        log.info("profiler: torch.profiler trace of %d step(s) in %s", self.steps, self.folder / TRACE_FILE)
