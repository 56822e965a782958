"""Batch Transform: the deploy model (same image, handlers, code) run over an S3 prefix of images; its results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from dogclf.prediction_format import MAX_TOPK
from dogclf.prediction_table import PredictionRow
from dogclf.sagemaker.batch_output import OUT_SUFFIX, local_outputs, read_out_object, result_rows
from dogclf.sagemaker.endpoints import ServingOptions, check_model_archive, serving_spec, shipped
from dogclf.sagemaker.names import job_name
from dogclf.sagemaker.s3 import list_keys, make_client, parse_s3_uri
from dogclf.sagemaker.session import Connection, SageMakerError, aws_errors, sdk_env
from dogclf.sagemaker.shipping import serving_env
from dogclf.sagemaker.specs import TransformSpec
from dogclf.sagemaker.waiting import wait_for

IMAGE_CONTENT_TYPE = "application/x-image"
ACCEPT = "application/json"


class TransformOptions(ServingOptions):
    """Batch Transform settings: instances, top-k per image (DOGCLF_TOPK of the handlers) and job name."""

    instance_type: str = Field("ml.m5.large", description="Transform instance.")
    instance_count: int = Field(1, ge=1, description="Instances.")
    topk: int = Field(5, ge=1, le=MAX_TOPK, description="Classes per image.")
    job_name: str | None = Field(
        None, description="The job's name (default: dogclf-batch-YYMMDD-HHMMSS-<random>, unique)."
    )
    max_concurrent_transforms: int | None = Field(None, ge=1)


def batch_transform(
    conn: Connection, model_data: str, input_uri: str, output_uri: str, options: TransformOptions, wait: bool = False
) -> str:
    """Start a transform job (one request per image under input_uri, answers to output_uri); returns its name.

    With wait, poll until it ends; a job that does not complete is a SageMakerError with its failure reason.
    """
    from dogclf.sagemaker.sdk_line import require

    line = require("batch_transform")
    o = options
    for uri in (input_uri, output_uri):
        parse_s3_uri(uri)
    name = job_name(o.job_name, "dogclf-batch", "transform")
    model_data, o = shipped(conn, model_data, o)
    if not o.code_in_model:
        check_model_archive(conn, model_data)
    job = TransformSpec(
        name, o.instance_type, o.instance_count, input_uri, output_uri, IMAGE_CONTENT_TYPE, ACCEPT,
        o.max_concurrent_transforms,
    )  # fmt: skip
    env = {**serving_env(o.export), "DOGCLF_TOPK": str(o.topk)}
    with sdk_env(conn.endpoint_url), aws_errors("starting the batch transform job"):
        with serving_spec(conn, model_data, o, name, env) as spec:
            line.transform(spec, job, conn.session)
    if wait:
        job = wait_for(conn, "transform", name, progress=lambda status: print(f"transform job {name}: {status}"))
        if job["TransformJobStatus"] != "Completed":
            reason = job.get("FailureReason", "no reason given")
            raise SageMakerError(f"transform job {name} ended {job['TransformJobStatus']}: {reason}")
    return name


def batch_results(output: str, input_prefix: str | None = None, client: Any = None) -> list[PredictionRow]:
    """CSV rows of a transform job's output (s3:// prefix or a downloaded folder), one per image.

    With input_prefix (the job's input), paths are its S3 URIs and images without output are error rows.
    """
    if client is None and (input_prefix or output.startswith("s3://")):
        client = make_client()
    inputs: list[str] = []
    input_base = ""
    if input_prefix:
        input_base = input_prefix.rstrip("/") + "/"
        inputs = list_keys(input_prefix, client)
    if not output.startswith("s3://"):
        folder = Path(output)
        return result_rows(local_outputs(folder), f"{folder}/", input_base, inputs)
    bucket, prefix = parse_s3_uri(output)
    outputs = {}
    with aws_errors(f"downloading {output}"):
        for rel in list_keys(output, client):
            if rel.endswith(OUT_SUFFIX):
                key = f"{prefix}/{rel}" if prefix else rel
                outputs[rel] = read_out_object(client, bucket, key, output.rstrip("/") + "/" + rel)
    return result_rows(outputs, output.rstrip("/") + "/", input_base, inputs)
