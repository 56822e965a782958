"""Job builders through the real SageMaker SDK and boto3 against a moto server (requests captured)."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
import yaml
from sm_moto import BUCKET, REGION, ROLE, aws_env, capture, conn, moto_url  # noqa: F401

import dogclf.sagemaker as sm
from conftest import run_cli, tiny_config
from dogclf.config import build_config
from dogclf.errors import ConfigError
from dogclf.sagemaker.waiting import _poll
from dogclf.training.metrics import metric_definitions
from dogclf.tune.space import default_space

DATA = f"s3://{BUCKET}/data/dogs"
RULES = """from smdebug.rules.rule import Rule


class _Base(Rule):
    pass


class GradientTooBig(_Base):
    def invoke_at_step(self, step):
        return False
"""


def _estimator(conn, tmp_path, **options):  # noqa: F811
    cfg = tiny_config(tmp_path, **{"optim.lr": 0.02, "optim.grad_clip": 5.0, "name": "tiny-run"})
    rules = tmp_path / "my_rules.py"
    rules.write_text(RULES)
    opts = {"role": ROLE, "spot": True, "max_run_s": 3600, "rules_file": rules, "tags": {"team": "dogs"},
            "sagemaker_debugger": True}  # fmt: skip
    return cfg, sm.make_estimator(cfg, conn, sm.EstimatorOptions(**{**opts, **options}))


def _decoded(hps: dict) -> dict:
    return {k: json.loads(v) for k, v in hps.items()}


def test_create_training_job_request(conn, tmp_path):  # noqa: F811
    seen = capture(conn, "CreateTrainingJob")
    cfg, est = _estimator(conn, tmp_path)
    name = sm.submit(conn, est, DATA)
    (req,) = seen
    hps = _decoded(req["HyperParameters"])
    assert {hps["lr"], hps["batch-size"], hps["arch"], hps["epochs"]} == {"0.02", "8", "tiny_cnn", "2"}
    assert hps["debug"] == "true" and hps["sagemaker_program"] == "train.py"
    assert req["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions()
    collections = {c["CollectionName"] for c in req["DebugHookConfig"]["CollectionConfigurations"]}
    assert collections == set(cfg.debug.saved_collections())  # what the hook saves locally (test_sm_debugger.py)
    rules = {r["RuleConfigurationName"]: r for r in req["DebugRuleConfigurations"]}
    # AWS's built-ins for the tensor checks; the loss rules are dogclf's own, so a custom rules file replaces them
    assert set(rules) == {"VanishingGradient", "ExplodingTensor", "dogclf-GradientTooBig"}
    custom = rules["dogclf-GradientTooBig"]
    assert custom["RuleEvaluatorImage"].endswith("sagemaker-debugger-rule-evaluator:latest")
    assert custom["RuleParameters"]["rule_to_invoke"] == "GradientTooBig"
    assert [r["RuleConfigurationName"] for r in req["ProfilerRuleConfigurations"]] == ["ProfilerReport"]
    assert req["ProfilerConfig"]["ProfilingIntervalInMilliseconds"] == 500
    assert req["CheckpointConfig"]["S3Uri"] == f"s3://{BUCKET}/dogclf/checkpoints/tiny-run"
    assert req["EnableManagedSpotTraining"] is True
    assert req["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}
    assert {"Key": "team", "Value": "dogs"} in req["Tags"]
    assert req["InputDataConfig"][0]["ChannelName"] == "training"

    # the source tarball in S3 holds the entry script, the dogclf package and the full config
    bucket, key = hps["sagemaker_submit_directory"][5:].split("/", 1)
    body = conn.session.boto_session.client("s3", endpoint_url=conn.endpoint_url).get_object(Bucket=bucket, Key=key)
    body_bytes = body["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body_bytes)) as tar:
        names = set(tar.getnames())
        shipped = yaml.safe_load(tar.extractfile("dogclf-config.yaml").read())
    assert {"train.py", "dogclf/__init__.py", "requirements.txt"} <= names
    with tarfile.open(fileobj=io.BytesIO(body_bytes)) as tar:
        staged_requirements = tar.extractfile("requirements.txt").read().decode().splitlines()
    assert "smdebug==1.0.34" in staged_requirements  # the debugger is on, and the container's hook imports smdebug
    assert shipped["optim"]["grad_clip"] == 5.0 and shipped["data"]["root"] is None
    assert conn.session.sagemaker_client.describe_training_job(TrainingJobName=name)["TrainingJobName"] == name


def test_spot_max_wait_is_sent_and_checked(conn, tmp_path):  # noqa: F811
    seen = capture(conn, "CreateTrainingJob")
    _, est = _estimator(conn, tmp_path, max_wait_s=7200, debugger=False, profiler=False)
    sm.submit(conn, est, DATA)
    assert seen[0]["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    with pytest.raises(ConfigError, match=r"--max-wait \(1800 s\) must be at least --max-run \(3600 s\)"):
        _estimator(conn, tmp_path, max_wait_s=1800)
    with pytest.raises(ConfigError, match="--max-wait applies to spot training only: add --spot"):
        _estimator(conn, tmp_path, spot=False, max_wait_s=7200)


def test_dogclf_rules_are_custom_rules_and_errors_name_the_fix(conn, tmp_path):  # noqa: F811
    source = sm.rules_source()
    available = sm.custom_rule_classes(source)
    assert {"Overfit", "PoorWeightInitialization", "ClassImbalance"} <= set(available)
    seen = capture(conn, "CreateTrainingJob")
    _, est = _estimator(conn, tmp_path, rules_file=None, custom_rules=["Overfit", "ClassImbalance"])
    sm.submit(conn, est, DATA)
    names = {r["RuleConfigurationName"] for r in seen[0]["DebugRuleConfigurations"]}
    assert {"dogclf-Overfit", "dogclf-ClassImbalance"} <= names
    with pytest.raises(ConfigError, match="unknown custom rule.*Nope"):
        _estimator(conn, tmp_path, rules_file=None, custom_rules=["Nope"])
    other = sm.connect(BUCKET, "af-south-1", conn.endpoint_url)  # no published rule-evaluator account
    with pytest.raises(ConfigError, match="af-south-1.*rule_image_uri"):
        _estimator(other, tmp_path)
    with pytest.raises(ConfigError, match="unknown built-in Debugger rule"):
        _estimator(conn, tmp_path, builtin_rules=["no_such_rule"])


def test_tuning_job_request_and_best_params(conn, tmp_path):  # noqa: F811
    seen = capture(conn, "CreateHyperParameterTuningJob")
    _, est = _estimator(conn, tmp_path, mode="hpo")
    tuner = sm.make_tuner(est, default_space(), warm_start_from=["dogclf-tune-parent"])
    tuning = sm.submit(conn, tuner, DATA)
    (req,) = seen
    cfg = req["HyperParameterTuningJobConfig"]
    assert cfg["Strategy"] == "Bayesian"
    assert cfg["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "valid:loss"}
    assert cfg["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 8
    ranges = cfg["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"] == [
        {"Name": "lr", "MinValue": "0.001", "MaxValue": "0.1", "ScalingType": "Logarithmic"}
    ]
    (batch,) = ranges["CategoricalParameterRanges"]  # JSON-encoded like every framework hyperparameter
    assert batch["Name"] == "batch-size" and [json.loads(v) for v in batch["Values"]] == [
        "20",
        "34",
        "40",
        "60",
        "75",
    ]
    definition = req["TrainingJobDefinition"]
    static = _decoded(definition["StaticHyperParameters"])
    assert "lr" not in static and "batch-size" not in static and static["sagemaker_program"] == "hpo.py"
    assert "DebugHookConfig" not in definition and "CheckpointConfig" not in definition
    assert definition["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions()
    assert req["WarmStartConfig"]["ParentHyperParameterTuningJobs"] == [
        {"HyperParameterTuningJobName": "dogclf-tune-parent"}
    ]

    # The emulator names a best training job; create it with tuned values, then follow the pointer.
    client = conn.session.sagemaker_client
    best_name = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning)["BestTrainingJob"][
        "TrainingJobName"
    ]
    trial_cfg = tiny_config(tmp_path, **{"optim.lr": 0.0123, "data.batch_size": 34, "optim.grad_clip": 5.0})
    trial = sm.make_estimator(trial_cfg, conn, sm.EstimatorOptions(role=ROLE, mode="hpo"))
    sm.submit(conn, trial, DATA, job_name=best_name)
    out = tmp_path / "best.yaml"
    best = sm.best_params(conn, tuning, out)
    assert best.tuning_job == tuning and best.training_job == best_name
    assert best.hyperparameters["lr"] == "0.0123" and best.hyperparameters["batch-size"] == "34"
    written = build_config(out)
    assert written.optim.lr == 0.0123 and written.data.batch_size == 34
    assert written.optim.grad_clip == 5.0  # from the config shipped in the job's source tarball
    assert written.data.root is None


def test_best_params_of_a_training_job_and_missing_job(conn, tmp_path):  # noqa: F811
    _, est = _estimator(conn, tmp_path, debugger=False, profiler=False)
    name = sm.submit(conn, est, DATA)
    best = sm.best_params(conn, name)
    assert best.tuning_job is None and best.config.optim.lr == 0.02 and best.config.model.arch == "tiny_cnn"
    with pytest.raises(sm.SageMakerError, match="no-such-job"):
        sm.best_params(conn, "no-such-job")


def _model_tarball(conn, tiny_run):  # noqa: F811
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted((tiny_run / "model").iterdir()):
            tar.add(f, arcname=f.name)
    key = "dogclf/output/job/output/model.tar.gz"
    conn.session.boto_session.client("s3", endpoint_url=conn.endpoint_url).put_object(
        Bucket=BUCKET, Key=key, Body=buf.getvalue()
    )
    return f"s3://{BUCKET}/{key}"


def test_deploy_autoscaling_serverless_and_delete(conn, tiny_run):  # noqa: F811
    model_data = _model_tarball(conn, tiny_run)
    models, configs, endpoints = (capture(conn, op) for op in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"))
    opts = sm.DeployOptions(role=ROLE, endpoint_name="dogs-ep", instance_count=1, autoscale_max_instances=3)
    predictor = sm.deploy(conn, model_data, opts)
    assert predictor.endpoint_name == "dogs-ep"
    container = models[0]["PrimaryContainer"]
    assert container["Image"].endswith("pytorch-inference:2.6.0-cpu-py312")
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["ModelDataUrl"].startswith(f"s3://{BUCKET}/")
    variant = configs[0]["ProductionVariants"][0]
    assert variant["InstanceType"] == "ml.m5.large" and variant["InitialInstanceCount"] == 1
    assert endpoints[0]["EndpointName"] == "dogs-ep"
    scaling = conn.session.boto_session.client("application-autoscaling", endpoint_url=conn.endpoint_url)
    (target,) = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (
        "endpoint/dogs-ep/variant/AllTraffic",
        1,
        3,
    )

    serverless = sm.DeployOptions(role=ROLE, endpoint_name="dogs-sls", serverless_memory_mb=2048)
    sm.deploy(conn, model_data, serverless)
    sls = configs[1]["ProductionVariants"][0]["ServerlessConfig"]
    assert sls == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}

    deleted = sm.delete_endpoint(conn, "dogs-ep")
    assert deleted[:3] == [
        "scaling policy dogs-ep-invocations",
        "scalable target endpoint/dogs-ep/variant/AllTraffic",
        "endpoint dogs-ep",
    ]
    assert any(d.startswith("model ") for d in deleted)
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert sm.delete_endpoint(conn, "dogs-sls")[0] == "endpoint dogs-sls"  # no autoscaling to remove
    with pytest.raises(sm.SageMakerError, match="dogs-ep"):
        sm.delete_endpoint(conn, "dogs-ep")


def test_profiler_report_download(conn, tmp_path):  # noqa: F811
    _, est = _estimator(conn, tmp_path, debugger=False)
    name = sm.submit(conn, est, DATA)
    with pytest.raises(sm.SageMakerError, match="no ProfilerReport output"):
        sm.download_profiler_report(conn, name, tmp_path / "none")
    s3 = conn.session.boto_session.client("s3", endpoint_url=conn.endpoint_url)
    html = b"<html>profiler report</html>"
    prefix = f"dogclf/output/{name}/rule-output/ProfilerReport/profiler-output"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/profiler-report.html", Body=html)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/profiler-reports/StepOutlier.json", Body=b"{}")
    files = sm.download_profiler_report(conn, name, tmp_path / "report")
    assert sorted(f.name for f in files) == ["StepOutlier.json", "profiler-report.html"]
    assert (tmp_path / "report/profiler-output/profiler-report.html").read_bytes() == html


@pytest.mark.slow
def test_cli_train_and_best_params(aws_env, conn, tiny_data, tmp_path):  # noqa: F811
    common = ["--bucket", BUCKET, "--region", REGION, "--endpoint-url", aws_env]
    r = run_cli(
        "sagemaker",
        "train",
        "--data",
        str(tiny_data),
        "--role",
        ROLE,
        "--arch",
        "tiny_cnn",
        "--lr",
        "0.05",
        "--no-debugger",
        "--epochs",
        "3",
        *common,
    )
    assert r.returncode == 0, r.stderr
    assert "uploaded" in r.stdout
    job = r.stdout.strip().splitlines()[-1].split(": ")[1]
    r = run_cli("sagemaker", "best-params", job, "-o", str(tmp_path / "b.yaml"), *common)
    assert r.returncode == 0, r.stderr
    cfg = build_config(tmp_path / "b.yaml")
    assert (cfg.optim.lr, cfg.optim.epochs, cfg.model.arch) == (0.05, 3, "tiny_cnn")
    default = f"sagemaker-{REGION}-123456789012"  # moto's account
    s3 = conn.session.boto_session.client("s3", endpoint_url=aws_env)
    s3.put_object(Bucket=BUCKET, Key="x/y/train/a/1.jpg", Body=b"x")  # --data s3:// must hold objects
    assert default not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    r = run_cli(
        "sagemaker",
        "train",
        "--data",
        f"s3://{BUCKET}/x/y",
        "--role",
        ROLE,
        "--no-debugger",
        *common[2:],
        env={"DOGCLF_S3_BUCKET": ""},
    )
    assert r.returncode == 0, r.stderr
    assert f"S3 bucket: {default} (the SageMaker default" in r.stderr
    assert default in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # created
    desc = conn.session.sagemaker_client.describe_training_job(TrainingJobName=r.stdout.split(": ")[-1].strip())
    assert desc["OutputDataConfig"]["S3OutputPath"].startswith(f"s3://{default}/dogclf/")
    r = run_cli("sagemaker", "train", "--data", f"s3://{BUCKET}/x/y", "--role", ROLE, "--spot", "--max-run", "3600",
                "--max-wait", "600", *common)  # fmt: skip
    assert r.returncode == 2 and "--max-wait (600 s) must be at least --max-run (3600 s)" in r.stderr


def test_cli_deploy_code_in_model_and_delete(aws_env, conn):  # noqa: F811
    common = ["--bucket", BUCKET, "--region", REGION, "--endpoint-url", aws_env]
    absent = f"s3://{BUCKET}/dogclf/output/job-cli/output/model.tar.gz"  # as is: never downloaded
    r = run_cli("sagemaker", "deploy", absent, "--role", ROLE, "--endpoint-name", "dogs-cli", "--code-in-model",
                "--autoscale-max", "2", *common)  # fmt: skip
    assert r.returncode == 0, r.stderr
    client = conn.session.sagemaker_client
    config = client.describe_endpoint_config(EndpointConfigName=client.describe_endpoint(
        EndpointName="dogs-cli")["EndpointConfigName"])  # fmt: skip
    container = client.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])["PrimaryContainer"]
    assert container["ModelDataUrl"] == absent
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    r = run_cli("sagemaker", "delete-endpoint", "dogs-cli", *common)
    assert r.returncode == 0, r.stderr
    assert "deleted scalable target endpoint/dogs-cli/variant/AllTraffic" in r.stdout
    scaling = conn.session.boto_session.client("application-autoscaling", endpoint_url=conn.endpoint_url)
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[
        "endpoint/dogs-cli/variant/AllTraffic"])["ScalableTargets"] == []  # fmt: skip


def test_custom_rule_evaluator_image_per_region(conn):  # noqa: F811
    from sagemaker import image_uris

    assert sm.rule_image("eu-west-1", None) == (
        "606966180310.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-debugger-rule-evaluator:latest"
    )
    assert sm.rule_image("cn-north-1", None).startswith("617202126805.dkr.ecr.cn-north-1.amazonaws.com.cn/")
    assert sm.rule_image("us-east-1", "my/image:1") == "my/image:1"
    # The SDK's own lookup is the built-in rules image, another repository: it cannot replace the table.
    assert "/sagemaker-debugger-rules:" in image_uris.retrieve("debugger", "us-west-2")


def test_wait_outputs_and_rule_reports(conn, tmp_path):  # noqa: F811
    _, est = _estimator(conn, tmp_path)
    name = sm.submit(conn, est, DATA)
    seen = []
    desc = sm.wait_for(conn, "training", name, poll_s=0, progress=seen.append)
    assert desc["TrainingJobStatus"] == "Completed" and seen == ["Completed"]
    outputs = sm.training_outputs(conn, name)
    assert outputs.status == "Completed" and outputs.model_data.endswith(f"/{name}/output/model.tar.gz")
    assert not outputs.model_data_exists and not outputs.ran  # moto ran nothing
    s3 = conn.session.boto_session.client("s3", endpoint_url=conn.endpoint_url)
    bucket, key = outputs.model_data[5:].split("/", 1)
    s3.put_object(Bucket=bucket, Key=key, Body=b"model")
    assert sm.training_outputs(conn, name).ran

    assert sm.wait_for_rules(conn, name, poll_s=0) == {}  # moto reports no rule statuses
    with pytest.raises(sm.SageMakerError, match="no rule output under .*rule-output"):
        sm.download_rule_reports(conn, name, tmp_path / "none")
    prefix = f"dogclf/output/{name}/rule-output"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/ProfilerReport/profiler-output/profiler-report.html", Body=b"<html>")
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/dogclf-Overfit/result.json", Body=b"{}")
    files = sm.download_rule_reports(conn, name, tmp_path / "rules")
    assert sorted(f.relative_to(tmp_path / "rules").as_posix() for f in files) == [
        "ProfilerReport/profiler-output/profiler-report.html",
        "dogclf-Overfit/result.json",
    ]
    with pytest.raises(sm.SageMakerError, match="reading training no-such-job"):
        sm.wait_for(conn, "training", "no-such-job", poll_s=0)
    with pytest.raises(ConfigError, match="kind must be one of"):
        sm.wait_for(conn, "pipeline", name)


def test_rule_statuses_and_poll_timeout():
    desc = {
        "DebugRuleEvaluationStatuses": [
            {"RuleConfigurationName": "Overtraining", "RuleEvaluationStatus": "InProgress"}
        ],
        "ProfilerRuleEvaluationStatuses": [
            {"RuleConfigurationName": "ProfilerReport", "RuleEvaluationStatus": "Error"}
        ],
    }
    assert sm.rule_statuses(desc) == {"Overtraining": "InProgress", "ProfilerReport": "Error"}
    with pytest.raises(sm.SageMakerError, match="gave up waiting for rules after 0 s"):
        _poll(lambda: "InProgress", lambda value: False, "rules", 0, 0)


def test_deploy_model_with_its_code_is_not_repacked(conn):  # noqa: F811
    models = capture(conn, "CreateModel")
    absent = f"s3://{BUCKET}/dogclf/output/job/output/model.tar.gz"  # never downloaded: nothing to repack
    opts = sm.DeployOptions(role=ROLE, endpoint_name="dogs-code", code_in_model=True)
    assert sm.deploy(conn, absent, opts).endpoint_name == "dogs-code"
    container = models[0]["PrimaryContainer"]
    assert container["ModelDataUrl"] == absent
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert sm.wait_for(conn, "endpoint", "dogs-code", poll_s=0)["EndpointStatus"] == "InService"
    sm.delete_endpoint(conn, "dogs-code")


def test_invoke_endpoint_against_the_local_server(tiny_run, tiny_data, aws_env):  # noqa: F811
    from dogclf.serve.local import LocalEndpoint

    image = sorted((tiny_data / "test").rglob("*.jpg"))[0]
    with LocalEndpoint(tiny_run, "--precision", "fp32", "--threads", "1") as endpoint:
        local = sm.connect(BUCKET, REGION, endpoint.url)  # the InvokeEndpoint path the server also answers
        answer = sm.invoke_endpoint(local, "dogclf-local", image, topk=2)
    (top,) = answer["predictions"]
    assert len(top) == 2 and {t["label"] for t in top} <= {"Affenpinscher", "Afghan_hound", "Airedale_terrier"}


def test_cli_report_download_errors_are_one_line_exit_2(aws_env, conn, tmp_path):  # noqa: F811
    _, est = _estimator(conn, tmp_path, debugger=False)
    name = sm.submit(conn, est, DATA)
    s3 = conn.session.boto_session.client("s3", endpoint_url=conn.endpoint_url)
    prefix = f"dogclf/output/{name}/rule-output/ProfilerReport/profiler-output"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/q/a", Body=b"file")
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/q/a/b", Body=b"file below it")
    common = ["--bucket", BUCKET, "--region", REGION, "--endpoint-url", aws_env]
    r = run_cli("sagemaker", "profiler-report", name, "-o", str(tmp_path / "report"), *common)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("dogclf: error: cannot download s3://") and "both a file and a folder" in line
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            ),
            "not valid YAML/JSON",
        ),  # fmt: skip
        ("- just\n- a list\n", "must hold a mapping"),
        (b"\xff\xfe bad", "not UTF-8"),
        (None, "not a readable gzip-compressed tar archive"),
    ],
)
def test_best_params_refuses_a_hostile_shipped_config_in_one_line(conn, payload, expected):  # noqa: F811
    from dogclf.sagemaker.best_job import _shipped_config
    from dogclf.sagemaker.training import CONFIG_FILE

    buf = io.BytesIO()
    if payload is None:
        buf.write(b"PK\x03\x04 not a tarball")
    else:
        data = payload.encode() if isinstance(payload, str) else payload
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            info = tarfile.TarInfo(CONFIG_FILE)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    key = "dogclf/code/hostile/sourcedir.tar.gz"
    conn.s3_client().put_object(Bucket=BUCKET, Key=key, Body=buf.getvalue())
    with pytest.raises(ConfigError, match=expected) as err:
        _shipped_config(conn, {"sagemaker_submit_directory": f"s3://{BUCKET}/{key}"})
    assert "\n" not in str(err.value) and key in str(err.value)
