"""The Model Registry against moto: register (group, package, evaluation), approve, serve from a package."""

from __future__ import annotations

import json

import pytest
from sm_moto import BUCKET, REGION, ROLE, aws_env, capture, conn, moto_url, put_model_tarball, recorded, start_recording  # noqa: F401

import dogclf.sagemaker as sm
from conftest import run_cli
from dogclf.errors import ConfigError
from dogclf.serve.codecs import SUPPORTED_ACCEPTS, SUPPORTED_CONTENT_TYPES

RESULT = {"loss": 0.9, "top1": 0.81, "top5": 0.97, "balanced_accuracy": 0.79, "macro_f1": 0.78, "n": 836,
          "calibration": {"before": {"nll": 0.95, "ece": 0.08}, "after": {"nll": 0.7, "ece": 0.02}}}  # fmt: skip


def _json_file(path, doc):
    path.write_text(json.dumps(doc))
    return path


def test_register_creates_the_group_once_and_a_package_with_its_evaluation(conn, tmp_path):  # noqa: F811
    groups, packages = capture(conn, "CreateModelPackageGroup"), capture(conn, "CreateModelPackage")
    model = put_model_tarball(conn, "jobs/j1/output/model.tar.gz")
    summary = _json_file(tmp_path / "summary.json", {"evaluation": {"valid": {**RESULT, "n": 835}, "test": RESULT}})
    options = sm.RegisterOptions(group="dogs-api", evaluation=summary)
    arn = sm.register_model(conn, model, options)
    second = sm.register_model(conn, model, options)
    assert [g["ModelPackageGroupName"] for g in groups] == ["dogs-api"]  # created once, reused
    assert arn != second and len(packages) == 2
    req = packages[0]
    assert req["ModelApprovalStatus"] == "PendingManualApproval"
    spec = req["InferenceSpecification"]
    (container,) = spec["Containers"]
    assert container["ModelDataUrl"] == model
    assert f"/pytorch-inference:{sm.FRAMEWORK_VERSION}-cpu-" in container["Image"] and REGION in container["Image"]
    env = container["Environment"]
    assert env == {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
    assert set(spec["SupportedContentTypes"]) == set(SUPPORTED_CONTENT_TYPES) == {
        "application/x-image", "image/jpeg", "image/png", "application/json", "application/x-npy"}  # fmt: skip
    assert spec["SupportedResponseMIMETypes"] == list(SUPPORTED_ACCEPTS)
    assert "ml.m5.large" in spec["SupportedRealtimeInferenceInstanceTypes"]
    assert "ml.m5.large" in spec["SupportedTransformInstanceTypes"]
    stats = req["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert stats == {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/jobs/j1/output/evaluation.json"}
    body = conn.s3_client().get_object(Bucket=BUCKET, Key="jobs/j1/output/evaluation.json")["Body"].read()
    evaluation = json.loads(body)
    assert evaluation["dogclf"]["split"] == "test" and evaluation["dogclf"]["sample_size"] == 836
    assert evaluation["dogclf"]["metrics"]["ece"] == 0.02 and evaluation["dogclf"]["metrics"]["nll"] == 0.7
    assert evaluation["multiclass_classification_metrics"]["accuracy"] == {"value": 0.81}
    described = conn.session.sagemaker_client.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "PendingManualApproval"


def test_bad_evaluation_or_arn_is_refused_before_anything_is_sent(conn, tmp_path):  # noqa: F811
    packages = capture(conn, "CreateModelPackage")
    model = put_model_tarball(conn, "jobs/j2/model.tar.gz")
    no_count = _json_file(tmp_path / "e.json", {k: v for k, v in RESULT.items() if k != "n"})
    with pytest.raises(ConfigError, match=r"evaluation .*e\.json: needs top1 and a sample count n"):
        sm.register_model(conn, model, sm.RegisterOptions(group="dogs-bad", evaluation=no_count))
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"x\.json is not JSON"):
        sm.register_model(conn, model, sm.RegisterOptions(group="dogs-bad", evaluation=tmp_path / "x.json"))
    with pytest.raises(ConfigError, match="group"):
        sm.RegisterOptions(group="no spaces allowed", evaluation=no_count)
    assert packages == []
    with pytest.raises(ConfigError, match="is not a model package ARN"):
        sm.set_approval(conn, "arn:aws:sagemaker:us-west-2:123456789012:endpoint/x")


@pytest.mark.slow
def test_cli_register_approve_and_serve_only_an_approved_package(aws_env, conn, tmp_path):  # noqa: F811
    common = ["--bucket", BUCKET, "--region", REGION, "--endpoint-url", aws_env]
    model = put_model_tarball(conn, "jobs/j3/output/model.tar.gz")
    evaluation = _json_file(tmp_path / "eval.json", RESULT)
    r = run_cli("sagemaker", "register", model, "--group", "dogs-cli", "--evaluation", str(evaluation), *common)
    assert r.returncode == 0, r.stderr
    arn = r.stdout.split("model package: ")[1].split()[0]
    assert r.stdout.strip().endswith("(PendingManualApproval)")

    start_recording(aws_env)
    deploy = ["sagemaker", "deploy", arn, "--role", ROLE, "--endpoint-name", "dogs-pkg", "--code-in-model", *common]
    batch = ["sagemaker", "batch-predict", arn, "--input", f"s3://{BUCKET}/images/", "--output", f"s3://{BUCKET}/out/",
             "--role", ROLE, "--code-in-model", "--job-name", "dogs-pkg-batch", *common]  # fmt: skip
    for args in (deploy, batch):
        r = run_cli(*args)
        assert r.returncode == 2 and "is PendingManualApproval, not Approved" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert recorded(aws_env, "CreateModel") == []

    r = run_cli("sagemaker", "approve", arn, "--description", "top-1 0.81 on 836 test images", *common)
    assert r.returncode == 0, r.stderr
    (update,) = recorded(aws_env, "UpdateModelPackage")
    assert update == {"ModelPackageArn": arn, "ModelApprovalStatus": "Approved",
                      "ApprovalDescription": "top-1 0.81 on 836 test images"}  # fmt: skip
    for args in (deploy, batch):
        r = run_cli(*args)
        assert r.returncode == 0, r.stderr
    models = recorded(aws_env, "CreateModel")
    assert [m["PrimaryContainer"]["ModelDataUrl"] for m in models] == [model, model]

    r = run_cli("sagemaker", "approve", arn, "--reject", *common)
    assert r.returncode == 0 and "(Rejected)" in r.stdout
    forced = [*deploy[:6], "dogs-forced", *deploy[7:]]
    r = run_cli(*forced)
    assert r.returncode == 2 and "is Rejected, not Approved" in r.stderr
    r = run_cli(*forced, "--force")
    assert r.returncode == 0, r.stderr
