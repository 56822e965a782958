"""Class balancing (loss weights, balanced sampler), macro metrics, top-5 n/a and the plain-CE train loss."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import tiny_config
from dogclf.config import RuntimeConfig
from dogclf.data.dataset import ImageDataset, make_loader
from dogclf.data.discovery import discover
from dogclf.data.preprocess import Preprocess, eval_transform
from dogclf.data.synthetic import make_dataset
from dogclf.evaluation import evaluate_loader
from dogclf.running_metrics import RunningMetrics
from dogclf.runtime import resolve_runtime
from dogclf.training import train
from dogclf.training.balance import balanced_sampler, class_weights
from dogclf.training.metrics import parse_metric_lines


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory) -> Path:
    """3 classes; class 0 keeps 12 train / 4 test images, classes 1 and 2 keep 3 train / 1 test."""
    root = make_dataset(tmp_path_factory.mktemp("imb") / "dogs", classes=3, per_class=12, size=32, eval_per_class=4)
    for split, keep in (("train", 3), ("test", 1)):
        for folder in sorted((root / split).iterdir())[1:]:
            for image in sorted(folder.iterdir())[keep:]:
                image.unlink()
    return root


class Constant(nn.Module):
    """Always predicts class 0 (the majority class)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[5.0, 0.0, 0.0]]).repeat(x.shape[0], 1)


def _majority_eval(root: Path):
    layout = discover(root)
    pre = Preprocess.for_size(32)
    loader = make_loader(ImageDataset(layout.splits["test"], eval_transform(pre), pre.decode_options()), 8, False, 0, 0)
    return evaluate_loader(Constant(), loader, resolve_runtime(RuntimeConfig(device="cpu")), 3, layout.classes)


def test_majority_predictor_has_balanced_accuracy_below_top1_on_imbalanced_data(imbalanced, tiny_data):
    skewed = _majority_eval(imbalanced)
    assert skewed.top1 == pytest.approx(4 / 6)
    assert skewed.balanced_accuracy == pytest.approx(1 / 3)
    assert skewed.balanced_accuracy < skewed.top1
    assert skewed.macro_f1 == pytest.approx((2 * 4 / (4 + 6)) / 3)
    even = _majority_eval(tiny_data)  # balanced data: the two agree
    assert even.balanced_accuracy == pytest.approx(even.top1)
    assert even.top1 == pytest.approx(1 / 3)
    assert even.top5 is None and even.metrics()["top5"] is None


def test_class_weights_are_inverse_frequency():
    weights = class_weights([0] * 8 + [1] * 2, 3)
    assert weights.tolist() == pytest.approx([10 / 16, 10 / 4, 1.0])
    assert class_weights([0, 1, 2], 3).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_balanced_sampler_draws_classes_uniformly_and_by_seed():
    labels = [0] * 900 + [1] * 90 + [2] * 10
    drawn = Counter(labels[i] for i in balanced_sampler(labels, 3, seed=1))
    assert sum(drawn.values()) == 1000
    assert all(abs(drawn[c] / 1000 - 1 / 3) < 0.05 for c in range(3)), drawn
    shuffled = Counter(labels[i] for i in torch.randperm(1000).tolist())
    assert shuffled[0] / 1000 > 0.85  # plain shuffling keeps the imbalance
    assert list(balanced_sampler(labels, 3, 1)) == list(balanced_sampler(labels, 3, 1))
    assert list(balanced_sampler(labels, 3, 1)) != list(balanced_sampler(labels, 3, 2))


@pytest.mark.parametrize("balance", ["weights", "sampler"])
def test_training_with_balance_runs_and_reports_macro_metrics(imbalanced, tmp_path, balance, capsys):
    cfg = tiny_config(imbalanced, **{"data.balance": balance, "optim.epochs": 1})
    train(cfg, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert {"balanced_accuracy", "macro_f1"} <= set(record["valid"])
    assert ("objective" in record["train"]) == (balance == "weights")  # weighted loss is not plain CE
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert "test_balanced_accuracy" in summary["metrics"] and "test_top5" not in summary["metrics"]
    shutil.rmtree(tmp_path / "run")


def test_label_smoothing_logs_plain_ce_as_loss_and_the_objective_beside_it(tiny_data, tmp_path, capsys):
    overrides = {"optim.label_smoothing": 0.2, "optim.epochs": 1, "model.calibrate": False}
    train(tiny_config(tiny_data, **overrides), tmp_path / "run")
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["train"]["objective"] > record["train"]["loss"]  # smoothing adds a floor to the objective
    out = capsys.readouterr().out
    parsed = parse_metric_lines(out)
    assert parsed["train:loss"] == [pytest.approx(record["train"]["loss"], abs=1e-6)]
    assert parsed["valid:top5"] == [] and "nan" not in out  # 3 classes: top5 left out, not NaN
    assert json.loads((tmp_path / "run" / "model" / "metadata.json").read_text())["temperature"] == 1.0


def test_plain_run_logs_no_objective(tiny_run):
    record = json.loads((tiny_run / "metrics.jsonl").read_text().splitlines()[0])
    assert "objective" not in record["train"] and record["train"]["top5"] is None


def test_top5_is_reported_with_more_than_5_classes():
    running = RunningMetrics()
    logits = torch.arange(6.0).repeat(6, 1)  # class 5 first, class 0 last
    running.update(0.0, logits, torch.arange(6))
    assert running.result()["top5"] == pytest.approx(5 / 6)
    small = RunningMetrics()
    small.update(0.0, torch.eye(5), torch.arange(5))
    assert small.result()["top5"] is None


def test_sampler_is_refused_under_torchrun_and_weights_are_not(tiny_data, tmp_path, monkeypatch):
    from dogclf.errors import ConfigError
    from dogclf.training.loop import Trainer

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="data.balance=sampler is not supported under torchrun"):
        Trainer(tiny_config(tiny_data, **{"data.balance": "sampler"}), tmp_path / "run")
    Trainer(tiny_config(tiny_data, **{"data.balance": "weights"}), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing written
