"""The one interface between dogclf and the SageMaker Python SDK, with one implementation per major line.

dogclf resolves what it asks for into SDK-free specs (`specs.TrainingSpec`, `TuningSpec`, `ServingSpec`,
`EndpointSpec`, `TransformSpec`); the line installed (2.x: the `Estimator`/`Model` family in `sdk2`, 3.x:
sagemaker-train's `ModelTrainer` and sagemaker-core in `sdk3`) turns them into requests. The line is picked
once, from the installed SDK's major version.
"""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any, Protocol

from dogclf.errors import ConfigError
from dogclf.sagemaker.specs import EndpointSpec, ServingSpec, TrainingSpec, TransformSpec, TuningSpec


class SdkLine(Protocol):
    """What dogclf asks of a SageMaker SDK line."""

    major: int
    operations: frozenset[str]  # what this line does: "train", "tune", "deploy", "batch_transform", "predictor"

    def job_failures(self) -> tuple[type[BaseException], ...]:
        """The SDK's exceptions for a waited-on job that ended Failed or Stopped, or outlasted the wait."""
        ...

    def session(self, boto_session: Any, endpoint_url: str | None, bucket: str | None) -> Any:
        """The SDK's Session on `boto_session` (telemetry opted out), its clients pointed at endpoint_url."""
        ...

    def image_uri(self, region: str, version: str, py_version: str, instance_type: str, scope: str) -> str:
        """The SageMaker PyTorch image (scope 'training' or 'inference') for the instance type."""
        ...

    def trainer(self, spec: TrainingSpec, session: Any) -> Any:
        """The line's training object (2.x PyTorch estimator, 3.x ModelTrainer) for `spec`, not yet started."""
        ...

    def train(self, trainer: Any, channels: dict[str, str], job_name: str, wait: bool) -> str:
        """Start the training job (CreateTrainingJob) on the S3 channels; with wait, until it ends; its name."""
        ...

    def tuner(self, trainer: Any, training: TrainingSpec, tuning: TuningSpec) -> Any:
        """The line's tuning object (not yet started) whose trials run `trainer`, the training object of `training`."""
        ...

    def tune(self, tuner: Any, channels: dict[str, str], job_name: str, wait: bool) -> str:
        """Start the tuning job (CreateHyperParameterTuningJob) on the channels; with wait, until it ends; its name."""
        ...

    def deploy(self, model: ServingSpec, endpoint: EndpointSpec, session: Any) -> str:
        """CreateModel, CreateEndpointConfig and CreateEndpoint (no wait), all named model.name; that name."""
        ...

    def transform(self, model: ServingSpec, job: TransformSpec, session: Any) -> str:
        """CreateModel (named model.name) and CreateTransformJob (SingleRecord, no wait); the job's name."""
        ...

    def predictor(self, endpoint_name: str, session: Any, serializer: Any, deserializer: Any) -> Any:
        """The line's predictor-style client for the endpoint: `endpoint_name` and `predict(data)`."""
        ...


def sdk_major() -> int:
    """The major version of the installed `sagemaker` distribution; a one-line error when it is missing."""
    try:
        version = metadata.version("sagemaker")
    except metadata.PackageNotFoundError:
        raise ConfigError("the SageMaker SDK is not installed: pip install 'dogclf[sagemaker]'") from None
    return int(version.split(".")[0])


@functools.cache
def sdk_line() -> SdkLine:
    """The implementation for the installed SDK (2.x or 3.x), picked once."""
    major = sdk_major()
    if major == 2:
        from dogclf.sagemaker.sdk2 import Sdk2Line

        return Sdk2Line()
    if major == 3:
        from dogclf.sagemaker.sdk3 import Sdk3Line

        return Sdk3Line()
    raise ConfigError(f"SageMaker SDK {major}.x is not supported: dogclf[sagemaker] needs sagemaker>=2.200,<4")


def require(operation: str) -> SdkLine:
    """The installed line, or a one-line ConfigError when it does not do `operation`."""
    line = sdk_line()
    if operation not in line.operations:
        raise ConfigError(
            f"{operation.replace('_', ' ')} on SageMaker is not available with SageMaker SDK {line.major}.x in this "
            "dogclf yet: install 'sagemaker>=2.200,<3' beside dogclf for it"
        )
    return line
