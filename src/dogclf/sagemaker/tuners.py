"""Hyperparameter tuning jobs: dogclf's one search space as SageMaker ranges, strategy and budget.

dogclf resolves a tuning job into an SDK-free `TuningSpec` (ranges, objective, strategy, limits, warm start) next
to its trials' `TrainingSpec`; the installed SDK line (`sdk_line`) turns both into the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dogclf.sagemaker.session import sdk_env
from dogclf.sagemaker.specs import ParameterRange, TrainingSpec, TuningSpec, training_spec_of
from dogclf.tune.space import STRATEGIES, Categorical, Continuous, SearchSpace, named_space, resolve_space

# dogclf's strategy names (tune.space) -> SageMaker's: "bayesian" -> "Bayesian", ...
SDK_STRATEGIES = {name: name.capitalize() for name in STRATEGIES}
SDK_SCALES = {"linear": "Linear", "log": "Logarithmic"}


@dataclass(frozen=True)
class Tuner:
    """A tuning job ready for `submit`: the installed line's tuning object and the specs it was made from."""

    sdk: Any  # the line's tuning object (2.x HyperparameterTuner, 3.x the request's parts)
    trainer: Any  # the trials' training object: keeps its staged source folder until the job is submitted
    training: TrainingSpec
    spec: TuningSpec


def job_space(spec: str | None, cfg: Any) -> SearchSpace:
    """`--space NAME|FILE`, else the course space for a frozen-backbone job and the sound default otherwise."""
    if spec is None and cfg.model.freeze == "backbone":
        return named_space("course")
    return resolve_space(spec, cfg)[1]


def sagemaker_ranges(space: SearchSpace) -> tuple[ParameterRange, ...]:
    """The space's parameters as SageMaker's Continuous, Integer and Categorical ranges (values as strings)."""
    out = []
    for name, p in space.parameters.items():
        if isinstance(p, Categorical):
            out.append(ParameterRange(name, "Categorical", values=tuple(str(v) for v in p.values)))
        else:
            kind = "Continuous" if isinstance(p, Continuous) else "Integer"
            out.append(ParameterRange(name, kind, str(p.min), str(p.max), SDK_SCALES[p.scale]))
    return tuple(out)


def tuning_spec(
    training: TrainingSpec,
    space: SearchSpace,
    warm_start_from: Sequence[str] = (),
    max_runtime_s: int | None = None,
    base_tuning_job_name: str = "dogclf-tune",
) -> TuningSpec:
    """The tuning job over `space` for trials of `training`: ranges, objective, strategy, budget, early stopping."""
    strategy = SDK_STRATEGIES[space.strategy]
    hyperband, early = None, "Auto" if space.early_stopping else "Off"
    if strategy == "Hyperband":  # Hyperband stops trials itself, on the per-epoch objective lines
        epochs = int(training.hyperparameters.get("epochs", "10"))
        hyperband, early = (1, max(epochs, 2)), "Off"
    return TuningSpec(
        objective=space.objective,
        objective_type=space.direction.capitalize(),
        ranges=sagemaker_ranges(space),
        strategy=strategy,
        max_jobs=None if strategy == "Grid" else space.max_trials,
        max_parallel_jobs=space.parallel_trials,
        early_stopping=early,
        hyperband_resources=hyperband,
        max_runtime_s=max_runtime_s,
        warm_start_parents=tuple(dict.fromkeys(warm_start_from)),
        base_name=base_tuning_job_name,
    )


def make_tuner(
    estimator: Any,
    space: SearchSpace,
    warm_start_from: Sequence[str] = (),
    max_runtime_s: int | None = None,
    base_tuning_job_name: str = "dogclf-tune",
) -> Tuner:
    """A tuning job over `space` whose trials run `estimator` (of make_estimator, mode "hpo"), for `submit`."""
    from dogclf.sagemaker.sdk_line import require

    line = require("tune")
    training = training_spec_of(estimator)
    spec = tuning_spec(training, space, warm_start_from, max_runtime_s, base_tuning_job_name)
    with sdk_env():
        return Tuner(line.tuner(estimator, training, spec), estimator, training, spec)
