"""SageMaker SDK 2.x and 3.x lines: the requests `dogclf sagemaker ...` sends under each, captured by moto, compared.

The CLI runs in a subprocess under each line's interpreter: DOGCLF_SDK2_PYTHON and DOGCLF_SDK3_PYTHON (each
defaults to this interpreter when its SDK is of that line); without both the comparisons skip with that reason.
Known, intentional differences, normalised away here and nowhere else:
- 2.x runs the entry script through the training toolkit (hyperparameters `sagemaker_program`,
  `sagemaker_submit_directory` = a sourcedir.tar.gz, `sagemaker_torch_distributed_enabled`); 3.x runs its own
  driver (`/bin/bash ... sm_drivers/sm_train.sh`) from two extra input channels, `code` (the same files,
  uploaded one by one) and `sm_drivers` (sourcecode.json names the script, sm_train.sh the torchrun driver).
- 2.x adds its bookkeeping hyperparameters (`sagemaker_region`, `sagemaker_job_name`, ...); 3.x sends a
  VolumeSizeInGB, an output CompressionType and the checkpoint LocalPath (SageMaker's default) of its own.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from sm_moto import BUCKET, REGION, ROLE, aws_env, conn, moto_url, put_model_tarball, recorded, start_recording  # noqa: F401

from dogclf.sagemaker import make_client, parse_s3_uri

ROOT = Path(__file__).resolve().parents[2]
DATA = f"s3://{BUCKET}/data/dogs"
CHECKPOINT_DIR = "/opt/ml/checkpoints"


def _line_of(python: str) -> int | None:
    """The sagemaker major version importable by `python` (None when it has none)."""
    probe = "from importlib import metadata; print(metadata.version('sagemaker').split('.')[0])"
    r = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
    return int(r.stdout) if r.returncode == 0 else None


def _python(major: int) -> str | None:
    """DOGCLF_SDK{major}_PYTHON, else this interpreter when its SDK is of that line."""
    given = os.environ.get(f"DOGCLF_SDK{major}_PYTHON")
    if given:
        found = _line_of(given)
        if found != major:  # never compare a line with itself
            raise RuntimeError(f"DOGCLF_SDK{major}_PYTHON={given} has sagemaker {found}.x, not {major}.x")
        return given
    return sys.executable if _line_of(sys.executable) == major else None


SDK2, SDK3 = _python(2), _python(3)
needs_sdk3 = pytest.mark.skipif(SDK3 is None, reason="DOGCLF_SDK3_PYTHON (a Python with sagemaker 3.x) is not set")
needs_both = pytest.mark.skipif(
    SDK2 is None or SDK3 is None,
    reason="comparing the lines needs DOGCLF_SDK2_PYTHON and DOGCLF_SDK3_PYTHON (Pythons with sagemaker 2.x, 3.x)",
)


def _cli(python: str, url: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m dogclf.cli.main ARGS` against moto, dogclf from this checkout."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "PYTHONUNBUFFERED": "1",
        "SAGEMAKER_VALIDATE_ROLE": "false",  # 3.x checks the role with IAM SimulatePrincipalPolicy; moto answers 500
    }
    common = ["--bucket", BUCKET, "--region", REGION, "--endpoint-url", url]
    cmd = [python, "-m", "dogclf.cli.main", *args, *common]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)


def _read(s3, uri: str) -> bytes:
    bucket, key = parse_s3_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _files_under(s3, uri: str) -> dict[str, str]:
    """{relative path: sha256} of the objects under an S3 prefix."""
    bucket, prefix = parse_s3_uri(uri)
    prefix = prefix.rstrip("/") + "/"
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix) :]] = hashlib.sha256(_read(s3, f"s3://{bucket}/{obj['Key']}")).hexdigest()
    return out


def _files_in_tar(data: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: hashlib.sha256(tar.extractfile(m).read()).hexdigest() for m in tar.getmembers() if m.isfile()}


def training_substance(req: dict, s3) -> dict:
    """What a CreateTrainingJob request asks SageMaker for, independent of the SDK line that built it."""
    hps = {k: json.loads(v) for k, v in req["HyperParameters"].items()}
    algorithm = req["AlgorithmSpecification"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in req["InputDataConfig"]}
    if "ContainerEntrypoint" in algorithm:  # 3.x: its driver, from the code and sm_drivers channels
        assert algorithm["ContainerEntrypoint"] == ["/bin/bash"]
        drivers, code = channels.pop("sm_drivers"), channels.pop("code")
        entry = json.loads(_read(s3, f"{drivers}/sourcecode.json"))["entry_script"]
        launcher_script = _read(s3, f"{drivers}/sm_train.sh").decode()
        launcher = "torchrun" if "distributed_drivers/torchrun_driver.py" in launcher_script else None
        files = _files_under(s3, code)
    else:  # 2.x: the training toolkit, from the sagemaker_* hyperparameters
        entry = hps["sagemaker_program"]
        launcher = "torchrun" if hps.get("sagemaker_torch_distributed_enabled") else None
        files = _files_in_tar(_read(s3, hps["sagemaker_submit_directory"]))
    checkpoint = req.get("CheckpointConfig") or {}
    resources = req["ResourceConfig"]
    return {
        "image": algorithm["TrainingImage"],
        "instances": (resources["InstanceType"], resources["InstanceCount"]),
        "keep_alive_s": resources.get("KeepAlivePeriodInSeconds"),
        "channels": channels,
        "entry_script": entry,
        "code_files": files,
        "hyperparameters": {k: v for k, v in hps.items() if not k.startswith("sagemaker_")},
        "metric_definitions": sorted((m["Name"], m["Regex"]) for m in algorithm.get("MetricDefinitions", [])),
        # the run folder under checkpoints/ is unique per job; LocalPath absent is SageMaker's /opt/ml/checkpoints
        "checkpoint": (checkpoint.get("S3Uri", "").rsplit("/", 1)[0], checkpoint.get("LocalPath", CHECKPOINT_DIR)),
        "output": req["OutputDataConfig"]["S3OutputPath"],
        "tensorboard": req.get("TensorBoardOutputConfig"),
        "spot": req.get("EnableManagedSpotTraining", False),
        "stopping": req["StoppingCondition"],
        "launcher": launcher,
        "environment": req.get("Environment") or {},
        "tags": sorted((t["Key"], t["Value"]) for t in req.get("Tags", [])),
        "role": req["RoleArn"],
    }


def _request(python: str, url: str, command: str, operation: str, *flags: str) -> dict:
    """The one `operation` request that `dogclf sagemaker COMMAND` sends under `python`'s SDK line."""
    start_recording(url)
    r = _cli(python, url, "sagemaker", command, "--data", DATA, "--role", ROLE, *flags)
    assert r.returncode == 0, r.stderr
    (req,) = recorded(url, operation)
    return req


