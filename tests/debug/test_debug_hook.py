"""The hook callback: frozen parameters, staged unfreezing, SageMaker config, live rules stopping a run."""

from __future__ import annotations

import json

import pytest

from conftest import tiny_config
from dogclf.debug.engine import load_trial
from dogclf.training import train


def _trial(run):
    return load_trial(run / "debug")


def test_disabled_debug_writes_nothing(tiny_data, tmp_path):
    from dogclf.config import build_config
    from dogclf.debug.hook import create_hook

    assert create_hook(build_config().debug, tmp_path / "debug", tmp_path / "absent.json") is None
    assert not (tmp_path / "debug").exists()


def test_staged_unfreeze_saves_backbone_gradients_only_once_trainable(tiny_data, tmp_path):
    cfg = tiny_config(
        tiny_data,
        **{
            "debug.enabled": True,
            "debug.save_interval": 1,
            "model.freeze": "staged",
            "optim.epochs": 2,
            "optim.head_epochs": 1,
        },
    )
    train(cfg, tmp_path / "run")
    trial = _trial(tmp_path / "run")
    from smdebug.core.modes import ModeKeys

    steps_per_epoch = len(trial.steps(mode=ModeKeys.TRAIN)) // 2
    backbone = trial.tensor("gradient/Sequential_features.0.0.weight").steps(mode=ModeKeys.TRAIN)
    head = trial.tensor("gradient/Sequential_fc.weight").steps(mode=ModeKeys.TRAIN)
    assert head[0] == 0 and backbone and min(backbone) >= steps_per_epoch
    assert trial.tensor("CrossEntropyLoss_output_0").steps(mode=ModeKeys.TRAIN)
    assert len(trial.tensor("valid_loss_output_0").steps(mode=ModeKeys.EVAL)) == 2


def test_frozen_backbone_does_not_crash_the_hook(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, **{"debug.enabled": True, "model.freeze": "head", "optim.epochs": 1})
    train(cfg, tmp_path / "run")
    names = _trial(tmp_path / "run").tensor_names(collection="gradients")
    assert names == ["gradient/Sequential_fc.bias", "gradient/Sequential_fc.weight"]


def test_sagemaker_hook_config_is_used_when_present(tiny_data, tmp_path):
    from dogclf.debug.callbacks import DebugHookCallback, debug_folder
    from dogclf.training.loop import Trainer

    out = tmp_path / "opt_ml_tensors"
    config = tmp_path / "debughookconfig.json"
    config.write_text(
        json.dumps(
            {
                "LocalPath": str(out),
                "HookParameters": {"save_interval": "2"},
                "CollectionConfigurations": [{"CollectionName": "losses"}],
            }
        )
    )
    run = tmp_path / "run"
    cfg = tiny_config(tiny_data, **{"optim.epochs": 1})  # debug disabled: SageMaker's config decides
    Trainer(cfg, run, callbacks=[DebugHookCallback(cfg.debug, config)]).fit()
    assert load_trial(out).tensor_names(collection="losses")
    assert not debug_folder(run).exists() or not any(debug_folder(run).glob("events"))


def test_live_rules_stop_an_exploding_run(tiny_data, tmp_path):
    from test_debug_rules import forced_lr, train_with

    cfg = tiny_config(
        tiny_data,
        **{
            "debug.live_rules": True,
            "debug.save_interval": 1,
            "optim.epochs": 12,
            "optim.optimizer": "sgd",
            "optim.scheduler": "none",
        },
    )
    result = train_with(forced_lr(1e3), cfg, tmp_path / "run")
    assert len(result.history) < 12
    live = {r["rule"]: r for r in json.loads((tmp_path / "run" / "debug" / "live_rules.json").read_text())}
    assert any(live[name]["status"] == "IssuesFound" for name in cfg.debug.live_stop_on)


def test_unknown_collection_is_a_config_error(tiny_data):
    from dogclf.errors import ConfigError

    with pytest.raises(ConfigError, match=r"debug.collections: .*unknown collection\(s\) \['typo'\]"):
        tiny_config(tiny_data, **{"debug.collections": ["losses", "typo"]})


def test_resnet_relus_are_saved_per_call_with_unrectified_inputs(tiny_data, tmp_path):
    """torchvision's BasicBlock calls one inplace ReLU twice: each call is its own tensor, inputs keep negatives."""
    debug = {
        "debug.enabled": True,
        "debug.save_interval": 1,
        "debug.collections": ["losses", "relu_input", "relu_output"],
    }
    cfg = tiny_config(
        tiny_data, **debug, **{"model.arch": "resnet18", "optim.epochs": 1, "optim.max_steps_per_epoch": 1}
    )
    train(cfg, tmp_path / "run")
    trial = _trial(tmp_path / "run")
    outputs = trial.tensor_names(collection="relu_output")
    assert "layer1.0.relu.0_relu_output" in outputs and "layer1.0.relu.1_relu_output" in outputs
    assert len(outputs) == 1 + 8 * 2  # the stem's ReLU and two calls in each of the 8 blocks
    step = trial.tensor("layer1.0.relu.0_relu_input").steps()[0]
    before = trial.tensor("layer1.0.relu.0_relu_input").value(step)
    after = trial.tensor("layer1.0.relu.0_relu_output").value(step)
    assert before.min() < 0 and after.min() >= 0 and (after == before.clip(min=0)).all()
