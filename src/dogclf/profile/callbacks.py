"""Trainer callbacks from the profile config: step split, system sampler, trace window, rules, report."""

from __future__ import annotations

import json
import logging
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.fsutil import atomic_write_text
from dogclf.profile.config import ProfileConfig
from dogclf.profile.data import META_FILE, RULES_FILE, STEPS_FILE, SYSTEM_FILE, load_profile
from dogclf.system import cpu_count
from dogclf.training.callbacks import Callback, TrainContext
from dogclf.training.rundir import RunPaths

if TYPE_CHECKING:
    from dogclf.config import RunConfig
    from dogclf.training.result import TrainResult

log = logging.getLogger("dogclf")


def profile_folder(run_root: Path) -> Path:
    """Step timings, system samples, traces and rule results of the run in `run_root`."""
    return RunPaths(run_root).profile


class ProfilerCallback(Callback):
    """Records every training step's data-wait/forward/backward/optimizer split and samples the system."""

    def __init__(self, cfg: ProfileConfig) -> None:
        self.cfg = cfg
        self.folder = Path()  # the run's profile/ folder, known at train start
        self.t0 = time.perf_counter()  # made at train() start: first step time includes setup
        self.meta: dict[str, Any] = {}
        self.rows: list[str] = []
        self.sampler = None
        self.trace = None
        self.active = False

    def on_train_start(self, ctx: TrainContext) -> None:
        """On rank 0: write the run's metadata, open the trace window and start the system sampler."""
        import torch

        from dogclf.profile.sampler import SystemSampler
        from dogclf.profile.trace import TraceWindow

        self.active = ctx.is_main
        if not self.active:
            return
        self.folder = profile_folder(ctx.run_root)
        self.folder.mkdir(parents=True, exist_ok=True)
        device = ctx.runtime.device
        cuda = device.type == "cuda"
        self.meta = {
            "interval_ms": self.cfg.interval_ms,
            "setup_seconds": round(time.perf_counter() - self.t0, 3),
            "device": str(device),
            "gpu_name": torch.cuda.get_device_name(device) if cuda else None,
            "precision": ctx.runtime.precision,
            "channels_last": ctx.runtime.channels_last,
            "batch_size": ctx.config.data.batch_size,
            "workers": ctx.workers,
            "cores": cpu_count(),
            "threads": torch.get_num_threads(),
            "arch": ctx.config.model.arch,
            "torch": torch.__version__,
            "steps_per_epoch": ctx.steps_per_epoch,
            "started_unix": time.time(),
            "rule_overrides": dict(self.cfg.rules),
        }
        self._write_meta()
        self.trace = TraceWindow(self.folder, self.cfg.trace_start_step, self.cfg.trace_steps, cuda)
        self.trace.on_step(ctx.global_step)  # opens now when the window starts at the next step
        self.sampler = SystemSampler(
            self.folder / SYSTEM_FILE,
            self.cfg.interval_ms / 1000,
            self.t0,
            (device.index or 0) if cuda else None,
        )
        self.sampler.start()
        weakref.finalize(self, self.sampler.stop_soon)  # a run that raised drops its trainer: stop sampling

    def on_phase_start(self, ctx: TrainContext, phase: str) -> None:
        """Close the trace before evaluation passes."""
        if self.active and phase != "train" and self.trace is not None:
            self.trace.close()  # keep evaluation out of the training trace

    def on_step_end(self, ctx: TrainContext, out: dict[str, Any]) -> None:
        """Buffer the step's timing split and advance the trace window."""
        if not self.active:
            return
        now = time.perf_counter() - self.t0
        if "first_step_seconds" not in self.meta:
            self.meta["first_step_seconds"] = round(now, 3)
        self.rows.append(
            json.dumps(
                {
                    "step": out["step"],
                    "epoch": out["epoch"],
                    "t": round(now, 4),
                    "batch_size": out["batch_size"],
                    "data": out["data_time"],
                    "forward": out["forward_time"],
                    "backward": out["backward_time"],
                    "optimizer": out["optimizer_time"],
                }
            )
        )
        self.trace.on_step(out["step"])

    def on_epoch_end(self, ctx: TrainContext, record: dict[str, Any]) -> None:
        """Append the epoch's buffered steps to disk, so a crash loses at most one epoch."""
        if self.active:
            self._flush_steps()

    def on_train_end(self, ctx: TrainContext, result: TrainResult) -> None:
        """Stop tracing and sampling, then evaluate the profiler rules and write the report."""
        if not self.active:
            return
        self.trace.close()
        self.trace.warn_if_missing(ctx.global_step)
        self.sampler.stop()
        self._flush_steps()
        self.meta["train_seconds"] = round(time.perf_counter() - self.t0, 3)
        self._write_meta()
        self._finish()

    def _finish(self) -> None:
        from dogclf.profile.rules import evaluate_rules

        results = evaluate_rules(load_profile(self.folder))
        atomic_write_text(self.folder / RULES_FILE, json.dumps([r.to_dict() for r in results], indent=1))
        for r in results:
            if r.triggered:
                log.warning("profiler rule %s: %s -> %s", r.rule, r.finding, r.advice)
        if self.cfg.report:
            from dogclf.profile.report import write_report

            log.info("profiler report: %s", write_report(self.folder, results=results))

    def _flush_steps(self) -> None:
        rows, self.rows = self.rows, []
        if rows:
            with (self.folder / STEPS_FILE).open("a", encoding="utf-8") as f:
                f.write("\n".join(rows) + "\n")

    def _write_meta(self) -> None:
        atomic_write_text(self.folder / META_FILE, json.dumps(self.meta, indent=1))


def make_callbacks(cfg: RunConfig) -> list[Callback]:
    """The profiler callback for cfg.profile."""
    return [ProfilerCallback(cfg.profile)]
