"""examples/sagemaker_end_to_end.py in a subprocess against a moto server: every request up to deploy goes through.

moto runs no containers: its jobs complete at once and leave no outputs, so the example must say so and skip
the steps that need them. What the example sent is read back with boto3, and from moto's request recorder
where moto does not echo a field (ProfilerConfig).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "sagemaker"))  # the shared moto helper lives with the SageMaker tests
from sm_moto import BUCKET, REGION, ROLE, moto_url, recorded, start_recording  # noqa: E402, F401

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def _client(service: str, url: str):
    return boto3.session.Session(region_name=REGION, aws_access_key_id="testing",
                                 aws_secret_access_key="testing").client(service, endpoint_url=url)  # fmt: skip


def test_sagemaker_example_against_moto(moto_url, tiny_data, tmp_path):  # noqa: F811
    s3, sm = _client("s3", moto_url), _client("sagemaker", moto_url)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    start_recording(moto_url)
    out = tmp_path / "out"
    args = ["--role", ROLE, "--bucket", BUCKET, "--region", REGION, "--endpoint-url", moto_url,
            "--data", str(tiny_data), "--output", str(out), "--poll-seconds", "0.5", "--spot"]  # fmt: skip
    env = {**os.environ, **AWS, "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "sagemaker_end_to_end.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stdout = proc.stdout

    # 1. the data, byte for byte
    local = sorted(p for p in Path(tiny_data).rglob("*") if p.is_file())
    prefix = f"dogclf/data/{Path(tiny_data).name}/"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix, MaxKeys=1000).get("Contents", [])}
    assert keys == {prefix + p.relative_to(tiny_data).as_posix() for p in local}
    first = local[0]
    body = s3.get_object(Bucket=BUCKET, Key=prefix + first.relative_to(tiny_data).as_posix())["Body"].read()
    assert body == first.read_bytes()

    # 2. the tuning job: classic ranges, validation loss minimized, on the uploaded data
    (tuning,) = recorded(moto_url, "CreateHyperParameterTuningJob")
    config = tuning["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "valid:loss"}
    (lr,) = config["ParameterRanges"]["ContinuousParameterRanges"]
    assert (lr["Name"], lr["MinValue"], lr["MaxValue"], lr["ScalingType"]) == ("lr", "0.001", "0.1", "Logarithmic")
    (batch,) = config["ParameterRanges"]["CategoricalParameterRanges"]
    assert [json.loads(v) for v in batch["Values"]] == ["20", "34", "40", "60", "75"]
    channel = tuning["TrainingJobDefinition"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert channel == f"s3://{BUCKET}/{prefix.rstrip('/')}"
    assert sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]

    # 4. the training job: no Debugger or Profiler service, the rules and profiler inside the job, spot
    (training,) = recorded(moto_url, "CreateTrainingJob")
    service = ("DebugHookConfig", "DebugRuleConfigurations", "ProfilerRuleConfigurations")
    assert [f for f in service if f in training] == []
    assert training.get("ProfilerConfig", {"DisableProfiler": True}) == {"DisableProfiler": True}
    hps = {k: json.loads(v) for k, v in training["HyperParameters"].items()}
    assert (hps["debug"], hps["debug-rules"], hps["profile"]) == ("true", "true", "true")
    metrics = {d["Name"] for d in training["AlgorithmSpecification"]["MetricDefinitions"]}
    assert {"rule:LossNotDecreasing", "rule:StepOutlier", "valid:loss"} <= metrics
    assert training["EnableManagedSpotTraining"] is True
    described = sm.describe_training_job(TrainingJobName=training["TrainingJobName"])

    # 6-8. model, endpoint config and endpoint created for the job's model.tar.gz as is, then all deleted
    (model,) = recorded(moto_url, "CreateModel")
    container = model["PrimaryContainer"]
    assert container["ModelDataUrl"] == described["ModelArtifacts"]["S3ModelArtifacts"]  # not repacked
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    (endpoint_config,) = recorded(moto_url, "CreateEndpointConfig")
    assert endpoint_config["ProductionVariants"][0]["InstanceType"] == "ml.m5.large"
    (endpoint,) = recorded(moto_url, "CreateEndpoint")
    assert [r["EndpointName"] for r in recorded(moto_url, "DeleteEndpoint")] == [endpoint["EndpointName"]]
    assert recorded(moto_url, "DeleteEndpointConfig") and recorded(moto_url, "DeleteModel")
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
    assert not recorded(moto_url, "InvokeEndpoint")

    # the steps that need a job to have run are skipped, each with a notice
    notices = [line for line in stdout.splitlines() if line.startswith("[skipped]")]
    assert [n.split(":")[0] for n in notices] == [
        "[skipped] best hyperparameters",
        "[skipped] rule verdicts and reports",
        "[skipped] query the endpoint",
    ], stdout
    assert "FakeTrainingJobName" in notices[0] and "model.tar.gz" in notices[1]
    assert not (out / "reports").exists() and not (out / "best.yaml").exists()
    assert stdout.rstrip().endswith("done")
