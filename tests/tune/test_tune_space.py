"""Search spaces by optimizer and freeze mode, --space NAME|FILE, and trials that differ from the final run."""

from __future__ import annotations

import json
import logging

import pytest

from conftest import tiny_config
from dogclf.config import build_config
from dogclf.errors import ConfigError
from dogclf.quickstart import QUICKSTART_CONFIG, tuning_config
from dogclf.sagemaker.tuners import job_space
from dogclf.tune import tune
from dogclf.tune.results import format_differences, trial_differences
from dogclf.tune.space import SPACE_NAMES, SearchSpace, default_space, load_space, named_space, resolve_space


def _lr(space):
    p = space.parameters["lr"]
    return (p.min, p.max, p.scale)


def test_course_space_stays_available_by_name_and_as_the_config_free_default():
    for space in (named_space("course"), default_space()):
        assert _lr(space) == (0.001, 0.1, "log")
        assert space.parameters["batch-size"].values == [20, 34, 40, 60, 75]
        assert space.objective == "valid:loss" and space.direction == "minimize"


@pytest.mark.parametrize(
    ("freeze", "optimizer", "weights", "lr"),
    [
        ("nothing", "adamw", "imagenet", (1e-5, 1e-3, "log")),
        ("full", "adamw", "imagenet", (1e-5, 1e-3, "log")),  # old name of nothing
        ("nothing", "adamw", None, (1e-3, 2e-3, "log")),  # from random init
        ("backbone", "adamw", "imagenet", (1e-3, 1e-1, "log")),
        ("head", "adamw", "imagenet", (1e-3, 1e-1, "log")),  # old name of backbone
        ("staged", "adamw", None, (1e-3, 3e-2, "log")),
        ("nothing", "sgd", "imagenet", (1e-3, 3e-2, "log")),
        ("nothing", "sgd", None, (1e-2, 1e-1, "log")),
        ("backbone", "sgd", "imagenet", (3e-3, 3e-1, "log")),
    ],
)
def test_default_space_fits_the_optimizer_freeze_mode_and_weights(freeze, optimizer, weights, lr):
    settings = {"model.freeze": freeze, "optim.optimizer": optimizer, "model.weights": weights, "optim.epochs": 3}
    assert _lr(default_space(build_config(overrides=settings))) == lr


def test_whole_network_adamw_space_stays_below_the_measured_divergence():
    # docs/local.md: AdamW at lr 5e-3 on the whole quickstart ResNet50 ended epoch 1 with valid loss ~4e5; with
    # warmup and BatchNorm recalibration a small network never spiked up to 1e-2 (bench_lr_ranges.py); below 1e-3
    # stays near chance; ResNet50 above 2e-3 with recalibration is not measured yet.
    cfg = build_config(overrides=QUICKSTART_CONFIG)
    assert cfg.optim.warmup_epochs > 0
    assert _lr(default_space(tuning_config(cfg, 2))) == (1e-3, 2e-3, "log")


def test_space_option_takes_a_name_or_a_file(tmp_path):
    cfg = build_config(overrides={"model.freeze": "nothing"})
    assert resolve_space(None, cfg)[0] == "adamw-nothing"
    assert (
        resolve_space(None, build_config(overrides={"model.weights": None, "model.freeze": "full"}))[0]
        == "adamw-scratch"
    )
    assert _lr(resolve_space("course", cfg)[1]) == (0.001, 0.1, "log")
    path = tmp_path / "space.yaml"
    path.write_text("parameters:\n  lr: {type: continuous, min: 0.0001, max: 0.001, scale: log}\n")
    assert _lr(resolve_space(str(path), cfg)[1]) == (0.0001, 0.001, "log")
    with pytest.raises(ConfigError, match="not one of the built-in spaces"):
        resolve_space("adamw-everything", cfg)
    with pytest.raises(ConfigError, match="unknown search space"):
        named_space("nope")
    assert "course" in SPACE_NAMES


def test_sagemaker_job_uses_the_course_space_for_a_frozen_backbone():
    frozen = build_config(overrides={"model.freeze": "head", "optim.optimizer": "sgd"})
    whole = build_config(overrides={"model.freeze": "nothing"})
    assert _lr(job_space(None, frozen)) == (0.001, 0.1, "log")
    assert _lr(job_space(None, whole)) == (1e-5, 1e-3, "log")
    assert _lr(job_space("course", whole)) == (0.001, 0.1, "log")


