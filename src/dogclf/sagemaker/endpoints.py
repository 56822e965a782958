"""Endpoints: deploy a model.tar.gz (instances with optional autoscaling, or serverless), invoke, delete."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tarfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field

from dogclf.errors import ConfigError
from dogclf.sagemaker.names import unique_name
from dogclf.sagemaker.s3 import parse_s3_uri
from dogclf.sagemaker.session import (
    FRAMEWORK_VERSION,
    PY_VERSION,
    Connection,
    Options,
    SageMakerError,
    aws_errors,
    sdk_env,
)
from dogclf.sagemaker.shipping import serving_env, ship_model
from dogclf.sagemaker.specs import EndpointSpec, ServingSpec
from dogclf.sagemaker.staging import CODE_DIR, ENTRY_SCRIPTS, stage_source_dir

log = logging.getLogger("dogclf")


class ServingOptions(Options):
    """What every served dogclf model shares (endpoints and Batch Transform): role, container and code."""

    role: str = Field(description="IAM role ARN the model runs as.")
    framework_version: str = FRAMEWORK_VERSION
    py_version: str = PY_VERSION
    entry_dir: Path | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    code_in_model: bool = Field(
        False,
        description="Serve MODEL_DATA as is: it already holds code/ (a dogclf training job's model does); "
        "default: the SDK repacks it with dogclf's serving code.",
    )
    export: str | None = Field(
        None,
        description="Serve this export (DOGCLF_BACKEND): a local MODEL is packaged with it (as `dogclf package "
        "--export`) and uploaded; an s3:// MODEL must already hold it.",
    )
    wheel: Path | None = Field(
        None, description="With a local MODEL: bundle this dogclf wheel instead of installing dogclf==VERSION."
    )
    image_uri: str | None = Field(
        None,
        description="Serve in this image (built from `dogclf sagemaker dockerfile`) instead of SageMaker's "
        "PyTorch container.",
    )


T = TypeVar("T", bound=ServingOptions)


class DeployOptions(ServingOptions):
    """Endpoint settings: instance-backed (with optional autoscaling) or serverless."""

    endpoint_name: str | None = Field(None, description="The endpoint's name (default: the SDK's, unique).")
    instance_type: str = Field("ml.m5.large", description="Endpoint instance.")
    instance_count: int = Field(1, ge=1, description="Instances.")
    serverless_memory_mb: int | None = Field(
        None, ge=1024, le=6144, multiple_of=1024, description="Deploy serverless with this memory: 1024-6144, by 1024."
    )
    serverless_max_concurrency: int = Field(5, ge=1, description="Serverless max concurrency.")
    autoscale_max_instances: int | None = Field(
        None, ge=1, description="Autoscale instances up to N (target tracking on invocations per instance)."
    )
    autoscale_target_invocations: float = Field(70.0, gt=0)


def shipped(conn: Connection, model_data: str, options: T) -> tuple[str, T]:
    """(S3 model data, options): a local model is packaged and uploaded, then served as is (its code inside)."""
    uri = ship_model(conn, model_data, options.export, options.wheel)
    return (model_data, options) if uri is None else (uri, options.model_copy(update={"code_in_model": True}))


def _client_codecs() -> tuple[Any, Any]:
    """The predictor's serializer (image bytes) and deserializer (JSON), from dogclf.sagemaker.serializers."""
    from dogclf.sagemaker import serializers

    return serializers.ImageSerializer(), serializers.TopKDeserializer()


MODEL_ARCHIVE = "a gzip-compressed tar archive (the model.tar.gz of a dogclf training job or `dogclf package`)"


