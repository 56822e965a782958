"""The quickstart's whole local path with tiny settings: tuned values reach the optimizer, every step's output."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import yaml

from dogclf.cli.main import main
from dogclf.config import build_config
from dogclf.models import create_model
from dogclf.quickstart import diverged, run_quickstart, training_problems, tuning_config
from dogclf.training.schedule import lr_factor
from dogclf.training.stability import loss_jumps

TINY = {"classes": 3, "per_class": 12, "image_size": 32, "epochs": 2, "trials": 2, "tune_epochs": 1}
TINY_OVERRIDES = {"model.arch": "tiny_cnn", "data.num_workers": 0, "runtime.progress": False}


@pytest.mark.parametrize(
    ("freeze", "weights", "trial_freeze", "trial_augment"),
    [
        ("nothing", None, "nothing", True),
        ("full", None, "nothing", True),  # old name of nothing
        ("staged", None, "staged", True),  # random init: the head stage says nothing, trials run staged
        ("staged", "imagenet", "backbone", False),  # pretrained: the head stage, from cached features
        ("backbone", None, "backbone", False),
        ("head", None, "backbone", False),  # old name of backbone
    ],
)
def test_tuning_config_is_the_training_config_shortened(freeze, weights, trial_freeze, trial_augment):
    cfg = build_config(overrides={"model.freeze": freeze, "model.weights": weights, "optim.epochs": 6,
                                  "profile.enabled": True, "debug.enabled": True, "optim.lr": 0.005})  # fmt: skip
    trial = tuning_config(cfg, epochs=2)
    assert (trial.optim.epochs, trial.model.freeze, trial.data.augment) == (2, trial_freeze, trial_augment)
    assert not (trial.profile.enabled or trial.debug.enabled)
    assert (trial.optim.lr, trial.model.arch, trial.model.weights) == (0.005, cfg.model.arch, cfg.model.weights)


def _assert_trials_sound(r, classes):
    assert len(r.trial_valid_losses) == 2 and all(len(v) == 1 for v in r.trial_valid_losses.values())
    for losses in [*r.trial_valid_losses.values(), r.final_valid_losses]:
        assert all(math.isfinite(x) and x < 5 * math.log(classes) for x in losses), losses


@pytest.mark.parametrize(
    ("losses", "bad"),
    [
        ([1.1, 0.8, 0.4], None),
        ([0.05, 0.3, 0.1], None),  # above 10x the first but better than a uniform guess
        ([4_052_828.0, 0.9], "epoch 1 valid loss 4.053e+06"),
        ([1.0, float("nan")], "epoch 2 valid loss nan"),
        ([0.1, 2.0], "epoch 2 valid loss 2"),  # 20x the first and worse than a uniform guess (ln 5 = 1.61)
    ],
)
def test_divergence_check(losses, bad):
    found = diverged(losses, num_classes=5)
    assert found == bad if bad is None else found.startswith(bad)


def test_training_problems_name_the_trial_and_the_final_run():
    assert training_problems({0: [1.2, 0.5], 1: [0.9, 0.3]}, [1.0, 0.2, 0.05], 5) == []
    problems = training_problems({0: [1.2, 0.5], 1: [5e6, 1.5]}, [1.6, 1.5], 5)
    assert problems[0].startswith("trial 1 diverged: epoch 1")
    assert problems[1].startswith("final run did not converge: best valid loss 1.5")


def _top3_labels(pairs):
    return [label for label, _ in pairs]


def test_quickstart_whole_path_with_pretrained_staged_model(tmp_path):
    # A local weights file stands in for ImageNet weights: trials tune the head stage from cached features.
    weights = tmp_path / "backbone.pth"
    torch.save(create_model("tiny_cnn", 3).state_dict(), weights)
    overrides = {**TINY_OVERRIDES, "model.weights": str(weights), "model.freeze": "staged"}
    r = run_quickstart(tmp_path / "qs", **TINY, overrides=overrides)

    rows = list(csv.DictReader(r.outputs["tuning table"].open()))
    assert [row["path"] for row in rows] == ["feature-cache", "feature-cache"]
    # The tuned values are what the training ran with, and the lr reached its optimizer.
    saved = yaml.safe_load((r.run / "config.yaml").read_text())
    lr, batch = r.best_params["lr"], r.best_params["batch-size"]
    assert (saved["optim"]["lr"], saved["data"]["batch_size"], saved["model"]["freeze"]) == (lr, batch, "staged")
    first = json.loads((r.run / "metrics.jsonl").read_text().splitlines()[0])
    steps = math.ceil(3 * 12 / batch) - (3 * 12 % batch == 1)
    used = [lr * lr_factor(s, build_config(base=saved).optim, steps) for s in range(steps)]
    assert first["lr"] == pytest.approx(sum(used) / steps)  # the mean lr of the epoch's steps
    # Trials trained the head from cached features without augmentation: recorded as a difference.
    assert r.differences["data.augment"] == [False, True]
    assert r.differences["model.freeze"] == ["backbone", "staged"]
    _assert_trials_sound(r, classes=3)

    assert r.tarball == r.run / "model.tar.gz" and r.tarball.stat().st_size > 0
    for name in ("profiler report", "debug report"):
        assert "<img" in r.outputs[name].read_text(), name
    assert {x.rule for x in r.debug_rules} >= {"VanishingGradient", "ExplodingTensor", "LossNotDecreasing"}
    assert r.profiler_rules and all(x.status for x in r.profiler_rules)
    assert len(r.endpoint_top3) == 3 and _top3_labels(r.endpoint_top3) == _top3_labels(r.predictions)
    assert not any((r.tune_dir / "trials").glob("*/checkpoints"))


def test_quickstart_cli_reruns_in_the_same_workdir(tmp_path, capsys):
    args = ["quickstart", "--workdir", str(tmp_path), "--classes", "3", "--per-class", "12", "--image-size", "32",
            "--arch", "tiny_cnn", "--epochs", "1", "--trials", "1", "--tune-epochs", "1",
            "--set", "data.num_workers=0", "--set", "runtime.progress=false"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0  # reuses the data, new tune/ and runs/ folders
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "quickstart-2"
    assert (tmp_path / "runs" / "quickstart-1" / "model").is_dir() and (tmp_path / "tune" / "quickstart-2").is_dir()
    expected = [
        "debugger rules:", "rule                      status", "endpoint top-3:  ", "valid top-1:", "tuned:  ",
        f"tarball:         {run / 'model.tar.gz'}", f"profiler report: {run / 'profile' / 'report.html'}",
        f"debug report:    {run / 'debug' / 'report.html'}",
    ]  # fmt: skip
    for line in expected:
        assert line in out, line
    assert "valid loss per epoch:\n  trial 0:  " in out and "  final run: " in out
    assert "different problem" not in out  # trials of 1 epoch train what the final run of 1 epoch trains
    assert len(out.split("endpoint top-3:")[1].splitlines()[0].split(",")) == 3


@pytest.mark.parametrize(
    ("losses", "jumps"),
    [
        ([0.73, 3.88, 0.0034], ["epoch 2 valid loss 3.88 is 5.3x epoch 1's 0.73"]),  # the fresh clone
        ([1.1, 0.8, 0.4, 0.35], []),
        ([0.9, 1.5, 0.6], []),  # a rise of 1.7x: noise, not instability
        ([0.003, 0.012, 0.004], []),  # 4x, but by a hundredth of a uniform guess
    ],
)
def test_unstable_epochs_are_named(losses, jumps):
    assert loss_jumps(losses, 5) == jumps


def test_the_quickstart_summary_reports_an_unstable_final_run():
    problems = training_problems({0: [1.2, 0.5]}, [0.73, 3.88, 0.0034], 5)
    assert problems == ["final run unstable: epoch 2 valid loss 3.88 is 5.3x epoch 1's 0.73"]
    assert training_problems({0: [0.5, 2.0]}, [1.0, 0.3], 5) == [
        "trial 0 unstable: epoch 2 valid loss 2 is 4.0x epoch 1's 0.5"
    ]
