"""The SageMaker Model Registry: register a model.tar.gz as a model package with its evaluation; approve; resolve.

A package holds the PyTorch inference image, the model data (a dogclf training job's model.tar.gz, which carries
its serving code), the request and response types of dogclf's handlers, the instance types it may serve on, and
ModelMetrics pointing at an evaluation JSON uploaded beside the model data. `deploy` and `batch-predict` take a
package ARN through `package_model_data`, which refuses one that is not Approved unless forced.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from dogclf.errors import ConfigError
from dogclf.sagemaker.endpoints import check_model_archive
from dogclf.sagemaker.s3 import parse_s3_uri
from dogclf.sagemaker.session import FRAMEWORK_VERSION, PY_VERSION, Connection, Options, aws_errors, sdk_env
from dogclf.sagemaker.staging import CODE_DIR, ENTRY_SCRIPTS

Approval = Literal["PendingManualApproval", "Approved", "Rejected"]
EVALUATION_FILE = "evaluation.json"
MAX_EVALUATION_BYTES = 16 * 1024 * 1024
PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[A-Za-z0-9-]+(/\d+)?$")
GROUP_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"


class RegisterOptions(Options):
    """Model package settings: group, evaluation, approval and where the model may be served."""

    group: str = Field(pattern=GROUP_NAME, description="Model package group (created if missing).")
    evaluation: Path = Field(
        description="`dogclf evaluate --json` output, or the run's summary.json (test split, else valid)."
    )
    approval: Approval = Field("PendingManualApproval", description="Approval status.")
    description: str | None = Field(None, max_length=1024, description="Model package description.")
    realtime_instance_types: tuple[str, ...] = ("ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge", "ml.g4dn.xlarge")
    transform_instance_types: tuple[str, ...] = ("ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge")
    framework_version: str = FRAMEWORK_VERSION
    py_version: str = PY_VERSION


def _split_result(doc: Any, path: Path) -> tuple[str, dict[str, Any]]:
    """The evaluated split and its metrics: a summary.json's test (else valid) split, or an evaluate --json doc."""
    if isinstance(doc, dict) and isinstance(doc.get("evaluation"), dict):
        for split in ("test", "valid"):
            if isinstance(doc["evaluation"].get(split), dict):
                return split, doc["evaluation"][split]
        raise ConfigError(f"evaluation {path}: the summary has no test or valid evaluation")
    if isinstance(doc, dict):
        return str(doc.get("split", "evaluated")), doc
    raise ConfigError(f"evaluation {path}: expected a JSON object, got {type(doc).__name__}")


