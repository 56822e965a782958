"""Tuning wall time: 8-trial frozen-backbone study with the feature cache vs without it, same trials, one run.

Both studies sample the same parameters (random sampler, same seed; no pruning) on the same generated
dataset. Without the cache every trial runs the full Trainer (backbone forward over train + valid every
epoch, plus its final evaluation); with it the backbone runs once per image and trials train heads only.
The objective values of the two studies are compared too: they must agree. The median trial (wall and CPU seconds,
the cache-building first trial left out) shows what a cached trial itself costs.

    python benchmarks/bench_tune.py                                   # resnet50, 224 px
    python benchmarks/bench_tune.py --arch tiny_cnn --image-size 32   # quick check
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from dogclf.config import build_config
from dogclf.data.synthetic import make_dataset
from dogclf.tune import Categorical, Continuous, SearchSpace, tune


def _study(cfg, space: SearchSpace, out: Path, trials: int, cache: bool) -> tuple[float, list[dict], float, float]:
    """Wall seconds of the whole study, its rows, and one trial's median wall and CPU seconds.

    A trial is one `Study.optimize(n_trials=1)` call of the tuner (Optuna's bookkeeping included); the first
    trial, which builds the feature cache and the head's initial weights, is left out of the medians.
    """
    import optuna

    walls, cpus, optimize = [], [], optuna.study.Study.optimize

    def timed(self, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return optimize(self, *args, **kwargs)
        finally:
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)

    started = time.perf_counter()
    optuna.study.Study.optimize = timed
    try:
        result = tune(cfg, space, out, n_trials=trials, feature_cache=cache, pruner="none")
    finally:
        optuna.study.Study.optimize = optimize
    seconds = time.perf_counter() - started
    return seconds, result.rows, statistics.median(walls[1:]), statistics.median(cpus[1:])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--weights", default="none", help="'imagenet' needs the torchvision file in the torch cache")
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--per-class", type=int, default=16, help="training images per class")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: dogclf's choice)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        side = max(64, round(args.image_size / 0.875) + 8)
        data = make_dataset(
            Path(tmp) / "dogs",
            classes=args.classes,
            per_class=args.per_class,
            size=side,
            eval_per_class=max(2, args.per_class // 4),
        )
        overrides = {
            "data.root": str(data),
            "data.image_size": args.image_size,
            "data.augment": False,
            "data.num_workers": args.workers,
            "model.arch": args.arch,
            "model.weights": args.weights,
            "model.freeze": "backbone",
            "optim.epochs": args.epochs,
            "runtime.progress": False,
        }
        cfg = build_config(overrides=overrides)
        space = SearchSpace(
            parameters={
                "lr": Continuous(min=1e-3, max=1e-1, scale="log"),
                "batch-size": Categorical(values=[8, 16, 32]),
            },
            strategy="random",
        )
        cached_s, cached, cached_wall, cached_cpu = _study(cfg, space, Path(tmp) / "cached", args.trials, cache=True)
        full_s, full, full_wall, full_cpu = _study(cfg, space, Path(tmp) / "full", args.trials, cache=False)

    same = [(r["lr"], r["batch-size"]) for r in cached] == [(r["lr"], r["batch-size"]) for r in full]
    diffs = [abs(a["valid:loss"] - b["valid:loss"]) for a, b in zip(cached, full, strict=True)]
    images = args.classes * (args.per_class + max(2, args.per_class // 4))
    print(
        f"{args.trials} trials x {args.epochs} epochs, {args.arch} @ {args.image_size}px frozen, "
        f"{images} train+valid images, weights={args.weights}"
    )
    print(f"same trial parameters in both studies: {same}")
    print(f"max |valid:loss difference| per trial: {max(diffs):.2e}")
    print(f"without feature cache: {full_s:8.1f} s  ({full_s / args.trials:.1f} s/trial)")
    print(f"with feature cache:    {cached_s:8.1f} s  ({cached_s / args.trials:.2f} s/trial, incl. building it)")
    print(f"median trial without the cache: {full_wall:.3f} s wall, {full_cpu:.3f} s CPU")
    print(f"median cached trial:           {cached_wall:.3f} s wall, {cached_cpu:.3f} s CPU (target <= 0.2 s)")
    print(f"speedup: {full_s / cached_s:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
