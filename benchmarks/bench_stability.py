"""The quickstart's valid-loss spikes over seeds, with BatchNorm's moving-average statistics vs recomputed ones.

Trains what `dogclf quickstart` trains (the generated 5-class sample, 300 train / 75 valid / 75 test images,
whole network from random init, AdamW, batch 20, warmup 0.5 epoch, cosine) at a fixed lr with each seed. Each
epoch's valid split is scored twice on the same weights: with BatchNorm's running statistics as training
left them (momentum 0.1: what every run did before `optim.bn_recalibrate`) and with the statistics recomputed
on the train images (`optim.bn_recalibrate: true`, what the quickstart now sets). Recomputing does not change
training (train-mode forwards use batch statistics), so the two columns are paired. An unsound epoch is one the
quickstart reports: a valid loss above 5x a uniform guess (5 ln 5 = 8.0) or more than 3x the epoch before.

    PYTHONPATH=src python benchmarks/bench_stability.py                                  # ResNet50, 64 px, 6 epochs
    PYTHONPATH=src python benchmarks/bench_stability.py --arch resnet18 --image-size 16 --epochs 2 --lr 3e-3
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import statistics
import tempfile
from pathlib import Path


def unsound_epochs(losses: list[float], classes: int) -> int:
    """Epochs the quickstart reports: above 5x a uniform guess, or a jump of more than 3x (stability.loss_jumps)."""
    from dogclf.training.stability import loss_jumps

    above = {e for e, loss in enumerate(losses, 1) if not loss < 5 * math.log(classes)}
    jumped = {int(j.split("epoch ")[1].split()[0]) for j in loss_jumps(losses, classes)}
    return len(above | jumped)


def run_overrides(lr: float, epochs: int, arch: str, image_size: int, seed: int, recalibrate: bool) -> dict:
    """The quickstart's from-scratch settings at one lr and seed, small and quiet (no profiler, no debug hook)."""
    return {
        "optim.lr": lr,
        "optim.epochs": epochs,
        "optim.bn_recalibrate": recalibrate,
        "model.arch": arch,
        "data.image_size": image_size,
        "data.batch_size": 20,
        "data.num_workers": 0,
        "runtime.seed": seed,
        "runtime.progress": False,
        "profile.enabled": False,
        "debug.enabled": False,
    }


def run_one(data: Path, out: Path, args: argparse.Namespace, seed: int) -> dict[str, list[float]]:
    """One run: per epoch, valid loss and top-1 with the running statistics and with recomputed ones."""
    from dogclf.quickstart import quickstart_config
    from dogclf.training import Trainer
    from dogclf.training.batchnorm import recalibrate_on_train_set

    seen: dict[str, list[float]] = {"loss": [], "top1": [], "loss_recomputed": [], "top1_recomputed": []}

    class Paired(Trainer):
        def evaluate_split(self, split, model=None):  # noqa: ANN001, ANN202
            result = super().evaluate_split(split, model)
            if split == "valid" and model is None:
                twin = copy.deepcopy(self.model)
                recalibrate_on_train_set(self, twin)
                fixed = super().evaluate_split(split, twin)
                seen["loss"].append(result.metrics()["loss"])
                seen["top1"].append(result.metrics()["top1"])
                seen["loss_recomputed"].append(fixed.metrics()["loss"])
                seen["top1_recomputed"].append(fixed.metrics()["top1"])
            return result

    overrides = run_overrides(args.lr, args.epochs, args.arch, args.image_size, seed, recalibrate=False)
    Paired(quickstart_config(data, **overrides), out).fit()
    return seen


def main(argv: list[str] | None = None) -> None:
    from dogclf.data.synthetic import make_dataset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--lr", type=float, default=1.9e-3, help="peak lr (the quickstart's tuning picked ~1.9e-3)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--arch", default="resnet50", help="resnet18 at 16-32 px: a cheap stand-in")
    p.add_argument("--image-size", type=int, default=64)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "data", classes=5, per_class=60, size=64)
        for seed in args.seeds:
            runs.append(run_one(data, Path(tmp) / f"seed-{seed}", args, seed))
            shown = "; ".join(f"{k} {[round(x, 3) for x in v]}" for k, v in runs[-1].items())
            print(f"seed {seed}: {shown}", flush=True)
    print(f"\n{args.arch} at {args.image_size} px, lr {args.lr:g}, {args.epochs} epochs, seeds {args.seeds}")
    print("| BatchNorm statistics | runs | runs with an unsound epoch | unsound epochs | worst valid loss "
          "| last valid top-1 mean (min-max) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for label, suffix in (("running (momentum 0.1)", ""), ("recomputed (bn_recalibrate)", "_recomputed")):
        counts = [unsound_epochs(r["loss" + suffix], 5) for r in runs]
        tops = [r["top1" + suffix][-1] for r in runs]
        worst = max(max(r["loss" + suffix]) for r in runs)
        print(
            f"| {label} | {len(runs)} | {sum(c > 0 for c in counts)} | {sum(counts)} | {worst:.3g} "
            f"| {statistics.mean(tops):.3f} ({min(tops):.3f}-{max(tops):.3f}) |"
        )


if __name__ == "__main__":
    main()