def evaluation_document(path: str | Path) -> dict[str, Any]:
    """The ModelQuality statistics of a package: SageMaker's multiclass metrics plus dogclf's, with sample sizes."""
    from dogclf.fsutil import read_bounded

    path = Path(path)
    try:
        doc = json.loads(read_bounded(path, MAX_EVALUATION_BYTES, "evaluation"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"evaluation {path} is not JSON: {exc}") from None
    split, r = _split_result(doc, path)
    if not isinstance(r.get("top1"), (int, float)) or not isinstance(r.get("n"), int) or r["n"] < 1:
        raise ConfigError(f"evaluation {path}: needs top1 and a sample count n >= 1 (from `dogclf evaluate --json`)")
    after = (r.get("calibration") or {}).get("after") or {}
    metrics = {k: r.get(k) for k in ("top1", "top5", "balanced_accuracy", "macro_f1", "loss")}
    metrics.update({"nll": after.get("nll"), "ece": after.get("ece")})
    standard = {"accuracy": r["top1"], "balanced_accuracy": r.get("balanced_accuracy"), "macro_f1": r.get("macro_f1")}
    return {
        "multiclass_classification_metrics": {k: {"value": v} for k, v in standard.items() if v is not None},
        "dogclf": {"split": split, "sample_size": r["n"], "metrics": metrics},
    }


def _inference_spec(conn: Connection, model_data: str, o: RegisterOptions) -> dict[str, Any]:
    """InferenceSpecification: the PyTorch inference image serving model_data's own code, and dogclf's types."""
    from dogclf.sagemaker.sdk_line import sdk_line
    from dogclf.serve.codecs import SUPPORTED_ACCEPTS, SUPPORTED_CONTENT_TYPES

    image = sdk_line().image_uri(
        conn.region, o.framework_version, o.py_version, o.realtime_instance_types[0], "inference"
    )
    environment = {"SAGEMAKER_PROGRAM": ENTRY_SCRIPTS["inference"], "SAGEMAKER_SUBMIT_DIRECTORY": CODE_DIR}
    return {
        "Containers": [{"Image": image, "ModelDataUrl": model_data, "Environment": environment}],
        "SupportedContentTypes": sorted(SUPPORTED_CONTENT_TYPES),
        "SupportedResponseMIMETypes": list(SUPPORTED_ACCEPTS),
        "SupportedRealtimeInferenceInstanceTypes": list(o.realtime_instance_types),
        "SupportedTransformInstanceTypes": list(o.transform_instance_types),
    }


def _ensure_group(client: Any, group: str) -> None:
    """Create the model package group unless it exists."""
    from botocore.exceptions import ClientError

    try:
        client.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("ValidationException", "ResourceNotFound"):
            raise
        client.create_model_package_group(
            ModelPackageGroupName=group, ModelPackageGroupDescription="dogclf image classifiers"
        )


def register_model(conn: Connection, model_data: str, options: RegisterOptions) -> str:
    """Register model_data (a model.tar.gz with its code) as a package in the group; returns the package ARN."""
    o = options
    bucket, key = parse_s3_uri(model_data)
    document = evaluation_document(o.evaluation)  # checked before anything is sent
    check_model_archive(conn, model_data)
    evaluation_key = f"{key.rsplit('/', 1)[0]}/{EVALUATION_FILE}" if "/" in key else EVALUATION_FILE
    client = conn.session.sagemaker_client
    with sdk_env(conn.endpoint_url), aws_errors(f"registering {model_data} in model package group {o.group}"):
        body = json.dumps(document, indent=2).encode()
        conn.s3_client().put_object(Bucket=bucket, Key=evaluation_key, Body=body, ContentType="application/json")
        _ensure_group(client, o.group)
        request = {
            "ModelPackageGroupName": o.group,
            "InferenceSpecification": _inference_spec(conn, model_data, o),
            "ModelApprovalStatus": o.approval,
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{bucket}/{evaluation_key}"}
                }
            },
        }
        if o.description:
            request["ModelPackageDescription"] = o.description
        return client.create_model_package(**request)["ModelPackageArn"]


def _check_arn(arn: str) -> None:
    """Refuse anything but a versioned model package ARN, naming it."""
    if not PACKAGE_ARN.match(arn):
        raise ConfigError(f"{arn!r} is not a model package ARN (arn:aws:sagemaker:REGION:ACCOUNT:model-package/...)")


def set_approval(conn: Connection, arn: str, status: Approval = "Approved", description: str | None = None) -> None:
    """Update a model package's approval status (with an optional description of the decision)."""
    _check_arn(arn)
    extra = {"ApprovalDescription": description} if description else {}
    with aws_errors(f"updating model package {arn}"):
        conn.session.sagemaker_client.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status, **extra)


def is_package_arn(value: str) -> bool:
    """True for a model package ARN (what deploy and batch-predict take instead of an s3:// model)."""
    return value.startswith("arn:") and ":model-package/" in value


def package_model_data(conn: Connection, arn: str, force: bool = False) -> str:
    """The model data of an Approved package; a package in another status is refused unless force."""
    _check_arn(arn)
    with aws_errors(f"reading model package {arn}"):
        package = conn.session.sagemaker_client.describe_model_package(ModelPackageName=arn)
    status = package.get("ModelApprovalStatus", "unknown")
    if status != "Approved" and not force:
        raise ConfigError(f"model package {arn} is {status}, not Approved: approve it first, or pass --force")
    containers = package.get("InferenceSpecification", {}).get("Containers") or []
    if len(containers) != 1 or not containers[0].get("ModelDataUrl"):
        raise ConfigError(f"model package {arn} has no single container with model data; dogclf serves one")
    return containers[0]["ModelDataUrl"]
