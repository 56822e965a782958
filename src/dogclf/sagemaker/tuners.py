"""Hyperparameter tuning jobs: dogclf's one search space as SageMaker ranges, strategy and budget."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from dogclf.errors import ConfigError
from dogclf.sagemaker.session import sdk_env
from dogclf.tune.space import STRATEGIES, Categorical, Continuous, Integer, SearchSpace, named_space, resolve_space

# dogclf's strategy names (tune.space) -> SageMaker's: "bayesian" -> "Bayesian", ...
SDK_STRATEGIES = {name: name.capitalize() for name in STRATEGIES}
SDK_SCALES = {"linear": "Linear", "log": "Logarithmic"}


@contextlib.contextmanager
def warm_pool(client: Any, keep_alive_s: int | None) -> Iterator[None]:
    """Send the trials' KeepAlivePeriodInSeconds, which SDK 2.x's tuner drops, in their ResourceConfig."""
    if keep_alive_s is None:
        yield
        return

    def add_keep_alive(params: dict[str, Any], **_: Any) -> None:
        definition = params.get("TrainingJobDefinition") or {}
        resources = definition.pop("HyperParameterTuningResourceConfig", None)
        if resources is not None:
            fields = ("InstanceType", "InstanceCount", "VolumeSizeInGB", "VolumeKmsKeyId")
            kept = {k: v for k, v in resources.items() if k in fields}
            definition["ResourceConfig"] = {**kept, "KeepAlivePeriodInSeconds": keep_alive_s}

    event, unique_id = "before-parameter-build.sagemaker.CreateHyperParameterTuningJob", "dogclf-warm-pool"
    client.meta.events.register(event, add_keep_alive, unique_id=unique_id)
    try:
        yield
    finally:
        client.meta.events.unregister(event, unique_id=unique_id)


def is_tuner(job: Any) -> bool:
    """Whether `job` is a tuner of make_tuner (SDK 2.x's HyperparameterTuner)."""
    from dogclf.sagemaker.sdk_line import sdk_line

    if "tune" not in sdk_line().operations:
        return False
    from sagemaker.tuner import HyperparameterTuner

    return isinstance(job, HyperparameterTuner)


def job_space(spec: str | None, cfg: Any) -> SearchSpace:
    """`--space NAME|FILE`, else the course space for a frozen-backbone job and the sound default otherwise."""
    if spec is None and cfg.model.freeze == "backbone":
        return named_space("course")
    return resolve_space(spec, cfg)[1]


def sagemaker_ranges(space: SearchSpace) -> dict[str, Any]:
    """The space's parameters as sagemaker.tuner Continuous/Integer/CategoricalParameter ranges."""
    from sagemaker.tuner import CategoricalParameter, ContinuousParameter, IntegerParameter

    out: dict[str, Any] = {}
    for name, p in space.parameters.items():
        if isinstance(p, Continuous):
            out[name] = ContinuousParameter(p.min, p.max, scaling_type=SDK_SCALES[p.scale])
        elif isinstance(p, Integer):
            out[name] = IntegerParameter(p.min, p.max, scaling_type=SDK_SCALES[p.scale])
        elif isinstance(p, Categorical):
            out[name] = CategoricalParameter([str(v) for v in p.values])
    return out


def _strategy(estimator: Any, space: SearchSpace) -> tuple[str, Any, str]:
    """SageMaker strategy name, its StrategyConfig, and the early stopping type."""
    from sagemaker.tuner import HyperbandStrategyConfig, StrategyConfig

    strategy = SDK_STRATEGIES[space.strategy]
    if strategy == "Hyperband":  # Hyperband stops trials itself, on the per-epoch objective lines
        epochs = int(estimator.hyperparameters().get("epochs", "10").strip('"'))
        return strategy, StrategyConfig(HyperbandStrategyConfig(min_resource=1, max_resource=max(epochs, 2))), "Off"
    return strategy, None, "Auto" if space.early_stopping else "Off"


def make_tuner(
    estimator: Any,
    space: SearchSpace,
    warm_start_from: Sequence[str] = (),
    max_runtime_s: int | None = None,
    base_tuning_job_name: str = "dogclf-tune",
) -> Any:
    """HyperparameterTuner from a dogclf SearchSpace: ranges, objective, strategy, budget, early stopping."""
    from dogclf.sagemaker.sdk_line import require

    require("tune")
    from sagemaker.tuner import HyperparameterTuner, WarmStartConfig, WarmStartTypes

    from dogclf.training.metrics import metric_definitions

    strategy, strategy_config, early = _strategy(estimator, space)
    warm = None
    if warm_start_from:
        warm = WarmStartConfig(WarmStartTypes.IDENTICAL_DATA_AND_ALGORITHM, parents=set(warm_start_from))
    try:
        with sdk_env():
            return HyperparameterTuner(
                estimator,
                space.objective,
                sagemaker_ranges(space),
                metric_definitions=metric_definitions(),
                strategy=strategy,
                objective_type=space.direction.capitalize(),
                max_jobs=None if strategy == "Grid" else space.max_trials,
                max_parallel_jobs=space.parallel_trials,
                max_runtime_in_seconds=max_runtime_s,
                early_stopping_type=early,
                strategy_config=strategy_config,
                warm_start_config=warm,
                base_tuning_job_name=base_tuning_job_name,
            )
    except ValueError as exc:
        raise ConfigError(f"SageMaker SDK rejected the tuner: {exc}") from None
