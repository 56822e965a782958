"""The SageMaker session of dogclf's calls: region, bucket (default `sagemaker-{region}-{account}`), errors.

The SDK (v2) and boto3 load inside functions only. Inside our calls the SDK's telemetry is opted out (through
the session's SDK config) and its v2 deprecation banner is silenced; the user's own SDK use is left alone. A
`Connection` carries the session, the bucket and an optional endpoint URL (an AWS emulator), which is applied
to every boto3 client the SDK creates during our calls.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from dogclf.errors import ConfigError, DogclfError

FRAMEWORK_VERSION = "2.6.0"  # newest PyTorch DLC with both training and inference images in SDK 2.257
PY_VERSION = "py312"

log = logging.getLogger("dogclf")


class SageMakerError(DogclfError):
    """A SageMaker or S3 request failed, or a job is not in the state asked for."""


class Options(BaseModel):
    """Typed job settings, validated once: a bad value is a ConfigError naming the class and the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            from dogclf.config import format_validation_error

            raise ConfigError(format_validation_error(exc, type(self).__name__)) from None


@contextlib.contextmanager
def sdk_env(endpoint_url: str | None = None) -> Iterator[None]:
    """Silence the SDK's v2 banner and point new boto3 clients at `endpoint_url`, for our calls only."""
    changes = {"SAGEMAKER_SUPPRESS_V2_WARNING": "1"}
    if endpoint_url:
        changes["AWS_ENDPOINT_URL"] = endpoint_url
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn boto3 / botocore / SDK request failures into one-line SageMakerError messages naming the action."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise SageMakerError(f"{action} failed: {err.get('Code', 'Error')}: {err.get('Message', exc)}") from None
    except (BotoCoreError, Boto3Error) as exc:
        raise SageMakerError(f"{action} failed: {' '.join(str(exc).split())}") from None


@dataclass
class Connection:
    """A SageMaker session plus where dogclf keeps things in S3."""

    session: Any
    bucket: str
    prefix: str = "dogclf"
    endpoint_url: str | None = None

    def s3_uri(self, *parts: str) -> str:
        """s3://bucket/prefix/parts..."""
        return "s3://" + "/".join([self.bucket, self.prefix, *[p.strip("/") for p in parts if p]])

    @property
    def region(self) -> str:
        """The AWS region the session talks to."""
        return self.session.boto_region_name


def _sdk_config() -> dict[str, Any]:
    """The user's SDK config with telemetry opted out."""
    from sagemaker.config import load_sagemaker_config

    sdk_config = load_sagemaker_config()
    sdk_config.setdefault("SchemaVersion", "1.0")
    modules = sdk_config.setdefault("SageMaker", {}).setdefault("PythonSDK", {}).setdefault("Modules", {})
    modules["TelemetryOptOut"] = True
    return sdk_config


def default_bucket_name(boto_session: Any, endpoint_url: str | None = None) -> str:
    """`sagemaker-{region}-{account}`, the SDK's default bucket name, with the account read through endpoint_url."""
    with aws_errors("reading the AWS account (sts get-caller-identity) for the default bucket"):
        sts = boto_session.client("sts", endpoint_url=endpoint_url)
        account = sts.get_caller_identity()["Account"]
    return f"sagemaker-{boto_session.region_name}-{account}"


def connect(
    bucket: str | None = None, region: str | None = None, endpoint_url: str | None = None, prefix: str = "dogclf"
) -> Connection:
    """A session with telemetry opted out; without `bucket`, the SDK's default bucket (created when missing)."""
    import boto3

    with sdk_env(endpoint_url):
        import sagemaker

        boto_session = boto3.session.Session(region_name=region)
        if boto_session.region_name is None:
            raise ConfigError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
        # The SDK reads the account from STS's public endpoint; naming the bucket here honours endpoint_url.
        name = bucket or default_bucket_name(boto_session, endpoint_url)
        session = sagemaker.Session(
            boto_session=boto_session,
            sagemaker_client=boto_session.client("sagemaker", endpoint_url=endpoint_url),
            sagemaker_runtime_client=boto_session.client("sagemaker-runtime", endpoint_url=endpoint_url),
            default_bucket=name,
            sagemaker_config=_sdk_config(),
        )
        if not bucket:
            with aws_errors(f"creating the default bucket {name}"):
                session.default_bucket()  # created when missing
            log.info("S3 bucket: %s (the SageMaker default; pass --bucket to choose another)", name)
    return Connection(session, name, prefix.strip("/"), endpoint_url)
