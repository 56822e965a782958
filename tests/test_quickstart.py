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
from dogclf.quickstart import run_quickstart, tuning_config
from dogclf.training.schedule import lr_factor

TINY = {"classes": 3, "per_class": 12, "image_size": 32, "epochs": 2, "trials": 2, "tune_epochs": 1}
TINY_OVERRIDES = {"model.arch": "tiny_cnn", "data.num_workers": 0, "runtime.progress": False}


@pytest.mark.parametrize(
    ("freeze", "weights", "trial_freeze", "trial_augment"),
    [
        ("full", None, "full", True),
        ("staged", None, "staged", True),  # random init: the head stage says nothing, trials run staged
        ("staged", "imagenet", "head", False),  # pretrained: the head stage, from cached features
        ("head", None, "head", False),
    ],
)
def test_tuning_config_is_the_training_config_shortened(freeze, weights, trial_freeze, trial_augment):
    cfg = build_config(overrides={"model.freeze": freeze, "model.weights": weights, "optim.epochs": 6,
                                  "profile.enabled": True, "debug.enabled": True, "optim.lr": 0.005})  # fmt: skip
    trial = tuning_config(cfg, epochs=2)
    assert (trial.optim.epochs, trial.model.freeze, trial.data.augment) == (2, trial_freeze, trial_augment)
    assert not (trial.profile.enabled or trial.debug.enabled)
    assert (trial.optim.lr, trial.model.arch, trial.model.weights) == (0.005, cfg.model.arch, cfg.model.weights)


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
    steps = math.ceil(3 * 12 / batch)
    assert first["lr"] == pytest.approx(lr * lr_factor(steps, build_config(base=saved).optim, steps))

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
    assert len(out.split("endpoint top-3:")[1].splitlines()[0].split(",")) == 3
