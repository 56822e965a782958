"""Heads trained from cached features follow the Trainer's freeze=head run epoch by epoch."""

from __future__ import annotations

import pytest

from conftest import tiny_config
from dogclf.data.loading import load_dataset
from dogclf.runtime import resolve_runtime
from dogclf.training import train
from dogclf.tune.features import FeatureCache
from dogclf.tune.head import train_head

CASES = {
    "adamw-cosine-dropout": {"optim.lr": 0.05, "model.dropout": 0.3, "data.batch_size": 5},
    "sgd-warmup-smoothing-clip-cap": {
        "optim.optimizer": "sgd",
        "optim.lr": 0.2,
        "optim.warmup_epochs": 0.5,
        "optim.scheduler": "step",
        "optim.step_size": 1,
        "optim.gamma": 0.5,
        "optim.label_smoothing": 0.1,
        "optim.grad_clip": 0.5,
        "optim.max_steps_per_epoch": 3,
        "optim.monitor": "valid_top1",
        "runtime.seed": 3,
    },
}


@pytest.mark.parametrize("case", CASES)
def test_cached_head_training_matches_the_trainer(tiny_data, tmp_path, case):
    cfg = tiny_config(
        tiny_data,
        **{
            "model.freeze": "head",
            "data.augment": False,
            "optim.epochs": 3,
            "runtime.precision": "fp32",
            **CASES[case],
        },
    )
    reference = train(cfg, tmp_path / "run")
    layout, _, fingerprint = load_dataset(cfg)
    cached = FeatureCache(tmp_path / "cache").get(cfg, layout, fingerprint, resolve_runtime(cfg.runtime))
    run = train_head(cfg, cached.splits, len(layout.class_folders))
    assert run.best_epoch == reference.best_epoch
    assert len(run.history) == len(reference.history) == 3
    for ours, theirs in zip(run.history, reference.history, strict=True):
        assert ours["lr"] == pytest.approx(theirs["lr"], rel=1e-9)
        for phase in ("train", "valid"):
            assert ours[phase]["n"] == theirs[phase]["n"]
            assert ours[phase]["loss"] == pytest.approx(theirs[phase]["loss"], rel=1e-5)
            assert ours[phase]["top1"] == theirs[phase]["top1"]
    losses = [r["train"]["loss"] for r in run.history]
    assert losses[0] != losses[-1]  # the head really trained


def test_early_stopping_patience_is_honoured(tiny_data, tmp_path):
    overrides = {
        "model.freeze": "head",
        "data.augment": False,
        "optim.epochs": 6,
        "runtime.precision": "fp32",
        "optim.lr": 5.0,
        "optim.early_stopping_patience": 1,
        "optim.early_stopping_min_delta": 10.0,
    }
    cfg = tiny_config(tiny_data, **overrides)
    reference = train(cfg, tmp_path / "run")
    layout, _, fingerprint = load_dataset(cfg)
    cached = FeatureCache(tmp_path / "cache").get(cfg, layout, fingerprint, resolve_runtime(cfg.runtime))
    run = train_head(cfg, cached.splits, len(layout.class_folders))
    assert len(run.history) == len(reference.history) == 2
    assert run.best_epoch == reference.best_epoch == 1


def test_head_training_runs_on_one_cpu_thread_and_gives_the_threads_back(tiny_data, tmp_path):
    """A linear head's steps are too small to split: one thread, and the process's setting restored after."""
    import torch

    overrides = {"model.freeze": "head", "data.augment": False, "optim.epochs": 2, "runtime.threads": None}
    cfg = tiny_config(tiny_data, **overrides)  # no runtime.threads: the process keeps its own setting
    layout, _, fingerprint = load_dataset(cfg)
    cached = FeatureCache(tmp_path / "cache").get(cfg, layout, fingerprint, resolve_runtime(cfg.runtime))
    before, seen = torch.get_num_threads(), []
    torch.set_num_threads(2)
    try:
        train_head(cfg, cached.splits, len(layout.class_folders), lambda record: seen.append(torch.get_num_threads()))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1]
