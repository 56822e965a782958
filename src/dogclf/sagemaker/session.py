"""The SageMaker session of dogclf's calls: region, bucket (default `sagemaker-{region}-{account}`), errors.

The default bucket is dogclf's own: every S3 request to it (dogclf's and the SDK's, through the session's boto3
clients) carries `ExpectedBucketOwner` (the caller's account), a bucket of that name owned by another account is
refused, and a missing one is created with public access blocked and default encryption. The SDK and boto3
load inside functions only; the SDK line installed (2.x or 3.x, see sdk_line) makes the session. Inside our calls
the SDK's telemetry is opted out (through the session's SDK config) and its v2 deprecation banner is silenced;
the user's own SDK use is left alone. A `Connection` carries the session, the bucket and an optional endpoint
URL (an AWS emulator), which is applied to every boto3 client the SDK creates during our calls.
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
    expected_owner: str | None = None  # the account sent as ExpectedBucketOwner (default bucket only)

    def s3_uri(self, *parts: str) -> str:
        """s3://bucket/prefix/parts..."""
        return "s3://" + "/".join([self.bucket, self.prefix, *[p.strip("/") for p in parts if p]])

    @property
    def region(self) -> str:
        """The AWS region the session talks to."""
        return self.session.boto_region_name

    def s3_client(self) -> Any:
        """An S3 client of the session (so requests to the default bucket carry the expected owner)."""
        return make_client(self.endpoint_url, self.region, session=self.session.boto_session)


def make_client(endpoint_url: str | None = None, region: str | None = None, session: Any = None) -> Any:
    """A boto3 S3 client (adaptive retries) for AWS or any S3-compatible endpoint; of `session` when given."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 8, "mode": "adaptive"}, max_pool_connections=32)
    session = session or boto3.session.Session(region_name=region)
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
DEFAULT_ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def account_id(boto_session: Any, endpoint_url: str | None = None) -> str:
    """The caller's AWS account (sts get-caller-identity, through endpoint_url)."""
    with aws_errors("reading the AWS account (sts get-caller-identity) for the default bucket"):
        sts = boto_session.client("sts", endpoint_url=endpoint_url)
        return str(sts.get_caller_identity()["Account"])


def default_bucket_name(boto_session: Any, endpoint_url: str | None = None) -> str:
    """`sagemaker-{region}-{account}`, the SDK's default bucket name, with the account read through endpoint_url."""
    return f"sagemaker-{boto_session.region_name}-{account_id(boto_session, endpoint_url)}"


def expect_owner(boto_session: Any, bucket: str, account: str) -> None:
    """Send ExpectedBucketOwner=account on every S3 request to `bucket` of clients the session creates from now on.

    S3 answers 403 when the bucket belongs to another account, so nothing is read from or written to it.
    """

    def add_expected_owner(params: dict[str, Any], model: Any, **_: Any) -> None:
        if params.get("Bucket") == bucket and "ExpectedBucketOwner" in model.input_shape.members:
            params.setdefault("ExpectedBucketOwner", account)

    boto_session.events.register("before-parameter-build.s3", add_expected_owner, unique_id=f"dogclf-owner-{bucket}")


def _head_status(s3: Any, bucket: str, account: str) -> int:
    """HTTP status of HeadBucket with ExpectedBucketOwner: 200 (the account's), 403 (another's) or 404 (missing)."""
    from botocore.exceptions import ClientError

    with aws_errors(f"checking the default bucket {bucket}"):
        try:
            s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (403, 404):
                return int(status)
            raise
    return 200


def ensure_own_bucket(s3: Any, bucket: str, account: str) -> bool:
    """Check that `bucket` is the account's (ExpectedBucketOwner), or create it private and encrypted; True if new."""
    status = _head_status(s3, bucket, account)
    if status == 403:
        raise SageMakerError(
            f"the default bucket {bucket} is not owned by account {account} (S3 denied it with ExpectedBucketOwner): "
            "refusing to use it; pass --bucket BUCKET (or set DOGCLF_S3_BUCKET) with a bucket of yours"
        )
    if status == 200:
        return False
    region = s3.meta.region_name
    with aws_errors(f"creating the default bucket {bucket}"):
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **where)
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=DEFAULT_ENCRYPTION)
    return True


def connect(
    bucket: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    prefix: str = "dogclf",
    needs_bucket: bool = True,
) -> Connection:
    """A session with telemetry opted out; without `bucket`, the default bucket (checked as the account's, or created).

    The default bucket is named here (the SDK reads the account from STS's public endpoint; this honours
    endpoint_url), and the session's S3 clients send its expected owner on every request. With
    `needs_bucket=False` (calls that touch no S3, e.g. deleting an endpoint) no bucket is looked up or created.
    """
    import boto3

    from dogclf.sagemaker.sdk_line import sdk_line

    with sdk_env(endpoint_url):
        boto_session = boto3.session.Session(region_name=region)
        if boto_session.region_name is None:
            raise ConfigError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
        owner = None
        if not bucket and needs_bucket:
            owner = account_id(boto_session, endpoint_url)
            bucket = f"sagemaker-{boto_session.region_name}-{owner}"
            expect_owner(boto_session, bucket, owner)  # before any client exists: every client inherits it
            if ensure_own_bucket(boto_session.client("s3", endpoint_url=endpoint_url), bucket, owner):
                log.info("S3 bucket: %s created (public access blocked, encrypted by default)", bucket)
            log.info("S3 bucket: %s (the SageMaker default; pass --bucket to choose another)", bucket)
        session = sdk_line().session(boto_session, endpoint_url, bucket)
    return Connection(session, bucket or "", prefix.strip("/"), endpoint_url, owner)
