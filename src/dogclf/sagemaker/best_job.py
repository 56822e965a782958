"""The best (or a named) training job of a tuning job, turned back into the dogclf config that reproduces it."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dogclf.config import MAX_CONFIG_BYTES, RunConfig, build_config, config_to_yaml, parse_config_bytes
from dogclf.errors import ConfigError
from dogclf.fsutil import atomic_write_text
from dogclf.hyperparameters import config_field, decode_value
from dogclf.sagemaker.s3 import parse_s3_uri
from dogclf.sagemaker.session import Connection, SageMakerError, aws_errors, sdk_env
from dogclf.sagemaker.training import CONFIG_FILE


@dataclass
class BestParams:
    """The best (or named) training job and the dogclf config that reproduces it."""

    training_job: str
    tuning_job: str | None
    objective: dict[str, Any] | None
    hyperparameters: dict[str, str]
    config: RunConfig


def _shipped_config(conn: Connection, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """The full config shipped in the job's source tarball (dogclf-config.yaml), {} when absent."""
    uri = hyperparameters.get("sagemaker_submit_directory")
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return {}
    bucket, key = parse_s3_uri(uri)
    body = conn.s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            member = next((m for m in tar.getmembers() if m.name.lstrip("./") == CONFIG_FILE and m.isfile()), None)
            if member is None:
                return {}
            if member.size > MAX_CONFIG_BYTES:
                raise ConfigError(
                    f"{uri}: {CONFIG_FILE} is {member.size} bytes, over the {MAX_CONFIG_BYTES}-byte limit"
                )
            raw = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, EOFError, OSError) as exc:  # OSError: a gzip stream that is not one
        raise ConfigError(f"{uri}: not a readable gzip-compressed tar archive ({exc})") from None
    return parse_config_bytes(raw, f"{CONFIG_FILE} in {uri}")


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value


def _best_job(client: Any, job_name: str) -> tuple[str, str | None, dict[str, Any] | None]:
    """(training job, tuning job or None, objective or None): the best trial when job_name is a tuning job."""
    try:
        desc = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=job_name)
    except client.exceptions.ResourceNotFound:
        return job_name, None, None
    best = desc.get("BestTrainingJob")
    if not best:
        status = desc.get("HyperParameterTuningJobStatus")
        raise SageMakerError(f"tuning job {job_name} has no best training job yet ({status})")
    return best["TrainingJobName"], job_name, best.get("FinalHyperParameterTuningJobObjectiveMetric")


def best_params(conn: Connection, job_name: str, output: str | Path | None = None) -> BestParams:
    """Best training job of a tuning job (or a named training job) -> its hyperparameters as a config."""
    client = conn.session.sagemaker_client
    with sdk_env(conn.endpoint_url):
        training, tuning, objective = _best_job(client, job_name)
        with aws_errors(f"reading training job {training}" + (f" (best of tuning job {tuning})" if tuning else "")):
            job = client.describe_training_job(TrainingJobName=training)
            raw = {k: _decode(v) for k, v in job.get("HyperParameters", {}).items()}
            base = _shipped_config(conn, raw)
    hps = {k: v for k, v in raw.items() if not k.startswith("sagemaker_")}
    if isinstance(base.get("data"), dict):
        base["data"].pop("root", None)  # the job's channel path means nothing locally
    overrides = {config_field(k): decode_value(v) for k, v in hps.items()}
    cfg = build_config(overrides=overrides, base=base)
    if output is not None:
        atomic_write_text(output, config_to_yaml(cfg))
    return BestParams(training, tuning, objective, {k: str(v) for k, v in hps.items()}, cfg)
