"""`dogclf debug rules` on deliberately broken tiny runs flags the matching rule; a healthy run flags none."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from rule_suite import forced_lr

from conftest import run_cli, tiny_config
from dogclf.data.synthetic import make_dataset
from dogclf.debug.config import COLLECTIONS as ALL_COLLECTIONS
from dogclf.training import Trainer, train
from dogclf.training.callbacks import Callback, TrainContext
from dogclf.workflow import config_callbacks

# Every named collection the hook can fill except the model's raw inputs and outputs.
COLLECTIONS = [c for c in ALL_COLLECTIONS if c not in ("inputs", "outputs", "all")]
DEBUG = {"debug.enabled": True, "debug.save_interval": 1, "debug.collections": COLLECTIONS}


def train_with(trainer: type[Trainer], cfg, out: Path, callbacks=()):
    """What dogclf.train does (the config's callbacks first), with a Trainer subclass."""
    return trainer(cfg, out, callbacks=[*config_callbacks(cfg), *callbacks]).fit()


class ZeroInit(Callback):
    """Zero-initializes every conv and linear weight: the textbook bad initialization."""

    def on_train_start(self, ctx: TrainContext) -> None:
        with torch.no_grad():
            for m in ctx.model.modules():
                if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                    m.weight.zero_()


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory) -> dict[str, Path]:
    """Five tiny_cnn runs with every tensor saved each step."""
    root = tmp_path_factory.mktemp("debug_runs")
    healthy_data = make_dataset(root / "healthy_data", classes=3, per_class=30, size=32, eval_per_class=10)
    small_data = make_dataset(root / "small_data", classes=3, per_class=2, size=32, eval_per_class=4)
    cases = {
        "healthy": (healthy_data, {"optim.epochs": 3}, Trainer, []),
        "exploding": (
            tiny_data,
            {"optim.epochs": 8, "optim.optimizer": "sgd", "optim.scheduler": "none"},
            forced_lr(1e3),
            [],
        ),
        "lr0": (  # one full batch per epoch: a constant loss; windows of 5 steps give 4 windows
            tiny_data,
            {
                "optim.epochs": 20,
                "data.batch_size": 36,
                "data.augment": False,
                "optim.scheduler": "none",
                "debug.rule_parameters": {"LossNotDecreasing": {"num_steps": 5}},
            },
            forced_lr(0.0),
            [],
        ),
        # constant lr: the valid loss rises 0.38 -> 0.75 and stays there while the train loss falls to 0.0002.
        # Under the default cosine schedule the same run comes back (0.58 -> 0.23, top-1 0.92): a passing gap
        # that Overfit, seeing the whole run, leaves alone.
        "overfit": (
            small_data,
            {
                "optim.epochs": 15,
                "data.augment": False,
                "optim.lr": 0.05,
                "data.batch_size": 6,
                "optim.scheduler": "none",
            },
            Trainer,
            [],
        ),
        "bad_init": (tiny_data, {"optim.epochs": 2}, Trainer, [ZeroInit()]),
    }
    out = {}
    for name, (data, overrides, trainer, callbacks) in cases.items():
        out[name] = root / name
        train_with(trainer, tiny_config(data, **DEBUG, **overrides), out[name], callbacks)
    return out


