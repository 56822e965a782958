"""What dogclf asks SageMaker for, resolved and SDK-free: the specs every SDK line turns into requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainingSpec:
    """One training job as dogclf resolves it: the substance both SDK lines send to CreateTrainingJob."""

    role: str
    image: str  # the PyTorch training image for the instance type
    framework_version: str
    py_version: str
    instance_type: str
    instance_count: int
    entry_script: str
    source_dir: Path
    hyperparameters: dict[str, str]  # the script's hyperparameters as dogclf resolves them (plain strings)
    metric_definitions: list[dict[str, str]]
    output_path: str
    code_location: str
    base_job_name: str
    checkpoint_s3_uri: str | None = None
    tensorboard_s3_uri: str | None = None
    tensorboard_local_path: str | None = None
    spot: bool = False
    max_run_s: int = 24 * 3600
    max_wait_s: int | None = None
    keep_alive_s: int | None = None
    distributed: bool = False  # torchrun on every instance (gloo on CPU)
    environment: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    service_monitoring: Mapping[str, Any] = field(default_factory=dict)  # 2.x estimator's Debugger/Profiler args


@dataclass(frozen=True)
class ServingSpec:
    """One SageMaker Model as dogclf resolves it: the substance both SDK lines send to CreateModel."""

    name: str
    role: str
    model_data: str
    framework_version: str
    py_version: str
    code_location: str  # a repacked model goes to CODE_LOCATION/NAME/model.tar.gz
    entry_script: str
    source_dir: Path | None = None  # repack model_data with these files as code/; None: served as is
    image: str | None = None  # the user's own container; None: SageMaker's PyTorch inference image
    environment: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointSpec:
    """Where a real-time endpoint runs: instances, or serverless with memory and concurrency."""

    instance_type: str
    instance_count: int
    serverless_memory_mb: int | None = None
    serverless_max_concurrency: int = 5


@dataclass(frozen=True)
class TransformSpec:
    """One Batch Transform job: one request per object under input_uri, answers under output_uri."""

    name: str
    instance_type: str
    instance_count: int
    input_uri: str
    output_uri: str
    content_type: str
    accept: str
    max_concurrent_transforms: int | None = None
