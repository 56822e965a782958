"""The training loop: lr applied, exact metrics, reproducibility, staged unfreezing, early stopping, outputs."""

import json

import pytest
import torch

from conftest import tiny_config
from dogclf.errors import ConfigError, DatasetError, DogclfError
from dogclf.running_metrics import RunningMetrics
from dogclf.training import Callback, Trainer, train
from dogclf.training.checkpoint import load_checkpoint


def _history(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("seconds")
    return rows


def test_loss_is_a_true_per_sample_mean():
    m = RunningMetrics()
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    m.update(loss_sum=3.0 * 1.0, logits=logits[:1], targets=torch.tensor([0]))
    m.update(loss_sum=2 * 4.0, logits=logits[1:], targets=torch.tensor([0, 0]))
    r = m.result()
    assert r["loss"] == pytest.approx(11.0 / 3) and r["top1"] == pytest.approx(2 / 3) and r["n"] == 3


def test_configured_lr_reaches_every_param_group(tiny_data, tmp_path):
    cfg = tiny_config(
        tiny_data,
        **{
            "model.freeze": "staged",
            "optim.lr": 0.03,
            "optim.backbone_lr_mult": 0.1,
            "optim.epochs": 2,
            "optim.optimizer": "sgd",
        },
    )
    trainer = Trainer(cfg, tmp_path / "run")
    trainer._prepare_run_dir()
    trainer._build()
    groups = {g["name"]: g for g in trainer.optim.optimizer.param_groups}
    assert isinstance(trainer.optim.optimizer, torch.optim.SGD)
    assert groups["head"]["initial_lr"] == pytest.approx(0.03)
    assert groups["backbone"]["initial_lr"] == pytest.approx(0.003)


def test_outputs_of_a_run(tiny_run):
    for rel in (
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
        "plots/curves.png",
        "plots/confusion_valid.png",
        "plots/confusion_test.png",
        "model/model.pth",
        "model/metadata.json",
        "checkpoints/last.pt",
    ):
        assert (tiny_run / rel).is_file(), rel
    summary = json.loads((tiny_run / "summary.json").read_text())
    meta = json.loads((tiny_run / "model/metadata.json").read_text())
    assert meta["metrics"]["test_top1"] == summary["metrics"]["test_top1"]
    assert meta["preprocess"]["image_size"] == 32 and meta["dataset_fingerprint"]
    ckpt = load_checkpoint(tiny_run / "checkpoints/last.pt")
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "epoch"} <= set(ckpt)
    assert ckpt["epoch"] == 3


def test_same_seed_same_metrics(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data)
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b")
    assert _history(tmp_path / "a") == _history(tmp_path / "b")


def test_tiny_cnn_learns_the_sample_data(tiny_data, tmp_path):
    result = train(tiny_config(tiny_data, **{"optim.epochs": 8, "optim.lr": 0.02}), tmp_path / "r")
    first, last = result.history[0], result.history[-1]
    assert last["train"]["loss"] < first["train"]["loss"]
    assert result.valid["top1"] >= 0.75


class _Snapshots(Callback):
    def __init__(self):
        self.weights = []

    def on_epoch_end(self, ctx, record):
        self.weights.append(ctx.model.features[0][0].weight.detach().clone())


def test_staged_unfreezing_keeps_backbone_then_trains_it(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, **{"model.freeze": "staged", "optim.head_epochs": 1, "optim.epochs": 2})
    trainer = Trainer(cfg, tmp_path / "r", callbacks=[snap := _Snapshots()])
    trainer._prepare_run_dir()
    trainer._build()
    initial = trainer.model.features[0][0].weight.detach().clone()
    trainer = Trainer(cfg, tmp_path / "r2", callbacks=[snap])
    trainer.fit()
    assert torch.equal(snap.weights[0], initial)
    assert not torch.equal(snap.weights[1], snap.weights[0])


def test_early_stopping(tiny_data, tmp_path):
    cfg = tiny_config(
        tiny_data, **{"optim.epochs": 10, "optim.early_stopping_patience": 2, "optim.early_stopping_min_delta": 100.0}
    )
    result = train(cfg, tmp_path / "r")
    assert len(result.history) == 3 and result.best_epoch == 1


def test_bad_images_fail_up_front_naming_each_file(tiny_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    bad1 = data / "train" / "001.Affenpinscher" / "broken.jpg"
    bad2 = data / "valid" / "002.Afghan_hound" / "empty.png"
    bad1.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    bad2.write_bytes(b"")
    with pytest.raises(DatasetError) as err:
        train(tiny_config(data), tmp_path / "run")
    assert str(bad1) in str(err.value) and str(bad2) in str(err.value)
    assert not (tmp_path / "run").exists()
    result = train(tiny_config(data, **{"data.skip_bad_images": True, "optim.epochs": 1}), tmp_path / "run")
    assert {b.path for b in result.bad_images} == {bad1, bad2}
    listed = (tmp_path / "run" / "bad_images.txt").read_text()
    assert str(bad1) in listed and str(bad2) in listed


def test_existing_run_is_never_overwritten(tiny_run, tiny_data):
    before = (tiny_run / "metrics.jsonl").read_bytes()
    with pytest.raises(DogclfError, match="--resume"):
        train(tiny_config(tiny_data), tiny_run)
    assert (tiny_run / "metrics.jsonl").read_bytes() == before


def test_resume_with_changed_config_names_the_field(tiny_run, tiny_data):
    with pytest.raises(ConfigError, match=r"optim\.lr: 0\.01 -> 0\.5"):
        train(tiny_config(tiny_data, **{"optim.epochs": 3, "optim.lr": 0.5}), tiny_run, resume=True)
