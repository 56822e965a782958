"""Overhead of the local smdebug hook (default collections and save interval) vs no hook, per training step.

Runs the dogclf Trainer alternately without and with `debug.enabled` on the same synthetic data and reports
the median compute time per step (forward + backward + optimizer, data loading excluded), after warm-up,
plus the cost of a step that saves tensors (step 0; one in `save_interval` steps afterwards).

    python benchmarks/bench_debug_hook.py                         # resnet18, 112 px, batch 16
    python benchmarks/bench_debug_hook.py --arch tiny_cnn --size 32 --steps 40
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from dogclf.config import build_config
from dogclf.data.synthetic import make_dataset
from dogclf.training import Callback, train


class StepTimes(Callback):
    """Collects each training step's compute time."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_end(self, trainer, out) -> None:
        self.times.append(out["forward_time"] + out["backward_time"] + out["optimizer_time"])


def run(data: Path, out: Path, args: argparse.Namespace, debug: bool) -> list[float]:
    cfg = build_config(overrides={
        "data.root": str(data), "data.image_size": args.size, "data.batch_size": args.batch,
        "data.num_workers": 0,
        "model.arch": args.arch, "model.weights": None, "model.freeze": "nothing", "optim.epochs": 1,
        "optim.max_steps_per_epoch": args.steps, "runtime.progress": False, "debug.enabled": debug,
    })  # fmt: skip
    times = StepTimes()
    train(cfg, out, callbacks=[times])
    return times.times


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_dataset(root / "data", classes=4, per_class=(args.steps * args.batch) // 4 + 1, size=args.size)
        base, hooked, save_steps = [], [], []
        for i in range(args.repeats):
            base += run(data, root / f"base{i}", args, False)[args.warmup :]
            with_hook = run(data, root / f"hook{i}", args, True)
            save_steps.append(with_hook[0])
            hooked += with_hook[args.warmup :]
    b, h = statistics.median(base), statistics.median(hooked)
    print(f"{args.arch} {args.size}px batch {args.batch}: {len(base)} steps each, after {args.warmup} warm-up")
    print(f"no hook       : {b * 1000:8.1f} ms/step (median)")
    print(f"smdebug hook  : {h * 1000:8.1f} ms/step (median, non-saving steps)")
    print(f"overhead      : {100 * (h - b) / b:+8.1f} %   (target <= 10 %)")
    print(f"saving step 0 : {statistics.median(save_steps) * 1000:8.1f} ms (weights, biases, gradients written)")


if __name__ == "__main__":
    main()
