"""Multi-instance data parallel on CPU and GPU instances, and warm pools, in the requests that reach moto."""

from __future__ import annotations

import json

import botocore.session
import pytest
from sm_moto import BUCKET, REGION, ROLE, aws_env, capture, conn, moto_url, recorded, start_recording  # noqa: F401

import dogclf.sagemaker as sm
from conftest import run_cli, tiny_config
from dogclf.errors import ConfigError
from dogclf.sagemaker.estimators import KEEP_ALIVE_MAX_S
from dogclf.tune.space import default_space

DATA = f"s3://{BUCKET}/data/dogs"


def _cli_train(url: str, *extra: str):
    from dogclf.sagemaker import make_client

    make_client(url, REGION).put_object(Bucket=BUCKET, Key="data/dogs/train/a/1.jpg", Body=b"x")  # a non-empty prefix
    common = ["--bucket", BUCKET, "--region", REGION, "--endpoint-url", url]
    return run_cli("sagemaker", "train", "--data", DATA, "--role", ROLE, "--no-debugger", *extra, *common)


@pytest.mark.parametrize(("instance_type", "processor"), [("ml.m5.xlarge", "cpu"), ("ml.g5.xlarge", "gpu")])
def test_instance_count_2_sends_one_torchrun_job(aws_env, conn, instance_type, processor):  # noqa: F811
    start_recording(aws_env)
    r = _cli_train(aws_env, "--instance-type", instance_type, "--instance-count", "2")
    assert r.returncode == 0, r.stderr
    (req,) = recorded(aws_env, "CreateTrainingJob")
    assert req["ResourceConfig"]["InstanceType"] == instance_type and req["ResourceConfig"]["InstanceCount"] == 2
    hps = {k: json.loads(v) for k, v in req["HyperParameters"].items()}
    assert hps["sagemaker_torch_distributed_enabled"] is True and hps["sagemaker_instance_type"] == instance_type
    image = req["AlgorithmSpecification"]["TrainingImage"]
    assert f"/pytorch-training:{sm.FRAMEWORK_VERSION}-{processor}" in image and REGION in image


def test_one_instance_sends_no_launcher(aws_env, conn):  # noqa: F811
    start_recording(aws_env)
    r = _cli_train(aws_env, "--instance-type", "ml.m5.xlarge")
    assert r.returncode == 0, r.stderr
    (req,) = recorded(aws_env, "CreateTrainingJob")
    assert "sagemaker_torch_distributed_enabled" not in req["HyperParameters"]
    assert "-cpu-" in req["AlgorithmSpecification"]["TrainingImage"]  # the SDK's own pick, same family


def test_keep_alive_reaches_training_jobs_and_is_bounded(conn, tmp_path):  # noqa: F811
    seen = capture(conn, "CreateTrainingJob")
    cfg = tiny_config(tmp_path)
    for keep in (900, None):
        est = sm.make_estimator(cfg, conn, sm.EstimatorOptions(role=ROLE, debugger=False, keep_alive_s=keep))
        sm.submit(conn, est, DATA)
    assert seen[0]["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 900
    assert "KeepAlivePeriodInSeconds" not in seen[1]["ResourceConfig"]
    for bad in (-1, KEEP_ALIVE_MAX_S + 1):
        with pytest.raises(ConfigError, match="keep_alive_s"):
            sm.EstimatorOptions(role=ROLE, keep_alive_s=bad)
    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("KeepAlivePeriodInSeconds")
    assert (shape.metadata["min"], shape.metadata["max"]) == (0, KEEP_ALIVE_MAX_S)


def test_keep_alive_reaches_tuning_trials(conn, tmp_path):  # noqa: F811
    seen = capture(conn, "CreateHyperParameterTuningJob")
    cfg = tiny_config(tmp_path)
    for keep in (600, None):
        est = sm.make_estimator(cfg, conn, sm.EstimatorOptions(role=ROLE, mode="hpo", keep_alive_s=keep))
        sm.submit(conn, sm.make_tuner(est, default_space()), DATA, job_name=f"dogclf-warm-{keep}")
    warm, cold = (req["TrainingJobDefinition"] for req in seen)
    assert warm["ResourceConfig"] == {
        "InstanceType": "ml.g4dn.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
        "KeepAlivePeriodInSeconds": 600,
    }
    assert "HyperParameterTuningResourceConfig" not in warm
    # submitted after the warm one: the request hook is gone once its job is submitted
    assert "ResourceConfig" not in cold and cold["HyperParameterTuningResourceConfig"]["InstanceCount"] == 1


def test_cli_keep_alive_out_of_range_is_one_line(aws_env, conn):  # noqa: F811
    start_recording(aws_env)
    r = _cli_train(aws_env, "--keep-alive", str(KEEP_ALIVE_MAX_S + 1))
    assert r.returncode == 2 and "keep_alive_s" in r.stderr and "Traceback" not in r.stderr
    assert recorded(aws_env, "CreateTrainingJob") == []
    r = _cli_train(aws_env, "--keep-alive", "1800")
    assert r.returncode == 0, r.stderr
    assert recorded(aws_env, "CreateTrainingJob")[0]["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 1800