def _train_request(python: str, url: str, *flags: str) -> dict:
    return _request(python, url, "train", "CreateTrainingJob", *flags)


@pytest.fixture
def data_prefix(aws_env, conn):  # noqa: F811
    make_client(aws_env, REGION).put_object(Bucket=BUCKET, Key="data/dogs/train/a/1.jpg", Body=b"x")
    return aws_env


@needs_both
@pytest.mark.parametrize(
    "flags",
    [
        ("--instance-type", "ml.g5.xlarge"),
        ("--instance-type", "ml.m5.xlarge", "--instance-count", "2", "--spot", "--max-run", "3600",
         "--max-wait", "7200", "--keep-alive", "900", "--no-debugger", "--no-profiler"),
    ],
)  # fmt: skip
def test_training_requests_carry_the_same_substance_under_both_lines(data_prefix, flags):
    s3 = make_client(data_prefix, REGION)
    two = training_substance(_train_request(SDK2, data_prefix, *flags), s3)
    three = training_substance(_train_request(SDK3, data_prefix, *flags), s3)
    assert two == three
    # The substance is not empty: the script, its hyperparameters and the rule-verdict metrics are all there.
    assert two["entry_script"] == "train.py" and "train.py" in two["code_files"] and two["hyperparameters"]["epochs"]
    rule_metrics = [name for name, _ in two["metric_definitions"] if name.startswith("rule:")]
    assert bool(rule_metrics) == ("--no-profiler" not in flags)
    assert two["launcher"] == ("torchrun" if "--instance-count" in flags else None)
    assert two["keep_alive_s"] == (900 if "--keep-alive" in flags else None)


