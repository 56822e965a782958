"""Issue 11 item 7: no batch of one, the lr used is the lr logged, worker count, freeze-mode names."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import tiny_config
from dogclf.config import build_config, config_to_yaml
from dogclf.data.dataset import train_batches
from dogclf.training import train
from dogclf.training.schedule import lr_factor


def _history(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.parametrize(("size", "batch", "expected"), [(36, 5, (7, True)), (36, 8, (5, False)), (1, 4, (1, False))])
def test_only_a_last_batch_of_one_is_dropped(size, batch, expected):
    assert train_batches(size, batch) == expected


def test_a_last_batch_of_one_does_not_break_batchnorm(tiny_data, tmp_path):
    # 36 train images in batches of 5 leave one image; resnet18 at 16 px has 1x1 maps before its last BatchNorm.
    cfg = tiny_config(
        tiny_data, **{"model.arch": "resnet18", "data.image_size": 16, "data.batch_size": 5, "optim.epochs": 1}
    )
    result = train(cfg, tmp_path / "run", metrics_only=True)
    assert result.history[0]["train"]["n"] == 35


def test_logged_lr_is_the_mean_lr_of_the_epochs_steps(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, **{"optim.warmup_epochs": 0.5, "optim.lr": 0.02, "optim.epochs": 2})
    history = train(cfg, tmp_path / "run", metrics_only=True).history
    steps = 5  # 36 images in batches of 8
    for epoch, record in enumerate(history):
        used = [0.02 * lr_factor(s, cfg.optim, steps) for s in range(epoch * steps, (epoch + 1) * steps)]
        assert record["lr"] == pytest.approx(sum(used) / steps, rel=1e-9)
        assert record["lr"] != pytest.approx(0.02 * lr_factor((epoch + 1) * steps, cfg.optim, steps))


def test_same_seed_same_results_with_0_or_2_loader_workers(tiny_data, tmp_path):
    runs = []
    for workers in (0, 2):
        cfg = tiny_config(tiny_data, **{"data.num_workers": workers, "data.augment": True, "model.dropout": 0.2})
        train(cfg, tmp_path / f"w{workers}", metrics_only=True)
        runs.append(_history(tmp_path / f"w{workers}"))
    assert runs[0] == runs[1]


@pytest.mark.parametrize(("old", "new"), [("head", "backbone"), ("full", "nothing"), ("staged", "staged")])
def test_old_freeze_names_are_aliases_saved_under_the_new_name(old, new):
    cfg = build_config(overrides={"model.freeze": old, "optim.epochs": 3})
    assert cfg.model.freeze == new
    assert yaml.safe_load(config_to_yaml(cfg))["model"]["freeze"] == new


def test_run_saved_with_an_old_freeze_name_resumes(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(tiny_data, **{"optim.epochs": 1}), run)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["freeze"] == "nothing"
    saved["model"]["freeze"] = "full"  # as written before the rename
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    result = train(tiny_config(tiny_data, **{"optim.epochs": 1, "model.freeze": "nothing"}), run, resume=True)
    assert result.best_epoch == 1
