"""Overhead of `--profile` with default settings: training step wall time with the profiler on vs off.

Alternates the same short training with the profiler off and on and records every training step's wall
time (step start to the end of all callbacks, so the profiler's per-step callback, its sampler thread and the
torch.profiler window all count). Per run it takes the MEDIAN step, so other processes' bursts on a shared
machine do not decide the result; the torch.profiler window's one-time cost (warm-up, recording, export)
is measured separately and amortized over a 1,000-step run. Also times the sampler and the callback alone.

    python benchmarks/bench_profile.py          # resnet18, 64 px, batch 16, 2 x 30 steps, 3 pairs
    python benchmarks/bench_profile.py --arch tiny_cnn --pairs 1   # quick check
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dogclf.config import build_config
from dogclf.data.synthetic import make_dataset
from dogclf.profile.config import ProfileConfig
from dogclf.profile.sampler import SystemSampler
from dogclf.training import Callback, Trainer
from dogclf.workflow import config_callbacks


class StepTimer(Callback):
    """Wall seconds of every training step, from the previous step's end (or the phase start).

    Also clocks the profiler callback's own per-step hooks, the work it adds to the training thread.
    """

    def __init__(self, callbacks: list[Callback]) -> None:
        self.walls: list[float] = []
        self._last = 0.0
        self.hook_calls: list[float] = []
        for cb in callbacks:
            if type(cb).__module__.startswith("dogclf.profile"):
                for name in ("on_step_end", "on_phase_start"):
                    setattr(cb, name, self._clocked(getattr(cb, name)))

    def _clocked(self, method):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.hook_calls.append(time.perf_counter() - start)

        return wrapper

    def on_phase_start(self, trainer, phase: str) -> None:
        self._last = time.perf_counter()

    def on_step_end(self, trainer, out: dict) -> None:
        now = time.perf_counter()
        self.walls.append(now - self._last)
        self._last = now


def timed_run(data: Path, out: Path, profile: bool, args: argparse.Namespace) -> tuple[list[float], float]:
    """Wall seconds of each training step of one run (the timer runs after the profiler's callback)."""
    cfg = build_config(overrides={
        "data.root": str(data), "data.image_size": args.image_size, "data.batch_size": args.batch_size,
        "model.arch": args.arch, "model.weights": None, "model.freeze": "nothing", "optim.epochs": args.epochs,
        "runtime.progress": False, "profile.enabled": profile,
    })  # fmt: skip
    configured = config_callbacks(cfg)  # what dogclf.train adds, built here so the timer can clock them
    timer = StepTimer(configured)
    Trainer(cfg, out, callbacks=[*configured, timer]).fit()
    # Median hook call: the torch.profiler window's one-time start/export is reported separately below.
    return timer.walls, statistics.median(timer.hook_calls) if timer.hook_calls else 0.0


def trace_window_cost(walls: list[float], median: float) -> float:
    """Extra seconds of the steps around the torch.profiler window (warm-up, recorded steps, export)."""
    d = ProfileConfig()
    first, last = d.trace_start_step - 2, d.trace_start_step + d.trace_steps - 1  # 1-based steps touched
    return sum(w - median for w in walls[first - 1 : last])


def sampler_cost(n: int = 200) -> float:
    """Milliseconds per system sample (CPU, memory incl. children, disk; no GPU here)."""
    with tempfile.TemporaryDirectory() as tmp:
        sampler = SystemSampler(Path(tmp) / "s.jsonl", 0.5, time.perf_counter())
        start = time.perf_counter()
        for _ in range(n):
            sampler.sample()
        return (time.perf_counter() - start) / n * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--per-class", type=int, default=120, help="training images per class (4 classes)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=3, help="off/on run pairs")
    args = parser.parse_args(argv)
    medians: dict[bool, list[float]] = {False: [], True: []}
    windows, hook_ms = [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "data", classes=4, per_class=args.per_class, size=args.image_size)
        for i in range(args.pairs):
            for profile in (False, True):
                walls, per_step_hook = timed_run(data, Path(tmp) / f"run-{i}-{profile}", profile, args)
                median = statistics.median(walls[1:])
                medians[profile].append(median)
                if profile:
                    windows.append(trace_window_cost(walls, median))
                    hook_ms.append(per_step_hook * 1e3)
                mean = statistics.mean(walls[1:])
                state = "on " if profile else "off"
                print(f"pair {i + 1}: profile {state} median {median * 1e3:.1f} ms/step, mean {mean * 1e3:.1f}")
    off, on = statistics.median(medians[False]), statistics.median(medians[True])
    ratios = [b / a - 1 for a, b in zip(medians[False], medians[True], strict=True)]
    spread = (max(medians[False]) - min(medians[False])) / off * 100
    hook = statistics.median(hook_ms)
    window = statistics.median(windows)
    sample_ms = sampler_cost()
    interval_ms = ProfileConfig().interval_ms
    print(f"\n{args.arch} {args.image_size}px batch {args.batch_size}, {args.pairs} off/on pairs")
    print(f"  median step, profile off : {off * 1e3:.1f} ms")
    print(f"  median step, profile on  : {on * 1e3:.1f} ms  ({(on - off) / off * 100:+.1f}%, target <= 5%)")
    print(f"  per-pair on/off ratios   : {', '.join(f'{r * 100:+.1f}%' for r in ratios)}"
          f"  (off-run medians vary by {spread:.1f}%: the noise band of this machine)")  # fmt: skip
    print(f"  profiler hook per step   : {hook:.3f} ms median = {hook / (off * 1e3) * 100:.3f}% of a step (inline)")
    share = window / (1000 * off) * 100
    print(f"  torch.profiler window    : {window:.2f} s once = {share:.1f}% of a 1,000-step run")
    print(f"  system sampler           : {sample_ms:.2f} ms per sample every {interval_ms} ms "
          f"= {sample_ms / interval_ms * 100:.2f}% of one core")  # fmt: skip


if __name__ == "__main__":
    main()
