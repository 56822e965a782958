"""The labelled rule suite: tiny healthy and deliberately broken runs, each labelled with the rules that should fire.

No threshold was chosen on these runs (they come from the synthetic tuning cases, tests/debug/synthetic_suite.py):
the suite is held out as a whole.

`python tests/debug/rule_suite.py` (with src and tests on PYTHONPATH) trains every scenario and prints the
rule x scenario table with each rule's precision and recall, as published in docs/rules.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from conftest import tiny_config
from dogclf.data.synthetic import make_dataset
from dogclf.training import Trainer
from dogclf.training.callbacks import Callback, TrainContext
from dogclf.workflow import config_callbacks

COLLECTIONS = ["losses", "weights", "biases", "gradients", "labels", "predictions", "dataset", "relu_output"]
DEBUG = {"debug.enabled": True, "debug.save_interval": 2, "debug.collections": COLLECTIONS}
SEEDS = (0, 1, 2)


def forced_lr(lr: float) -> type[Trainer]:
    """A Trainer with every group's lr at `lr` (the config forbids 0 and values above 10, which these runs need)."""

    class ForcedLR(Trainer):
        def _build(self) -> None:
            super()._build()
            for group in self.optim.optimizer.param_groups:
                group["lr"] = lr
            self.optim.scheduler.base_lrs = [lr] * len(self.optim.scheduler.base_lrs)

    return ForcedLR


class AtStart(Callback):
    """Applies `change` to the model before the first step (a broken initialization)."""

    def __init__(self, change: Callable[[torch.nn.Module], None]) -> None:
        self.change = change

    def on_train_start(self, ctx: TrainContext) -> None:
        with torch.no_grad():
            self.change(ctx.model)


class ValidSpike(Callback):
    """Multiplies one epoch's validation loss by `factor` before the hook saves it (one noisy validation)."""

    def __init__(self, epoch: int, factor: float) -> None:
        self.epoch, self.factor, self.seen = epoch, factor, 0

    def on_epoch_end(self, ctx: TrainContext, record: dict[str, Any]) -> None:
        self.seen += 1
        if self.seen == self.epoch:
            record["valid"]["loss"] *= self.factor


def _tiny_head(model: torch.nn.Module) -> None:
    model.fc.weight.mul_(1e-9)  # the signal reaching the backbone vanishes