@needs_sdk3
def test_sdk3_refuses_the_debugger_services_in_one_line(data_prefix):
    start_recording(data_prefix)
    r = _cli(SDK3, data_prefix, "sagemaker", "train", "--data", DATA, "--role", ROLE, "--sagemaker-debugger")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "dogclf: error: --sagemaker-debugger needs SageMaker SDK 2.x (3.x has no Debugger or Profiler options); "
        "drop it: the job runs dogclf's rules and profiler inside itself"
    ]
    assert recorded(data_prefix, "CreateTrainingJob") == []


def tuning_substance(req: dict, s3) -> dict:
    """What a CreateHyperParameterTuningJob request asks SageMaker for, independent of the SDK line that built it.

    The trials run the training toolkit under both lines (a tuning job's trials name no entry point): program,
    code (sourcedir.tar.gz under code/JOB/source/), region and launcher are static hyperparameters in both. Known,
    intentional differences, normalised away here: 2.x adds `sagemaker_estimator_class_name`/`_module` (its own
    bookkeeping, for attach()) and an empty IntegerParameterRanges; without a warm pool 2.x sends the trials'
    instances as HyperParameterTuningResourceConfig, 3.x always as ResourceConfig (the same fields).
    """
    name = req["HyperParameterTuningJobName"]
    config, definition = req["HyperParameterTuningJobConfig"], req["TrainingJobDefinition"]
    static = {k: json.loads(v) for k, v in definition["StaticHyperParameters"].items()}
    assert static.pop("sagemaker_job_name") == name
    code = static.pop("sagemaker_submit_directory")
    assert code == f"s3://{BUCKET}/dogclf/code/{name}/source/sourcedir.tar.gz"
    for bookkeeping in ("sagemaker_estimator_class_name", "sagemaker_estimator_module"):
        static.pop(bookkeeping, None)
    (resources,) = [definition[k] for k in ("ResourceConfig", "HyperParameterTuningResourceConfig") if k in definition]
    algorithm = definition["AlgorithmSpecification"]
    warm = req.get("WarmStartConfig")
    if warm:
        warm["ParentHyperParameterTuningJobs"].sort(key=lambda p: p["HyperParameterTuningJobName"])
    return {
        "image": algorithm["TrainingImage"],
        "input_mode": algorithm["TrainingInputMode"],
        "resources": resources,
        "static_hyperparameters": static,
        "code_files": _files_in_tar(_read(s3, code)),
        "ranges": {k: sorted(v, key=lambda r: r["Name"]) for k, v in config["ParameterRanges"].items() if v},
        "objective": config["HyperParameterTuningJobObjective"],
        "metric_definitions": sorted((m["Name"], m["Regex"]) for m in algorithm.get("MetricDefinitions", [])),
        "limits": config["ResourceLimits"],
        "strategy": (config["Strategy"], config.get("StrategyConfig")),
        "early_stopping": config.get("TrainingJobEarlyStoppingType", "Off"),
        "warm_start": warm,
        "channels": {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in definition["InputDataConfig"]},
        "output": definition["OutputDataConfig"],
        "stopping": definition["StoppingCondition"],
        "spot": definition.get("EnableManagedSpotTraining", False),
        "checkpoint": definition.get("CheckpointConfig"),
        "environment": definition.get("Environment") or {},
        "role": definition["RoleArn"],
        "tags": sorted((t["Key"], t["Value"]) for t in req.get("Tags", [])),
    }