def test_differences_between_trials_and_final_run():
    settings = {"model.freeze": "staged", "model.weights": "imagenet", "optim.epochs": 6, "debug.enabled": True}
    cfg = build_config(overrides=settings)
    found = trial_differences(tuning_config(cfg, 2), cfg)
    assert found == {"data.augment": [False, True], "model.freeze": ["backbone", "staged"], "optim.epochs": [2, 6]}
    assert "data.augment: False in the trials, True in the final run" in format_differences(found)
    assert trial_differences(cfg, cfg) == {} and format_differences({}) == ""
    # Tuned fields differ by design; they are not differences of the problem.
    tuned = build_config(overrides={"optim.lr": 0.5}, base=cfg.model_dump(mode="json"))
    assert trial_differences(cfg, tuned, ("optim.lr",)) == {}


def test_tune_records_and_logs_differences_only_when_they_exist(tiny_data, tmp_path, caplog):
    trials = tiny_config(tiny_data, **{"model.freeze": "backbone", "data.augment": False, "optim.epochs": 1})
    final = tiny_config(tiny_data, **{"model.freeze": "backbone", "data.augment": True, "optim.epochs": 1})
    space = named_space("course")
    with caplog.at_level(logging.WARNING, logger="dogclf"):
        differs = tune(trials, space, tmp_path / "a", n_trials=1, final=final)
    assert differs.differences == {"data.augment": [False, True]}
    assert json.loads((tmp_path / "a" / "best.json").read_text())["differences"] == {"data.augment": [False, True]}
    assert "data.augment: False in the trials, True in the final run" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dogclf"):
        same = tune(trials, space, tmp_path / "b", n_trials=1, final=trials)
    assert same.differences == {} and json.loads((tmp_path / "b" / "best.json").read_text())["differences"] == {}
    assert "different problem" not in caplog.text


def test_study_started_with_an_old_freeze_name_resumes():
    import optuna

    from dogclf.tune.study import _check_same_study, _comparable

    current = _comparable(build_config(overrides={"model.freeze": "backbone"}), named_space("course"), "fp")
    study = optuna.create_study()
    study.set_user_attr("dogclf", {**current, "config": {**current["config"], "model.freeze": "head"}})
    _check_same_study(study, current)  # head is the old name of backbone
    study.set_user_attr("dogclf", {**current, "config": {**current["config"], "model.freeze": "full"}})
    with pytest.raises(ConfigError, match=r"model\.freeze: 'nothing' -> 'backbone'"):
        _check_same_study(study, current)


@pytest.mark.parametrize(
    ("objective", "direction"), [("valid:top1", "maximize"), ("valid:top5", "maximize"), ("valid:loss", "minimize")]
)
def test_direction_follows_the_objective_when_not_given(tmp_path, objective, direction):
    path = tmp_path / "space.yaml"
    path.write_text(f"parameters:\n  lr: {{type: continuous, min: 0.0001, max: 0.001}}\nobjective: {objective}\n")
    assert load_space(path).direction == direction


@pytest.mark.parametrize(
    ("objective", "direction", "message"),
    [
        ("valid:top1", "minimize", "direction minimize contradicts objective valid:top1"),
        ("valid:loss", "maximize", "direction maximize contradicts objective valid:loss"),
        ("train:loss", "minimize", "train metrics reward overfitting"),
        ("train:top1", "maximize", "train metrics reward overfitting"),
    ],
)
def test_contradicting_direction_and_train_objectives_are_refused_in_one_line(tmp_path, objective, direction, message):
    path = tmp_path / "space.yaml"
    text = "parameters:\n  lr: {type: continuous, min: 0.0001, max: 0.001}\n"
    path.write_text(text + f"objective: {objective}\ndirection: {direction}\n")
    with pytest.raises(ConfigError, match=message) as info:
        load_space(path)
    assert "\n" not in str(info.value)


def test_a_consistent_direction_is_accepted():
    space = named_space("course").model_copy(update={"objective": "valid:top1", "direction": "maximize"})
    assert SearchSpace.model_validate(space.model_dump()).direction == "maximize"