def _zero_weights(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
            m.weight.zero_()  # the textbook bad initialization


def _dead_channels(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.bias[: int(m.num_features * 0.7)] = -100.0  # 70% of the units never activate


@dataclass
class Scenario:
    """One labelled run: the rules that should fire, those that may (true consequences), and how to train it."""

    name: str
    expected: frozenset[str]
    also: frozenset[str] = frozenset()  # fire truly as a consequence (a diverged net has dead ReLUs): not counted
    data: str = "healthy"
    overrides: dict[str, Any] = field(default_factory=dict)
    trainer: type[Trainer] = Trainer
    callbacks: Callable[[], list[Callback]] = list
    seeds: tuple[int, ...] = SEEDS


# A diverged network ends with dead ReLUs, zero activations and zero gradients: those rules are right to fire.
AFTER_DIVERGENCE = frozenset({"VanishingGradient", "DeadRelu", "AllZero", "PoorWeightInitialization"})

SCENARIOS = [
    Scenario("healthy", frozenset(), overrides={"optim.epochs": 3}),
    Scenario("healthy-valid-spike", frozenset(), overrides={"optim.epochs": 4}, callbacks=lambda: [ValidSpike(2, 3.0)]),
    # resnet18 from scratch on 120 images: a wide train/valid gap (train top-1 0.95, valid 0.63) while the valid
    # loss still falls every epoch. That is early training, not memorizing: Overfit must stay silent (the
    # quickstart's healthy run looks like this in its first epochs). At lr 0.01 from scratch some ReLU layers
    # may truly die, which DeadRelu measures.
    Scenario(
        "resnet18-gap",
        frozenset(),
        frozenset({"DeadRelu"}),
        overrides={"optim.epochs": 2, "model.arch": "resnet18"},
        seeds=(0,),
    ),
    # 20 epochs of 15 steps: at this batch noise (~0.09 per step) the stall test needs ~190 losses to show a
    # flat loss stalled and ~280 to show it on most draws (10 epochs were too few: NotEvaluated, saying so);
    # tensors every 4 steps keep the saves, which cost most of the time, those of 10 epochs at every 2.
    # A model that learns nothing mispredicts whole classes: ClassImbalance's misprediction check may say so.
    Scenario(
        "lr-zero",
        frozenset({"LossNotDecreasing"}),
        frozenset({"ClassImbalance"}),
        overrides={"optim.epochs": 20, "debug.save_interval": 4},
        trainer=forced_lr(0.0),
    ),
    Scenario(
        "diverging",
        frozenset({"LossNotDecreasing"}),
        AFTER_DIVERGENCE | {"Overfit", "Overtraining", "ClassImbalance"},
        overrides={"optim.epochs": 5},  # a rise counts once sustained over 4 windows of 10 steps
        trainer=forced_lr(10.0),
    ),
    Scenario(
        "nan",
        frozenset({"ExplodingTensor", "LossNotDecreasing"}),
        AFTER_DIVERGENCE | {"ClassImbalance"},
        overrides={"optim.epochs": 3, "optim.optimizer": "sgd", "optim.scheduler": "none"},
        trainer=forced_lr(1e3),
    ),
    Scenario(
        "overfit",
        frozenset({"Overfit"}),
        frozenset({"Overtraining"}),  # valid rising while train falls is overtraining too
        data="small",
        overrides={"optim.epochs": 12, "data.augment": False, "optim.lr": 0.05, "data.batch_size": 6},
    ),
    # zero weights: no signal flows, so the net is dead and its loss stuck as well
    Scenario(
        "zero-init",
        frozenset({"PoorWeightInitialization"}),
        frozenset({"VanishingGradient", "AllZero", "DeadRelu", "LossNotDecreasing"}),
        overrides={"optim.epochs": 1},
        callbacks=lambda: [AtStart(_zero_weights)],
    ),
    # a head scaled by 1e-9 is a poor initialization too
    Scenario(
        "vanishing",
        frozenset({"VanishingGradient"}),
        frozenset({"PoorWeightInitialization"}),
        overrides={"optim.epochs": 1},
        callbacks=lambda: [AtStart(_tiny_head)],
    ),
    Scenario(
        "dead-relu-resnet18",
        frozenset({"DeadRelu"}),
        frozenset({"PoorWeightInitialization"}),
        overrides={"optim.epochs": 1, "model.arch": "resnet18", "optim.lr": 1e-4},
        callbacks=lambda: [AtStart(_dead_channels)],
        seeds=(0,),
    ),
    Scenario("imbalanced", frozenset({"ClassImbalance"}), data="imbalanced", overrides={"optim.epochs": 2}),
]


def make_data(root: Path) -> dict[str, Path]:
    """The suite's datasets: healthy (3 x 40), small (3 x 2, overfits), imbalanced (40/40/3)."""
    data = {
        "healthy": make_dataset(root / "healthy", classes=3, per_class=40, size=32, eval_per_class=10),
        "small": make_dataset(root / "small", classes=3, per_class=2, size=32, eval_per_class=4),
    }
    data["imbalanced"] = root / "imbalanced"
    shutil.copytree(data["healthy"], data["imbalanced"])
    first = sorted((data["imbalanced"] / "train").iterdir())[0]
    for extra in sorted(first.iterdir())[3:]:
        extra.unlink()
    return data


def run_scenario(s: Scenario, seed: int, data: dict[str, Path], out: Path) -> dict[str, str]:
    """Train one scenario with one seed; returns {rule: status}."""
    from dogclf.debug.engine import evaluate_rules

    overrides = {**DEBUG, "runtime.seed": seed, "optim.scheduler": "none", **s.overrides}
    cfg = tiny_config(data[s.data], **overrides)
    s.trainer(cfg, out, callbacks=[*s.callbacks(), *config_callbacks(cfg)]).fit()
    return {r.rule: r.status for r in evaluate_rules(out)}


def run_suite(root: Path, scenarios: list[Scenario] = SCENARIOS) -> dict[tuple[str, int], dict[str, str]]:
    """Every scenario x seed: {(scenario, seed): {rule: status}}."""
    data = make_data(root / "data")
    return {
        (s.name, seed): run_scenario(s, seed, data, root / f"{s.name}-{seed}") for s in scenarios for seed in s.seeds
    }


def scores(results: dict[tuple[str, int], dict[str, str]]) -> dict[str, tuple[int, int, int]]:
    """Per rule: (true positives, false positives, false negatives) over the suite."""
    expected = {s.name: s.expected for s in SCENARIOS}
    also = {s.name: s.also for s in SCENARIOS}
    rules = sorted({r for statuses in results.values() for r in statuses})
    out = {}
    for rule in rules:
        fired = [
            (rule in expected[name], statuses[rule] == "IssuesFound")
            for (name, _), statuses in results.items()
            if rule not in also[name]
        ]
        out[rule] = (
            sum(e and f for e, f in fired),
            sum(f and not e for e, f in fired),
            sum(e and not f for e, f in fired),
        )
    return out


def markdown_table(results: dict[tuple[str, int], dict[str, str]]) -> str:
    """Rule x scenario: seeds that fired / seeds, `*` should fire, `~` may fire (not scored); precision, recall."""
    names = list(dict.fromkeys(name for name, _ in results))
    expected = {s.name: s.expected for s in SCENARIOS}
    also = {s.name: s.also for s in SCENARIOS}
    rules = list(next(iter(results.values())))
    lines = ["| rule | " + " | ".join(names) + " | precision | recall |", "|---" * (len(names) + 3) + "|"]
    scored = scores(results)
    for rule, (tp, fp, fn) in ((r, scored[r]) for r in rules):
        cells = []
        for name in names:
            runs = [st[rule] for (n, _), st in results.items() if n == name]
            fired = sum(s == "IssuesFound" for s in runs)
            other = {s for s in runs if s not in ("IssuesFound", "NoIssuesFound")}
            mark = "*" if rule in expected[name] else "~" if rule in also[name] else ""
            cells.append(f"{mark}{fired}/{len(runs)}" + (f" ({', '.join(sorted(other))})" if other else ""))
        precision = f"{tp / (tp + fp):.2f}" if tp + fp else "-"
        recall = f"{tp / (tp + fn):.2f}" if tp + fn else "-"
        lines.append(f"| {rule} | " + " | ".join(cells) + f" | {precision} | {recall} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Train the suite (or the named scenarios) and print the markdown table."""
    parser = argparse.ArgumentParser(description="Train the labelled rule suite and print its rule x scenario table.")
    parser.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS], help="only these")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    with tempfile.TemporaryDirectory() as tmp:
        table = markdown_table(run_suite(Path(tmp), chosen))
    sys.stdout.write(table + "\n")


if __name__ == "__main__":
    main()