def _rules(run: Path, *extra: str) -> dict[str, dict]:
    proc = run_cli("debug", "rules", str(run), "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    return {r["rule"]: r for r in json.loads(proc.stdout)}


def test_healthy_run_flags_nothing(runs):
    rows = _rules(runs["healthy"])
    assert [r for r in rows.values() if r["status"] in ("IssuesFound", "Error")] == []
    assert len(rows) == 9
    # 36 steps and 3 validations: too few to judge a stall or overtraining, and the verdicts say so
    short = {name: r["finding"] for name, r in rows.items() if r["status"] == "NotEvaluated"}
    assert set(short) == {"LossNotDecreasing", "Overtraining"}, short
    assert all(f.startswith("not evaluated: too little data:") for f in short.values()), short


@pytest.mark.parametrize(
    ("run", "rule"),
    [
        ("exploding", "ExplodingTensor"),
        ("lr0", "LossNotDecreasing"),
        ("overfit", "Overfit"),
        ("bad_init", "PoorWeightInitialization"),
    ],
)
def test_broken_run_flags_its_rule(runs, run, rule):
    row = _rules(runs[run])[rule]
    assert row["status"] == "IssuesFound", row
    assert row["step"] is not None and row["finding"] and row["advice"]


def test_table_and_fail_on_exit_codes(runs):
    proc = run_cli("debug", "rules", str(runs["lr0"]), "--fail-on", "LossNotDecreasing")
    assert proc.returncode == 1
    assert "LossNotDecreasing" in proc.stdout and "IssuesFound" in proc.stdout and "->" in proc.stdout
    assert run_cli("debug", "rules", str(runs["healthy"]), "--fail-on", "any").returncode == 0
    # Parameter overrides reach the rule: demanding a 100% drop per 5 steps makes the healthy run fail too.
    params = ("diff_percent=100", "num_steps=5", "progress_percent=0")
    rows = _rules(runs["healthy"], *[a for p in params for a in ("--param", f"LossNotDecreasing.{p}")])
    assert rows["LossNotDecreasing"]["status"] == "IssuesFound"


def test_bad_arguments_are_one_line_errors(runs, tmp_path):
    proc = run_cli("debug", "rules", str(tmp_path))
    assert proc.returncode == 2 and "holds no smdebug tensors" in proc.stderr and str(tmp_path) in proc.stderr
    proc = run_cli("debug", "rules", str(runs["healthy"]), "--param", "Overfit.nope=1")
    assert proc.returncode == 2 and "unknown parameter(s) ['nope']" in proc.stderr and "ratio_threshold" in proc.stderr
    proc = run_cli("debug", "rules", str(runs["healthy"]), "--fail-on", "Typo")
    assert proc.returncode == 2 and "unknown rule(s) ['Typo']" in proc.stderr


def test_class_imbalance_from_saved_dataset_counts(tiny_data, tmp_path):
    from dogclf.debug.engine import evaluate_rules

    data = tmp_path / "imbalanced"
    shutil.copytree(tiny_data, data)
    for extra in sorted((data / "train" / sorted(p.name for p in (data / "train").iterdir())[0]).iterdir())[1:]:
        extra.unlink()  # one class keeps 1 of 12 training images: ratio 12 > 10
    train(tiny_config(data, **{**DEBUG, "optim.epochs": 1}), tmp_path / "run")
    counts = json.loads((tmp_path / "run" / "debug" / "class_counts.json").read_text())
    assert counts["counts"]["train"] == [1, 12, 12]
    row = {r.rule: r for r in evaluate_rules(tmp_path / "run", names=["ClassImbalance"])}["ClassImbalance"]
    assert row.status == "IssuesFound" and "[1, 12, 12]" in row.finding


def test_rule_without_its_collection_is_not_evaluated(tiny_data, tmp_path):
    from dogclf.debug.engine import evaluate_rules

    train(tiny_config(tiny_data, **{"debug.enabled": True, "debug.save_interval": 1, "optim.epochs": 1}), tmp_path)
    rows = {r.rule: r for r in evaluate_rules(tmp_path)}
    dead = rows["DeadRelu"]
    assert dead.status == "NotEvaluated" and not dead.triggered
    assert "needs collection 'relu_output'" in dead.finding
    assert (
        "--set debug.collections=[losses,weights,biases,gradients,labels,predictions,dataset,relu_output]"
        in dead.finding
    )
    assert not [r for r in rows.values() if r.status == "Error"]
    assert rows["ExplodingTensor"].status == "NoIssuesFound"  # evaluated: its tensors were saved
    proc = run_cli("debug", "rules", str(tmp_path), "--fail-on", "any")
    assert proc.returncode == 0 and "NotEvaluated" in proc.stdout, proc.stdout


def test_a_crashing_rule_is_an_error_row(tiny_data, tmp_path, monkeypatch):
    from dogclf.debug import engine, rules

    train(tiny_config(tiny_data, **{"debug.enabled": True, "debug.save_interval": 1, "optim.epochs": 1}), tmp_path)

    def boom(self, step):
        raise ValueError("broken rule")

    monkeypatch.setattr(rules.ExplodingTensor, "invoke_at_step", boom)
    row = engine.evaluate_rules(tmp_path, names=["ExplodingTensor"])[0]
    assert row.status == "Error" and row.finding == "ValueError: broken rule"