def check_model_archive(conn: Connection, model_data: str) -> None:
    """Refuse model_data unless its first 64 KiB (one ranged GET) start a gzip-compressed tar archive.

    Called before the SDK downloads model_data to repack it; with code_in_model nothing reads it on this side
    (the caller may lack s3:GetObject on it; the endpoint's role reads it), so nothing is checked.
    """
    bucket, key = parse_s3_uri(model_data)
    with aws_errors(f"reading the model data {model_data}"):
        s3 = conn.session.boto_session.client("s3", endpoint_url=conn.endpoint_url)
        head = s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-65535")["Body"].read()
    if head[:2] != b"\x1f\x8b":
        raise SageMakerError(
            f"model data {model_data} is not gzip-compressed (it starts {head[:8]!r}); expected {MODEL_ARCHIVE}"
        )
    try:
        block = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, tarfile.BLOCKSIZE)
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except (zlib.error, tarfile.TarError) as exc:
        raise SageMakerError(
            f"model data {model_data} is gzip but not a tar archive ({exc}); expected {MODEL_ARCHIVE}"
        ) from None


@contextlib.contextmanager
def serving_spec(
    conn: Connection, model_data: str, o: ServingOptions, name: str, env: Mapping[str, str] | None = None
) -> Iterator[ServingSpec]:
    """The SageMaker Model of dogclf's serving handlers; its staged code folder is removed when the block ends.

    With the code inside model_data (code_in_model) or the user's image, nothing is staged: the SDK line neither
    downloads nor repacks, and dogclf's entry script is named in the environment.
    """
    staged = not (o.code_in_model or o.image_uri)
    source_dir = stage_source_dir([ENTRY_SCRIPTS["inference"]], None, o.entry_dir) if staged else None
    program = {"SAGEMAKER_PROGRAM": ENTRY_SCRIPTS["inference"], "SAGEMAKER_SUBMIT_DIRECTORY": CODE_DIR}
    try:
        yield ServingSpec(
            name=name,
            role=o.role,
            model_data=model_data,
            framework_version=o.framework_version,
            py_version=o.py_version,
            code_location=conn.s3_uri("code"),
            entry_script=ENTRY_SCRIPTS["inference"],
            source_dir=source_dir,
            image=o.image_uri,
            environment={**({} if staged or o.image_uri else program), **(env or {})},
            tags=dict(o.tags),
        )
    finally:
        if source_dir is not None:
            shutil.rmtree(source_dir, ignore_errors=True)


def deploy(conn: Connection, model_data: str, options: DeployOptions) -> Any:
    """Create model, endpoint config and endpoint (no wait) for a model.tar.gz in S3; returns a predictor."""
    from dogclf.sagemaker.sdk_line import require

    line = require("deploy")
    o = options
    if o.serverless_memory_mb is not None and o.autoscale_max_instances:
        raise ConfigError("autoscaling applies to instance endpoints; serverless endpoints scale by themselves")
    model_data, o = shipped(conn, model_data, o)
    if not o.code_in_model:
        check_model_archive(conn, model_data)
    endpoint = EndpointSpec(o.instance_type, o.instance_count, o.serverless_memory_mb, o.serverless_max_concurrency)
    with sdk_env(conn.endpoint_url), aws_errors("deploying the endpoint"):
        name = o.endpoint_name or unique_name("dogclf")
        with serving_spec(conn, model_data, o, name, serving_env(o.export)) as spec:
            line.deploy(spec, endpoint, conn.session)
        if o.autoscale_max_instances:
            _autoscale(conn, name, o.instance_count, o.autoscale_max_instances, o.autoscale_target_invocations)
        return line.predictor(name, conn.session, *_client_codecs())


def _autoscale(conn: Connection, endpoint: str, low: int, high: int, target: float) -> None:
    """Target tracking on SageMakerVariantInvocationsPerInstance for the endpoint's AllTraffic variant."""
    if high < low:
        raise ConfigError(f"autoscale max instances ({high}) is below the instance count ({low})")
    client = conn.session.boto_session.client("application-autoscaling", endpoint_url=conn.endpoint_url)
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    dimension = "sagemaker:variant:DesiredInstanceCount"
    client.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=dimension,
        MinCapacity=low,
        MaxCapacity=high,
    )
    client.put_scaling_policy(
        PolicyName=f"{endpoint}-invocations",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=dimension,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": target,
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 60,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
    )


