"""The one search-space definition (Optuna locally, SageMaker ranges via dogclf.sagemaker.tuners).

Also the one list of strategy and pruner names. Torch-free and SDK-free: the CLI, the local tuner and the
SageMaker layer all import their names from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dogclf.errors import ConfigError
from dogclf.hyperparameters import config_field
from dogclf.training.metrics import metric_definitions

Strategy = Literal["bayesian", "random", "hyperband", "grid"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
# Local pruners the user may pick; "hyperband" is implied by the hyperband strategy.
Pruner = Literal["median", "halving", "none"]
PRUNERS: tuple[str, ...] = get_args(Pruner)


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Continuous(_Param):
    """A real-valued range."""

    type: Literal["continuous"] = "continuous"
    min: float
    max: float
    scale: Literal["linear", "log"] = "linear"

    @model_validator(mode="after")
    def _check(self) -> Continuous:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        if self.scale == "log" and self.min <= 0:
            raise ValueError(f"log scale needs min > 0 (got {self.min})")
        return self


class Integer(_Param):
    """An integer range (inclusive)."""

    type: Literal["integer"] = "integer"
    min: int
    max: int
    scale: Literal["linear", "log"] = "linear"

    @model_validator(mode="after")
    def _check(self) -> Integer:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        if self.scale == "log" and self.min <= 0:
            raise ValueError(f"log scale needs min > 0 (got {self.min})")
        return self


class Categorical(_Param):
    """A choice among listed values."""

    type: Literal["categorical"] = "categorical"
    values: list[int | float | str] = Field(min_length=1)


Parameter = Annotated[Continuous | Integer | Categorical, Field(discriminator="type")]
OBJECTIVES = [d["Name"] for d in metric_definitions() if not d["Name"].startswith("test:")]


class SearchSpace(BaseModel):
    """Parameters (named as trainer hyperparameters), objective, budget and strategy."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Parameter]
    objective: str = Field("valid:loss", description="Metric to optimize; never a test-split metric.")
    direction: Literal["minimize", "maximize"] = "minimize"
    max_trials: int = Field(8, ge=1, le=1000)
    parallel_trials: int = Field(1, ge=1, le=100)
    strategy: Strategy = "bayesian"
    early_stopping: bool = Field(False, description="Prune (locally) / Auto early stopping (SageMaker).")

    @field_validator("parameters")
    @classmethod
    def _known_names(cls, params: dict[str, Any]) -> dict[str, Any]:
        if not params:
            raise ValueError("at least one parameter is required")
        for name in params:
            config_field(name)  # raises ConfigError naming valid hyperparameters
        return params

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: str) -> str:
        if value not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES} (test metrics are never tuned on)")
        return value

    @property
    def config_fields(self) -> dict[str, str]:
        """Hyperparameter name -> dotted config field."""
        return {name: config_field(name) for name in self.parameters}

    def to_optuna(self) -> dict[str, Any]:
        """Optuna distributions keyed by hyperparameter name."""
        import optuna.distributions as d

        out: dict[str, Any] = {}
        for name, p in self.parameters.items():
            if isinstance(p, Continuous):
                out[name] = d.FloatDistribution(p.min, p.max, log=p.scale == "log")
            elif isinstance(p, Integer):
                out[name] = d.IntDistribution(p.min, p.max, log=p.scale == "log")
            else:
                out[name] = d.CategoricalDistribution(p.values)
        return out


def default_space() -> SearchSpace:
    """The classic course setup: lr 0.001-0.1 (log), batch-size in [20, 34, 40, 60, 75], min valid loss."""
    return SearchSpace(
        parameters={
            "lr": Continuous(min=0.001, max=0.1, scale="log"),
            "batch-size": Categorical(values=[20, 34, 40, 60, 75]),
        }
    )


def load_space(path: str | Path) -> SearchSpace:
    """Read a search space from YAML/JSON; errors name the file and field."""
    from dogclf.config import format_validation_error, read_config_file

    try:
        return SearchSpace.model_validate(read_config_file(path))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"search space ({path})")) from None
