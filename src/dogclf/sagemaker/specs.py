"""What dogclf asks SageMaker for, resolved and SDK-free: the specs every SDK line turns into requests."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dogclf.errors import ConfigError


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


@dataclass(frozen=True)
class ParameterRange:
    """One tuned hyperparameter: a Continuous or Integer range (min, max, SageMaker's scale) or Categorical values."""

    name: str
    kind: str  # "Continuous", "Integer" or "Categorical", as in SageMaker's <kind>ParameterRanges
    min_value: str = ""
    max_value: str = ""
    scaling: str = "Auto"  # "Linear" or "Logarithmic" for ranges
    values: tuple[str, ...] = ()  # Categorical: the values as the script receives them (plain strings)


@dataclass(frozen=True)
class TuningSpec:
    """One tuning job as dogclf resolves it: the substance both SDK lines send to CreateHyperParameterTuningJob.

    The trials' training job is the hpo-mode TrainingSpec it goes with.
    """

    objective: str  # a metric definition's name, e.g. valid:loss
    objective_type: str  # "Minimize" or "Maximize"
    ranges: tuple[ParameterRange, ...]
    strategy: str  # SageMaker's: "Bayesian", "Random", "Hyperband" or "Grid"
    max_jobs: int | None  # None with Grid (SageMaker counts the grid)
    max_parallel_jobs: int
    early_stopping: str  # "Auto" or "Off"
    hyperband_resources: tuple[int, int] | None = None  # Hyperband's (MinResource, MaxResource) in epochs
    max_runtime_s: int | None = None
    warm_start_parents: tuple[str, ...] = ()  # IdenticalDataAndAlgorithm warm start from these tuning jobs
    base_name: str = "dogclf-tune"


_BUILT_FROM: dict[int, TrainingSpec] = {}  # id(a line's training object) -> the spec it was built from


def remember_spec(trainer: Any, spec: TrainingSpec) -> None:
    """Record that `trainer` (a line's training object) was built from `spec`, for as long as it lives."""
    _BUILT_FROM[id(trainer)] = spec
    weakref.finalize(trainer, _BUILT_FROM.pop, id(trainer), None)


def training_spec_of(trainer: Any) -> TrainingSpec:
    """The TrainingSpec that make_estimator built `trainer` from; a ConfigError for any other object."""
    spec = _BUILT_FROM.get(id(trainer))
    if spec is None:
        raise ConfigError(f"expected a training object of make_estimator, got {type(trainer).__name__}")
    return spec