SPACE = {  # an Integer range too, a maximised objective, Random search with early stopping
    "parameters": {
        "head-epochs": {"type": "integer", "min": 1, "max": 3},
        "dropout": {"type": "continuous", "min": 0.0, "max": 0.5},
        "optimizer": {"type": "categorical", "values": ["adamw", "sgd"]},
    },
    "objective": "valid:top1",
    "strategy": "random",
    "early_stopping": True,
    "max_trials": 4,
    "parallel_trials": 2,
}


def _tune_request(python: str, url: str, *flags: str) -> dict:
    return _request(python, url, "tune", "CreateHyperParameterTuningJob", *flags)


@needs_both
@pytest.mark.parametrize(
    "flags",
    [
        ("--tag", "team=dogs", "--max-trials", "6", "--parallel-trials", "2"),
        ("--instance-type", "ml.m5.xlarge", "--instance-count", "2", "--strategy", "hyperband", "--epochs", "4",
         "--warm-start", "parent-b", "--warm-start", "parent-a", "--keep-alive", "600", "--spot",
         "--max-run", "3600", "--max-wait", "7200"),
        ("--space", "SPACE_FILE", "--instance-type", "ml.c5.xlarge"),
    ],
)  # fmt: skip
def test_tuning_requests_carry_the_same_substance_under_both_lines(data_prefix, tmp_path, flags):
    """`dogclf sagemaker tune`: 2.x through HyperparameterTuner (dogclf adding the warm pool), 3.x through
    sagemaker-core's HyperParameterTuningJob.create; see tuning_substance for what is normalised away."""
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps(SPACE))
    flags = tuple(str(space) if f == "SPACE_FILE" else f for f in flags)
    s3 = make_client(data_prefix, REGION)
    two = tuning_substance(_tune_request(SDK2, data_prefix, *flags), s3)
    three = tuning_substance(_tune_request(SDK3, data_prefix, *flags), s3)
    assert two == three
    # Not empty: the trials run hpo.py from the shipped code with the script's untuned hyperparameters.
    static = two["static_hyperparameters"]
    assert static["sagemaker_program"] == "hpo.py" and "hpo.py" in two["code_files"]
    assert "dogclf-config.yaml" in two["code_files"] and static["epochs"] and static["sagemaker_region"] == REGION
    assert two["channels"] == {"training": {"S3DataType": "S3Prefix", "S3Uri": DATA,
                                            "S3DataDistributionType": "FullyReplicated"}}  # fmt: skip
    assert two["output"] == {"S3OutputPath": f"s3://{BUCKET}/dogclf/output"}
    assert "valid:loss" in dict(two["metric_definitions"])
    tuned = {r["Name"] for ranges in two["ranges"].values() for r in ranges}
    assert tuned and not tuned & set(static)
    if "--space" in flags:
        assert two["objective"] == {"Type": "Maximize", "MetricName": "valid:top1"}
        assert two["ranges"]["IntegerParameterRanges"] == [
            {"Name": "head-epochs", "MinValue": "1", "MaxValue": "3", "ScalingType": "Linear"}
        ]
        assert [json.loads(v) for v in two["ranges"]["CategoricalParameterRanges"][0]["Values"]] == ["adamw", "sgd"]
        assert two["strategy"] == ("Random", None) and two["early_stopping"] == "Auto"
        assert two["limits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    elif "--strategy" in flags:
        assert two["strategy"] == ("Hyperband", {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 4}})
        assert two["resources"]["KeepAlivePeriodInSeconds"] == 600 and two["spot"] is True
        assert two["stopping"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
        assert static["sagemaker_torch_distributed_enabled"] is True and "-cpu-" in two["image"]
        assert [p["HyperParameterTuningJobName"] for p in two["warm_start"]["ParentHyperParameterTuningJobs"]] == [
            "parent-a",
            "parent-b",
        ]
    else:
        assert two["objective"] == {"Type": "Minimize", "MetricName": "valid:loss"}
        assert two["limits"] == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2}
        assert ("team", "dogs") in two["tags"] and "-gpu-" in two["image"] and two["warm_start"] is None
        assert "KeepAlivePeriodInSeconds" not in two["resources"] and not two["spot"]


