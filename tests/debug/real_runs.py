"""Rules on real runs: tiny_cnn trained from scratch on scikit-learn's digits with dogclf's smdebug hook.

Healthy runs at several seeds and learning rates, a slow one, and broken ones (lr 0: stuck; AdamW at lr 10:
diverging; SGD at lr 1000: NaN). Nothing here was used to choose a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rule_suite import AFTER_DIVERGENCE, forced_lr
from synthetic_suite import _ratio

from conftest import tiny_config
from dogclf.training import Trainer
from dogclf.workflow import config_callbacks

DEBUG = {"debug.enabled": True, "debug.save_interval": 10}
BASE = {"data.image_size": 16, "data.batch_size": 32, "optim.epochs": 4, "optim.scheduler": "none"}


@dataclass(frozen=True)
class RealRun:
    """One training run and the rules that must (or may) fire on it."""

    name: str
    expected: frozenset[str] = frozenset()
    also: frozenset[str] = frozenset()
    overrides: dict[str, Any] = field(default_factory=dict)
    lr: float | None = None  # forced onto every group (the config refuses 0 and > 10)


RUNS = (
    RealRun("healthy lr 0.01 seed 0", overrides={"optim.lr": 0.01, "runtime.seed": 0}),
    RealRun("healthy lr 0.01 seed 1", overrides={"optim.lr": 0.01, "runtime.seed": 1}),
    RealRun("healthy lr 0.003 seed 2", overrides={"optim.lr": 0.003, "runtime.seed": 2}),
    RealRun("healthy lr 0.03 seed 3", overrides={"optim.lr": 0.03, "runtime.seed": 3}),
    RealRun("slow lr 1e-4", overrides={"optim.lr": 1e-4, "runtime.seed": 4}),
    RealRun("stuck lr 0", frozenset({"LossNotDecreasing"}), frozenset({"ClassImbalance"}), lr=0.0),
    RealRun("diverging AdamW lr 10", frozenset({"LossNotDecreasing"}),
            AFTER_DIVERGENCE | {"Overfit", "Overtraining", "ClassImbalance", "ExplodingTensor"}, lr=10.0),
    RealRun("nan SGD lr 1000", frozenset({"LossNotDecreasing", "ExplodingTensor"}),
            AFTER_DIVERGENCE | {"ClassImbalance"}, {"optim.optimizer": "sgd"}, lr=1e3),
)  # fmt: skip


def digits_folder(root: Path) -> Path:
    """scikit-learn's 1,797 digits (8x8, 10 classes) as 16 px PNGs in train/valid/test (60/20/20, stratified)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if (root / "train").is_dir():
        return root
    x, y = load_digits(return_X_y=True)
    idx = np.arange(len(y))
    train, rest = train_test_split(idx, test_size=0.4, stratify=y, random_state=0)
    valid, test = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=0)
    for split, members in (("train", train), ("valid", valid), ("test", test)):
        for i in members:
            folder = root / split / f"{y[i]:03d}.digit_{y[i]}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (x[i].reshape(8, 8) * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels).resize((16, 16)).convert("RGB").save(folder / f"{i:04d}.png")
    return root


def run_one(run: RealRun, data: Path, out: Path) -> dict[str, str]:
    """Train one run with the hook on; {rule: status} of every rule."""
    from dogclf.debug.engine import evaluate_rules

    if not (out / "debug").is_dir():  # a finished run is reused (bench_rules.py --keep)
        cfg = tiny_config(data, **{**BASE, **DEBUG, **run.overrides})
        trainer = Trainer if run.lr is None else forced_lr(run.lr)
        trainer(cfg, out, callbacks=config_callbacks(cfg)).fit()
    return {r.rule: r.status for r in evaluate_rules(out)}


def run_all(root: Path) -> dict[str, dict[str, str]]:
    """Every run: {name: {rule: status}}."""
    data = digits_folder(root / "digits")
    return {r.name: run_one(r, data, root / r.name.replace(" ", "-")) for r in RUNS}


def markdown_table(results: dict[str, dict[str, str]]) -> str:
    """Run x rule (`*` must fire, `~` may; IF fired, NE not evaluated), then precision and recall per rule."""
    runs = {r.name: r for r in RUNS}
    rules = list(next(iter(results.values())))
    short = {"IssuesFound": "IF", "NoIssuesFound": "-", "NotEvaluated": "NE", "Error": "Error"}
    lines = ["| run | " + " | ".join(rules) + " |", "|---" * (len(rules) + 1) + "|"]
    for name, statuses in results.items():
        marks = ["*" if r in runs[name].expected else "~" if r in runs[name].also else "" for r in rules]
        lines.append(
            f"| {name} | " + " | ".join(m + short[statuses[r]] for m, r in zip(marks, rules, strict=True)) + " |"
        )
    lines += ["", "| rule | precision [95% Wilson] | recall [95% Wilson] |", "|---|---|---|"]
    for rule in rules:
        scored = [(rule in runs[n].expected, st[rule] == "IssuesFound") for n, st in results.items()
                  if rule not in runs[n].also]  # fmt: skip
        tp = sum(e and f for e, f in scored)
        fp = sum(f and not e for e, f in scored)
        fn = sum(e and not f for e, f in scored)
        lines.append(f"| {rule} | {_ratio(tp, tp + fp)} | {_ratio(tp, tp + fn)} |")
    return "\n".join(lines)
