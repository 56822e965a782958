"""What a tuning trial turns off is defined once and applied alike by SageMaker, the quickstart and `dogclf tune`."""

from __future__ import annotations

import optuna

from conftest import tiny_config
from dogclf.config import build_config, config_to_yaml
from dogclf.quickstart import tuning_config
from dogclf.sagemaker.environment import SageMakerEnv
from dogclf.sagemaker.training import resolve
from dogclf.tune import Categorical, SearchSpace, tune
from dogclf.tune.storage import default_storage
from dogclf.tune.trial import LOCAL_TRIAL_TRACKING, TRIAL_SETTINGS

HOOKS_ON = {"debug.enabled": True, "debug.live_rules": True, "profile.enabled": True}


def _values(cfg, fields):
    dumped = cfg.model_dump()
    return {f: dumped[f.split(".")[0]][f.split(".")[1]] for f in fields}


def test_a_sagemaker_hpo_trial_turns_off_what_every_trial_does_and_a_training_job_keeps_it(tiny_data, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(config_to_yaml(build_config(overrides=HOOKS_ON)))
    env = SageMakerEnv.from_environ({})
    args = ["--config", str(config), "--data", str(tiny_data), "--output-data-dir", str(tmp_path / "out")]
    trial, _ = resolve(args, "hpo", env)
    job, _ = resolve(args, "train", env)
    assert _values(trial, TRIAL_SETTINGS) == TRIAL_SETTINGS
    assert _values(job, TRIAL_SETTINGS) == HOOKS_ON


def test_the_quickstarts_trials_turn_off_the_same(tiny_data):
    cfg = build_config(overrides={**HOOKS_ON, "data.root": str(tiny_data), "optim.epochs": 5})
    trial = tuning_config(cfg, 2)
    assert _values(trial, TRIAL_SETTINGS) == TRIAL_SETTINGS and trial.optim.epochs == 2


def test_local_trials_write_no_tracking_files_of_their_own(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, **{"optim.epochs": 1, "tracking.tensorboard": True})
    out = tmp_path / "tune"
    tune(cfg, SearchSpace(parameters={"lr": Categorical(values=[0.01])}), out, n_trials=1)
    trial = optuna.load_study(study_name="dogclf", storage=default_storage(out)).trials[0]
    assert trial.state.name == "COMPLETE" and trial.user_attrs["path"] == "trainer"
    trial_dir = out / "trials" / "trial_0000"
    assert [p.name for p in trial_dir.iterdir() if p.is_dir()] == []  # no tensorboard/ folder
    assert LOCAL_TRIAL_TRACKING == {"tracking.tensorboard": False, "tracking.mlflow": False}