@needs_sdk3
def test_sdk3_tune_wait_describe_and_best_params_end_to_end(data_prefix, tmp_path):
    """Under 3.x against moto: `tune --wait` creates and waits on the job, the emulator names a best trial, which
    is created here as SageMaker would (the job's trial definition, tuned values added), and `best-params` turns it
    back into a config, the untuned settings read from the sourcedir.tar.gz the 3.x line uploaded."""
    tuning = "dogclf-tune-sdk3-e2e"
    start_recording(data_prefix)
    r = _cli(SDK3, data_prefix, "sagemaker", "tune", "--data", DATA, "--role", ROLE, "--job-name", tuning,
             "--set", "optim.gamma=0.3", "--wait")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == f"tuning job: {tuning}"
    assert len(recorded(data_prefix, "CreateHyperParameterTuningJob")) == 1
    assert recorded(data_prefix, "DescribeHyperParameterTuningJob")  # --wait polled it to Completed

    client = _sagemaker(data_prefix)
    desc = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning)
    best, definition = desc["BestTrainingJob"]["TrainingJobName"], desc["TrainingJobDefinition"]
    chosen = {"lr": json.dumps("0.0123"), "batch-size": json.dumps("34")}
    client.create_training_job(
        TrainingJobName=best,
        HyperParameters={**definition["StaticHyperParameters"], **chosen},
        AlgorithmSpecification=definition["AlgorithmSpecification"],
        RoleArn=definition["RoleArn"],
        InputDataConfig=definition["InputDataConfig"],
        OutputDataConfig=definition["OutputDataConfig"],
        ResourceConfig=definition["ResourceConfig"],
        StoppingCondition=definition["StoppingCondition"],
    )
    out = tmp_path / "best.yaml"
    r = _cli(SDK3, data_prefix, "sagemaker", "best-params", tuning, "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert f"training job: {best} (best of tuning job {tuning})" in r.stdout
    assert "  lr = 0.0123" in r.stdout and "  batch-size = 34" in r.stdout
    from dogclf.config import build_config

    written = build_config(out)
    assert written.optim.lr == 0.0123 and written.data.batch_size == 34
    assert written.optim.gamma == 0.3  # not a hyperparameter: from the config shipped in sourcedir.tar.gz


def _sagemaker(url: str):
    """A boto3 SageMaker client on moto."""
    import boto3

    return boto3.client("sagemaker", endpoint_url=url, region_name=REGION)


@needs_both
def test_register_sends_the_same_model_package_under_both_lines(conn, tmp_path):  # noqa: F811
    url = conn.endpoint_url
    model = put_model_tarball(conn, "jobs/j9/output/model.tar.gz")
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps({"loss": 0.9, "top1": 0.81, "n": 836}))
    packages = []
    for python, group in ((SDK2, "dogs-sdk2"), (SDK3, "dogs-sdk3")):
        start_recording(url)
        r = _cli(python, url, "sagemaker", "register", model, "--group", group, "--evaluation", str(evaluation))
        assert r.returncode == 0, r.stderr
        (req,) = recorded(url, "CreateModelPackage")
        assert req.pop("ModelPackageGroupName") == group
        req.pop("ClientToken", None)
        packages.append(req)
    assert packages[0] == packages[1]
    (container,) = packages[0]["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == model and "/pytorch-inference:" in container["Image"]


def test_the_line_is_picked_from_the_installed_major_and_refuses_what_it_lacks():
    from importlib import metadata

    from dogclf.errors import ConfigError
    from dogclf.sagemaker.sdk_line import require, sdk_line

    line = sdk_line()
    assert line.major == int(metadata.version("sagemaker").split(".")[0])
    for operation in ("train", "tune", "deploy", "batch_transform", "predictor"):  # both lines do all of them
        assert require(operation) is line
    with pytest.raises(ConfigError, match=f"with SageMaker SDK {line.major}.x in this dogclf yet"):
        require("no such operation")


def test_make_tuner_takes_only_a_training_object_of_make_estimator():
    """The tuning job is built from the spec make_estimator resolved; another object is refused in one line."""
    from dogclf.errors import ConfigError
    from dogclf.sagemaker import make_tuner
    from dogclf.tune.space import default_space

    with pytest.raises(ConfigError, match="^expected a training object of make_estimator, got object$"):
        make_tuner(object(), default_space())


def _deploy_requests(python: str, url: str, model: str, endpoint: str, *flags: str) -> dict[str, dict]:
    """The CreateModel, CreateEndpointConfig and CreateEndpoint requests of `dogclf sagemaker deploy`."""
    start_recording(url)
    r = _cli(python, url, "sagemaker", "deploy", model, "--role", ROLE, "--endpoint-name", endpoint, *flags)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"endpoint: {endpoint} (creating")
    return {op: recorded(url, op) for op in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint")}


def deploy_substance(requests: dict[str, list[dict]], endpoint: str, s3) -> dict:
    """What deploying asks SageMaker for, independent of the SDK line; every resource is named `endpoint`."""
    (model,), (config,), (created,) = requests.values()
    assert model["ModelName"] == config["EndpointConfigName"] == created["EndpointName"] == endpoint
    assert created["EndpointConfigName"] == endpoint
    container = model["PrimaryContainer"]
    (variant,) = config["ProductionVariants"]
    assert variant.pop("ModelName") == endpoint
    served = container["ModelDataUrl"]
    return {
        "role": model["ExecutionRoleArn"],
        "image": container["Image"],
        "environment": container.get("Environment") or {},
        "model_data": served,
        "model_files": _files_in_tar(_read(s3, served)),  # a repacked model: the same files, code/ included
        "variant": variant,
        "tags": sorted((t["Key"], t["Value"]) for t in config.get("Tags", []) + created.get("Tags", [])),
    }


@needs_both
@pytest.mark.parametrize(
    "flags",
    [
        (),  # the model is repacked with dogclf's serving code
        ("--instance-type", "ml.g4dn.xlarge", "--instance-count", "2", "--code-in-model"),
        ("--serverless-memory", "2048", "--serverless-concurrency", "3", "--export", "onnx-fp32", "--code-in-model"),
        ("--image", "123456789012.dkr.ecr.us-west-2.amazonaws.com/dogclf:1", "--code-in-model"),
    ],
)  # fmt: skip
def test_deploy_requests_carry_the_same_substance_under_both_lines(conn, flags):  # noqa: F811
    """CreateModel / CreateEndpointConfig / CreateEndpoint: 2.x through PyTorchModel.deploy, 3.x through the
    sagemaker-core Session's client (repacking with sagemaker-core's repack_model). Nothing is normalised away
    but the names (each line deploys its own endpoint) and hence the repacked model's key."""
    url, s3 = conn.endpoint_url, conn.s3_client()
    model = put_model_tarball(conn, "jobs/j8/output/model.tar.gz")
    two = deploy_substance(_deploy_requests(SDK2, url, model, "dogs-two", *flags), "dogs-two", s3)
    three = deploy_substance(_deploy_requests(SDK3, url, model, "dogs-three", *flags), "dogs-three", s3)
    repacked = not flags
    for substance, name in ((two, "dogs-two"), (three, "dogs-three")):
        # a repacked model is the job's model plus dogclf's serving code, under code/NAME/ of the prefix
        assert substance.pop("model_data") == (f"s3://{BUCKET}/dogclf/code/{name}/model.tar.gz" if repacked else model)
    assert two == three
    env, files = two["environment"], two["model_files"]
    if "--image" in flags:
        assert two["image"] == flags[1] and env == {}
    else:
        assert "/pytorch-inference:" in two["image"] and env["SAGEMAKER_PROGRAM"] == "inference.py"
        assert ("-gpu-" in two["image"]) == ("ml.g4dn.xlarge" in flags)
    assert "code/inference.py" in files and "model.pth" in files
    if "--serverless-memory" in flags:
        assert two["variant"]["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 3}
        assert env["DOGCLF_BACKEND"] == "onnx-fp32"
    else:
        assert (two["variant"]["InstanceType"], two["variant"]["InitialInstanceCount"]) == (
            ("ml.g4dn.xlarge", 2) if "--instance-count" in flags else ("ml.m5.large", 1)
        )


@needs_both
@pytest.mark.parametrize(
    "flags",
    [
        ("--instance-type", "ml.c5.xlarge", "--instance-count", "2", "--topk", "3"),  # repacked
        ("--code-in-model", "--export", "onnx-fp32"),
    ],
)  # fmt: skip
def test_transform_requests_carry_the_same_substance_under_both_lines(conn, flags):  # noqa: F811
    """CreateModel and CreateTransformJob: 2.x through PyTorchModel.transformer, 3.x through the sagemaker-core
    Session's client. Nothing is normalised away but the names (each line starts its own job) and hence the
    repacked model's key."""
    url, s3 = conn.endpoint_url, conn.s3_client()
    model = put_model_tarball(conn, "jobs/j7/output/model.tar.gz")
    found = []
    for python, name in ((SDK2, "dogs-batch-two"), (SDK3, "dogs-batch-three")):
        start_recording(url)
        r = _cli(python, url, "sagemaker", "batch-predict", model, "--input", f"s3://{BUCKET}/images/",
                 "--output", f"s3://{BUCKET}/out/", "--role", ROLE, "--job-name", name, *flags)  # fmt: skip
        assert r.returncode == 0, r.stderr
        (created,), (job,) = recorded(url, "CreateModel"), recorded(url, "CreateTransformJob")
        assert created["ModelName"] == job.pop("ModelName") == job.pop("TransformJobName") == name
        container = created["PrimaryContainer"]
        served = container.pop("ModelDataUrl")
        assert served == (model if "--code-in-model" in flags else f"s3://{BUCKET}/dogclf/code/{name}/model.tar.gz")
        job["TransformInput"].setdefault("SplitType", "None")  # 2.x leaves SageMaker's default out
        found.append({"role": created["ExecutionRoleArn"], "container": container, "job": job,
                      "model_files": _files_in_tar(_read(s3, served))})  # fmt: skip
    two, three = found
    assert two == three
    env, job = two["container"]["Environment"], two["job"]
    assert "/pytorch-inference:" in two["container"]["Image"] and env["SAGEMAKER_PROGRAM"] == "inference.py"
    assert env["DOGCLF_TOPK"] == ("3" if "--topk" in flags else "5")
    assert env.get("DOGCLF_BACKEND") == ("onnx-fp32" if "--export" in flags else None)
    assert {"code/inference.py", "model.pth"} <= set(two["model_files"])
    assert job["BatchStrategy"] == "SingleRecord" and job["TransformInput"]["ContentType"] == "application/x-image"
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/images/"
    assert job["TransformOutput"] == {"S3OutputPath": f"s3://{BUCKET}/out/", "Accept": "application/json"}
    expected = ("ml.c5.xlarge", 2) if "--instance-count" in flags else ("ml.m5.large", 1)
    assert (job["TransformResources"]["InstanceType"], job["TransformResources"]["InstanceCount"]) == expected


PREDICT = """
import json, sys
from dogclf.sagemaker import connect
from dogclf.sagemaker.serializers import make_predictor
conn = connect(None, "us-east-1", sys.argv[1], needs_bucket=False)
predictor = make_predictor("dogclf-local", conn.session)
top = predictor.predict(sys.argv[2], custom_attributes="topk=2")
logits = make_predictor("dogclf-local", conn.session, logits=True).predict(open(sys.argv[2], "rb").read())
print(json.dumps({"class": type(predictor).__module__, "top": top, "logits": logits.tolist()}))
"""


@needs_both
def test_the_predictor_answers_the_same_under_both_lines(tiny_run, tiny_data):
    """make_predictor: 2.x's sagemaker.predictor.Predictor, 3.x's RuntimePredictor (InvokeEndpoint through the
    sagemaker-core Session's runtime client), both with dogclf's codecs, against a real local endpoint."""
    from dogclf.serve.local import LocalEndpoint

    image = str(sorted((tiny_data / "test").rglob("*.jpg"))[0])
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}  # fmt: skip
    answers = []
    with LocalEndpoint(tiny_run, "--precision", "fp32", "--threads", "1") as endpoint:
        for python in (SDK2, SDK3):
            r = subprocess.run([python, "-c", PREDICT, endpoint.url, image], capture_output=True, text=True,
                               timeout=300, env=env)  # fmt: skip
            assert r.returncode == 0, r.stderr
            answers.append(json.loads(r.stdout.strip().splitlines()[-1]))
    two, three = answers
    assert (two.pop("class"), three.pop("class")) == ("sagemaker.base_predictor", "dogclf.sagemaker.sdk3")
    assert two == three
    assert len(two["top"]["predictions"][0]) == 2 and len(two["logits"][0]) == 3


FAILED_WAIT = """
import sys
from dogclf.errors import DogclfError
from dogclf.sagemaker.estimators import job_outcome
from dogclf.sagemaker.sdk_line import sdk_line

line = sdk_line()
if line.major == 2:
    from sagemaker.exceptions import UnexpectedStatusException as Failed
    failure = Failed("Error for Training job dogs-1: Failed. Reason: AlgorithmError: boom", ["Completed"], "Failed")
else:
    from sagemaker.core.utils.exceptions import FailedStatusError as Failed
    failure = Failed(resource_type="TrainingJob", status="Failed", reason="AlgorithmError: boom")
try:
    with job_outcome(line, "training job dogs-1"):
        raise failure
except DogclfError as exc:
    print("CAUGHT", type(exc).__name__, exc, sep=": ")
with job_outcome(line, "training job dogs-2"):
    raise ValueError("not a job failure")
"""


@needs_both
def test_a_waited_job_that_failed_is_one_line_naming_it_under_both_lines():
    """`--wait` on a job that ends Failed: each line's own exception becomes SageMakerError naming the job and the
    reason (the CLI prints it as `dogclf: error: ...`); anything else still propagates."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}
    for python in (SDK2, SDK3):
        r = subprocess.run([python, "-c", FAILED_WAIT], capture_output=True, text=True, timeout=300, env=env)
        caught = [line for line in r.stdout.splitlines() if line.startswith("CAUGHT: ")]
        assert len(caught) == 1, (python, r.stdout, r.stderr)
        first = caught[0].removeprefix("CAUGHT: ")
        assert first.startswith("SageMakerError: training job dogs-1 did not complete: "), (python, first)
        assert "Failed" in first and "AlgorithmError: boom" in first and "\n" not in first
        assert r.returncode == 1 and "ValueError: not a job failure" in r.stdout + r.stderr  # not swallowed
