"""SageMakerEnv: SM_* variables, channels -> dataset root, hyperparameters.json, failure file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dogclf.data.discovery import discover
from dogclf.errors import ConfigError, DatasetError
from dogclf.sagemaker.environment import SageMakerEnv
from dogclf.training.distributed import info_from_env


def test_missing_variables_are_never_key_errors(tmp_path):
    env = SageMakerEnv.from_environ({"SM_INPUT_DIR": str(tmp_path / "input")})
    assert env.channels == {} and env.model_dir is None and not env.in_container
    assert env.hyperparameters() == {} and env.dataset_root() is None and env.checkpoint_dir is None
    assert env.num_gpus == 0 and env.hosts == []


def _root_in_a_new_process(environ: dict[str, str]) -> str:
    code = "import json, sys; from dogclf.sagemaker.environment import SageMakerEnv as E\n"
    code += "print(E.from_environ(json.loads(sys.argv[1])).dataset_root())"
    out = subprocess.run([sys.executable, "-c", code, json.dumps(environ)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_split_channels_are_joined_and_hpo_drops_test(tiny_data, tmp_path):
    environ = {
        "SM_CHANNELS": json.dumps(["training", "validation", "test"]),
        "SM_CHANNEL_TRAINING": str(tiny_data / "train"),
        "SM_CHANNEL_VALIDATION": str(tiny_data / "valid"),
        "SM_CHANNEL_TEST": str(tiny_data / "test"),
    }
    env = SageMakerEnv.from_environ(environ)
    full = discover(env.dataset_root())
    assert {k: len(v) for k, v in full.splits.items()} == {"train": 36, "valid": 12, "test": 12}
    restarted = [_root_in_a_new_process(environ) for _ in range(2)]  # a restarted job finds the same folder
    assert restarted == [str(env.dataset_root())] * 2
    tuning = discover(env.dataset_root(("train", "valid")))
    assert set(tuning.splits) == {"train", "valid"}
    single = SageMakerEnv.from_environ({"SM_CHANNELS": '["training"]', "SM_CHANNEL_TRAINING": str(tiny_data)})
    assert single.dataset_root() == tiny_data
    assert set(discover(single.dataset_root(("train", "valid"))).splits) == {"train", "valid"}
    odd = SageMakerEnv.from_environ({"SM_CHANNEL_FOO": str(tmp_path), "SM_CHANNEL_BAR": str(tmp_path)})
    with pytest.raises(DatasetError, match="split channels named"):
        odd.dataset_root()


def test_hyperparameters_json_and_failure_file(tmp_path):
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(
        json.dumps({"lr": '"0.01"', "batch-size": "20", "sagemaker_program": '"train.py"', "arch": "resnet50"})
    )
    env = SageMakerEnv.from_environ({"SM_INPUT_DIR": str(tmp_path / "input"), "SM_OUTPUT_DIR": str(tmp_path / "out")})
    assert env.hyperparameters() == {"lr": "0.01", "batch-size": 20, "arch": "resnet50"}
    path = env.write_failure("x" * 5000)
    assert path == tmp_path / "out" / "failure" and len(path.read_text()) == 1024
    (config / "hyperparameters.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match="JSON object"):
        env.hyperparameters()


def test_distributed_info_from_env():
    assert info_from_env({}).world_size == 1
    info = info_from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert info.enabled and not info.is_main
    with pytest.raises(ConfigError, match="RANK=3"):
        info_from_env({"RANK": "3", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="WORLD_SIZE"):
        info_from_env({"WORLD_SIZE": "two"})
