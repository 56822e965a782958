"""AdamW from scratch over learning rates x seeds on two datasets: the evidence for `adamw-scratch`'s lr range.

Each run trains what the quickstart trains (whole network from random init, AdamW, batch 20, warmup 0.5 epoch,
cosine, `optim.bn_recalibrate` on) at one peak lr and seed, on (a) the generated sample (`make_dataset`) and
(b) scikit-learn's digits (tests/debug/real_runs.py's folder, trimmed), both at 32 px. Per dataset and lr it
prints: runs, last valid loss and top-1 (mean [min, max] over seeds), spikes (epochs whose valid loss jumped
more than 3x the epoch before: dogclf.training.stability.loss_jumps) and non-finite losses.

    PYTHONPATH=src python benchmarks/bench_lr_ranges.py                      # tiny_cnn, 3 epochs, 3 seeds
    PYTHONPATH=src python benchmarks/bench_lr_ranges.py --arch resnet18 --epochs 2 --seeds 0
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(_TESTS / "debug"), str(_TESTS)]

LRS = (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2)


def trim(root: Path, per_class: dict[str, int]) -> Path:
    """Keep the first `per_class[split]` files of each class folder of each split (a cheaper dataset)."""
    for split, keep in per_class.items():
        for folder in sorted((root / split).iterdir()):
            for extra in sorted(folder.iterdir())[keep:]:
                extra.unlink()
    return root


def datasets(tmp: Path, args: argparse.Namespace) -> dict[str, tuple[Path, int]]:
    """{name: (ImageFolder root, classes)}: the generated sample and trimmed digits."""
    from real_runs import digits_folder

    from dogclf.data.synthetic import make_dataset

    sample = make_dataset(tmp / "sample", classes=5, per_class=args.per_class, size=32, eval_per_class=10)
    digits = digits_folder(tmp / "digits-full")
    shutil.copytree(digits, tmp / "digits")
    trim(tmp / "digits", {"train": args.per_class, "valid": 10, "test": 2})
    return {"sample (5 classes)": (sample, 5), "digits (10 classes)": (tmp / "digits", 10)}


def run_one(data: Path, out: Path, args: argparse.Namespace, lr: float, seed: int) -> tuple[list[float], list[float]]:
    """Valid loss and top-1 per epoch of one quickstart-like run at peak `lr`."""
    from bench_stability import run_overrides

    from dogclf.quickstart import quickstart_config
    from dogclf.training import train

    overrides = run_overrides(lr, args.epochs, args.arch, 32, seed, recalibrate=True)
    history = train(quickstart_config(data, **overrides), out).history
    return [h["valid"]["loss"] for h in history], [h["valid"]["top1"] for h in history]


def spread(values: list[float]) -> str:
    """Mean [min, max] of the finite values (and how many were not finite)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "n/a"
    shown = f"{statistics.mean(finite):.3g} [{min(finite):.3g}, {max(finite):.3g}]"
    return shown + (f" ({len(values) - len(finite)} non-finite)" if len(finite) < len(values) else "")


def row(name: str, lr: float, runs: list[tuple[list[float], list[float]]], classes: int) -> str:
    """One markdown table row for a dataset and lr."""
    from dogclf.training.stability import loss_jumps

    spikes = sum(len(loss_jumps(losses, classes)) for losses, _ in runs)
    nans = sum(not math.isfinite(v) for losses, _ in runs for v in losses)
    last_loss, last_top1 = [r[0][-1] for r in runs], [r[1][-1] for r in runs]
    return f"| {name} | {lr:g} | {len(runs)} | {spread(last_loss)} | {spread(last_top1)} | {spikes} | {nans} |"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lrs", type=float, nargs="+", default=list(LRS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--arch", default="tiny_cnn", help="tiny_cnn (conv-BN-ReLU x3): the smallest with BatchNorm")
    p.add_argument("--per-class", type=int, default=12, help="train images per class of each dataset")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("dogclf").setLevel(logging.ERROR)
    rows, start = [], time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for name, (data, classes) in datasets(Path(tmp), args).items():
            for lr in args.lrs:
                runs = [run_one(data, Path(tmp) / f"{classes}-{lr:g}-{seed}", args, lr, seed) for seed in args.seeds]
                rows.append(row(name, lr, runs, classes))
                print(rows[-1], f"({time.monotonic() - start:.0f} s)", flush=True)
    print(f"\n{args.arch} at 32 px, {args.epochs} epochs, {args.per_class} train images per class, seeds {args.seeds}")
    print("| data | peak lr | runs | last valid loss mean [min, max] | last valid top-1 mean [min, max] "
          "| spikes (>3x) | non-finite |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
