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
OBJECTIVES = [d["Name"] for d in metric_definitions() if d["Name"].startswith("valid:")]
Direction = Literal["minimize", "maximize"]
# Metrics where larger is better; every other objective (a loss) is minimized.
_MAXIMIZED = ("top1", "top5", "balanced_accuracy", "macro_f1", "f1")


def objective_direction(objective: str) -> Direction:
    """`maximize` for accuracy-like metrics (top1, top5, balanced accuracy, F1), else `minimize`."""
    return "maximize" if objective.split(":")[-1] in _MAXIMIZED else "minimize"


class SearchSpace(BaseModel):
    """Parameters (named as trainer hyperparameters), objective, budget and strategy."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Parameter]
    objective: str = Field("valid:loss", description="Metric to optimize; never a test-split metric.")
    direction: Direction | None = Field(
        None, description="Inferred from the objective (maximize top1/top5, minimize loss); a contradiction is refused."
    )
    max_trials: int = Field(8, ge=1, le=1000, description="Trials in all.")
    parallel_trials: int = Field(1, ge=1, le=100, description="Trials at once.")
    strategy: Strategy = Field("bayesian", description="Search strategy.")
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
            raise ValueError(
                f"objective must be one of {OBJECTIVES} (train metrics reward overfitting; test metrics are never "
                "tuned on)"
            )
        return value

    @model_validator(mode="after")
    def _direction(self) -> SearchSpace:
        expected = objective_direction(self.objective)
        if self.direction is None:
            self.direction = expected
        elif self.direction != expected:
            raise ValueError(f"direction {self.direction} contradicts objective {self.objective} ({expected} it)")
        return self

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


_BATCH_SIZES: list[int | float | str] = [20, 34, 40, 60, 75]

# Learning-rate ranges (log scale) by optimizer and freeze mode; the reasoning and the measured figures are
# in docs/local.md ("Search spaces: measured"). A head on a frozen backbone tolerates far larger rates than
# the whole network: AdamW at lr >= 5e-3 on the whole ResNet50 from scratch spiked the first epoch's valid
# loss (4e5 at 5e-3, 5e7 at 1e-2) before BatchNorm recalibration; with warmup and recalibration a small
# network trained without a spike up to 1e-2 over 3 seeds on two datasets (benchmarks/bench_lr_ranges.py), and
# below 1e-3 a short budget stays near chance. The upper end stays 2e-3 until ResNet50 is measured above it.
# Pretrained weights are fine-tuned with small rates (`-nothing`).
# freeze=staged trains the backbone at lr * optim.backbone_lr_mult (0.1 by default), so its head lr range
# sits a decade above.
LR_RANGES: dict[str, tuple[float, float]] = {
    "course": (1e-3, 1e-1),
    "adamw-backbone": (1e-3, 1e-1),
    "adamw-nothing": (1e-5, 1e-3),
    "adamw-scratch": (1e-3, 2e-3),
    "adamw-staged": (1e-3, 3e-2),
    "sgd-backbone": (3e-3, 3e-1),
    "sgd-nothing": (1e-3, 3e-2),
    "sgd-scratch": (1e-2, 1e-1),
    "sgd-staged": (1e-2, 3e-1),
}
SPACE_NAMES: tuple[str, ...] = tuple(LR_RANGES)


def named_space(name: str) -> SearchSpace:
    """The built-in space `name` (see SPACE_NAMES): a log lr range x batch-size in [20, 34, 40, 60, 75]."""
    if name not in LR_RANGES:
        raise ConfigError(f"unknown search space {name!r}; use one of {list(SPACE_NAMES)} or a YAML/JSON file")
    low, high = LR_RANGES[name]
    return SearchSpace(
        parameters={
            "lr": Continuous(min=low, max=high, scale="log"),
            "batch-size": Categorical(values=_BATCH_SIZES),
        }
    )


def space_name_for(freeze: str, optimizer: str, pretrained: bool = True) -> str:
    """The built-in space sound for `optimizer` training with `freeze` (old freeze names accepted)."""
    from dogclf.config import normalize_freeze

    mode = normalize_freeze(freeze)
    return f"{optimizer}-{'scratch' if mode == 'nothing' and not pretrained else mode}"


def _name_for(cfg: Any) -> str:
    return space_name_for(cfg.model.freeze, cfg.optim.optimizer, cfg.model.weights is not None)


def default_space(cfg: Any = None) -> SearchSpace:
    """The space for `cfg`'s optimizer, freeze mode and weights (random init: `-scratch`); else the course space.

    The course space (lr 0.001-0.1 log, batch-size in [20, 34, 40, 60, 75], min valid loss) is what the
    course tuned for a head on a frozen backbone.
    """
    if cfg is None:
        return named_space("course")
    return named_space(_name_for(cfg))


def resolve_space(spec: str | Path | None, cfg: Any) -> tuple[str, SearchSpace]:
    """`--space NAME|FILE`: a built-in name, a YAML/JSON file, or (None) the default for `cfg`; and its label."""
    if spec is None:
        return _name_for(cfg), named_space(_name_for(cfg))
    if str(spec) in LR_RANGES:
        return str(spec), named_space(str(spec))
    if not Path(spec).exists():
        raise ConfigError(f"--space {spec}: no such file, and not one of the built-in spaces {list(SPACE_NAMES)}")
    return str(spec), load_space(spec)


def load_space(path: str | Path) -> SearchSpace:
    """Read a search space from YAML/JSON; errors name the file and field."""
    from dogclf.config import format_validation_error, read_config_file

    try:
        return SearchSpace.model_validate(read_config_file(path))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"search space ({path})")) from None