def _deregister_autoscaling(conn: Connection, endpoint: str, variants: Sequence[str]) -> list[str]:
    """Delete the scaling policies and deregister the scalable targets of the endpoint's variants.

    Application Auto Scaling keeps them after the endpoint is gone; `deploy --autoscale-max` registers them.
    """
    client = conn.session.boto_session.client("application-autoscaling", endpoint_url=conn.endpoint_url)
    resources = [f"endpoint/{endpoint}/variant/{v}" for v in variants]
    if not resources:
        return []
    common = {"ServiceNamespace": "sagemaker"}
    try:
        targets = client.describe_scalable_targets(**common, ResourceIds=resources)["ScalableTargets"]
    except client.exceptions.ClientError as exc:
        if "AccessDenied" not in exc.response.get("Error", {}).get("Code", ""):
            raise
        # Without autoscaling permissions the endpoint still goes; say what may be left behind.
        log.warning("cannot check autoscaling of %s (%s); if it had any, deregister its scalable target", endpoint, exc)
        return []
    removed = []
    for target in targets:
        which = {**common, "ResourceId": target["ResourceId"], "ScalableDimension": target["ScalableDimension"]}
        policies = client.describe_scaling_policies(**common, ResourceId=target["ResourceId"])["ScalingPolicies"]
        for policy in policies:
            if policy["ScalableDimension"] == target["ScalableDimension"]:
                client.delete_scaling_policy(PolicyName=policy["PolicyName"], **which)
                removed.append(f"scaling policy {policy['PolicyName']}")
        client.deregister_scalable_target(**which)
        removed.append(f"scalable target {target['ResourceId']}")
    return removed


def delete_endpoint(conn: Connection, endpoint_name: str, delete_model: bool = True) -> list[str]:
    """Delete an endpoint's autoscaling, the endpoint, its endpoint config and (by default) its models.

    Returns what was deleted, in order.
    """
    client = conn.session.sagemaker_client
    deleted = []
    with sdk_env(conn.endpoint_url), aws_errors(f"deleting endpoint {endpoint_name}"):
        config_name = client.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
        variants = client.describe_endpoint_config(EndpointConfigName=config_name).get("ProductionVariants", [])
        names = [v["VariantName"] for v in variants if v.get("VariantName")]
        deleted += _deregister_autoscaling(conn, endpoint_name, names)  # before the endpoint, as AWS advises
        client.delete_endpoint(EndpointName=endpoint_name)
        deleted.append(f"endpoint {endpoint_name}")
        client.delete_endpoint_config(EndpointConfigName=config_name)
        deleted.append(f"endpoint config {config_name}")
        for model in sorted({v["ModelName"] for v in variants if v.get("ModelName")}) if delete_model else []:
            client.delete_model(ModelName=model)
            deleted.append(f"model {model}")
    return deleted


def invoke_endpoint(conn: Connection, endpoint_name: str, image: bytes | str | Path, topk: int = 3) -> dict[str, Any]:
    """Send one image to a deployed dogclf endpoint (InvokeEndpoint); returns its JSON answer (top-k breeds)."""
    serializer, deserializer = _client_codecs()
    client = conn.session.sagemaker_runtime_client
    with sdk_env(conn.endpoint_url), aws_errors(f"invoking endpoint {endpoint_name}"):
        answer = client.invoke_endpoint(
            EndpointName=endpoint_name,
            Body=serializer.serialize(image),
            ContentType=serializer.CONTENT_TYPE,
            Accept=deserializer.ACCEPT[0],
            CustomAttributes=f"topk={topk}",
        )
    content_type = answer.get("ContentType", "")
    try:
        return deserializer.deserialize(answer["Body"], content_type)
    except ValueError:
        raise SageMakerError(
            f"endpoint {endpoint_name} answered {content_type!r}, not dogclf's JSON; is a dogclf model deployed there?"
        ) from None
