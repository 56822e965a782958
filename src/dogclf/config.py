"""Typed run configuration: one pydantic model per concern, loadable from YAML/JSON with overrides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dogclf.debug.config import DebugConfig
from dogclf.errors import ConfigError
from dogclf.fsutil import read_bounded
from dogclf.profile.config import ProfileConfig
from dogclf.safe_yaml import load_yaml
from dogclf.tracking.config import TrackingConfig

DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own decompression-bomb threshold

# Old freeze-mode names read backwards (`head` trained the head, `full` trained everything): kept as aliases.
FREEZE_ALIASES: dict[str, str] = {"head": "backbone", "full": "nothing"}


def normalize_freeze(value: object) -> object:
    """The current name of a freeze mode (`head` -> `backbone`, `full` -> `nothing`); others unchanged."""
    return FREEZE_ALIASES.get(value, value) if isinstance(value, str) else value


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(StrictModel):
    """Where the images are and how batches are made."""

    root: Path | None = Field(None, description="ImageFolder root with train/valid/test (or one flat folder).")
    image_size: int = Field(224, ge=16, le=1024, description="Side of the square crop fed to the model (px).")
    resize_size: int | None = Field(
        None, ge=16, le=2048, description="Shorter side before the eval center crop; default image_size/0.875."
    )
    batch_size: int = Field(32, ge=1, le=4096, description="Images per training batch.")
    eval_batch_size: int | None = Field(None, ge=1, le=4096, description="Images per eval batch; default 2x.")
    num_workers: int | None = Field(None, ge=0, le=64, description="DataLoader workers; default min(4, cpus).")
    augment: bool = Field(True, description="Random resized crop + horizontal flip for training.")
    skip_bad_images: bool = Field(False, description="Skip unreadable images (listed in the run) instead of failing.")
    valid_fraction: float = Field(0.1, gt=0, lt=1, description="Share for valid when splitting a flat folder.")
    test_fraction: float = Field(0.1, ge=0, lt=1, description="Share for test when splitting a flat folder.")
    max_image_pixels: int = Field(
        DEFAULT_MAX_PIXELS,
        ge=1,
        description="Images with more pixels than this are rejected as bad (decompression bombs).",
    )
    balance: Literal["none", "weights", "sampler"] = Field(
        "none",
        description="Class imbalance: weights = inverse-frequency loss weights; sampler = class-balanced sampling "
        "with replacement instead of shuffling (single process only).",
    )


class ModelConfig(StrictModel):
    """Which network to build and how much of it to train."""

    arch: str = Field("resnet50", description="Architecture name, see `dogclf.models.list_models()`.")
    weights: str | None = Field(
        "imagenet", description="'imagenet' (torchvision weights), a local .pth file, or null for random init."
    )
    freeze: Literal["backbone", "nothing", "staged"] = Field(
        "backbone",
        description="What stays frozen: backbone (train the classifier only), nothing (train all), staged "
        "(backbone frozen for optim.head_epochs, then all trained). Old names head/full are accepted.",
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before the new classifier layer.")
    calibrate: bool = Field(
        True, description="After training, fit a softmax temperature on the valid split (stored in the artifact)."
    )

    @field_validator("freeze", mode="before")
    @classmethod
    def _new_freeze_name(cls, value: object) -> object:
        return normalize_freeze(value)

    @field_validator("weights", mode="before")
    @classmethod
    def _none_means_random(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in ("none", "null", "") else value


class OptimConfig(StrictModel):
    """Optimizer, learning-rate schedule and stopping."""

    epochs: int = Field(10, ge=1, le=10_000, description="Maximum number of epochs.")
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="Optimizer.")
    lr: float = Field(1e-3, gt=0, le=10, description="Peak learning rate of the classifier head.")
    backbone_lr_mult: float = Field(
        0.1, gt=0, le=1, description="freeze=staged: backbone lr = lr * this (nothing trains all at lr)."
    )
    head_epochs: int = Field(1, ge=0, description="freeze=staged: epochs with the backbone frozen.")
    weight_decay: float = Field(1e-4, ge=0, le=1, description="Decoupled (AdamW) or L2 (SGD) weight decay.")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    scheduler: Literal["cosine", "step", "none"] = Field("cosine", description="LR schedule after warmup.")
    warmup_epochs: float = Field(0.0, ge=0, description="Linear warmup length in epochs (fractions allowed).")
    step_size: int = Field(5, ge=1, description="scheduler=step: epochs between decays.")
    gamma: float = Field(0.1, gt=0, le=1, description="scheduler=step: decay factor.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Cross-entropy label smoothing.")
    grad_clip: float | None = Field(None, gt=0, description="Clip the gradient norm to this value.")
    bn_recalibrate: bool = Field(
        False, description="Recompute BatchNorm running statistics on the train images before each validation."
    )
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many epochs without a better monitored value."
    )
    early_stopping_min_delta: float = Field(
        0.0, ge=0, description="Smallest change of the monitored value that counts as better."
    )
    monitor: Literal["valid_loss", "valid_top1"] = Field(
        "valid_loss", description="Validation metric that selects the best checkpoint."
    )
    max_steps_per_epoch: int | None = Field(None, ge=1, description="Cap on training steps per epoch.")


Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
CPU_PRECISIONS: tuple[str, ...] = tuple(p for p in PRECISIONS if p != "fp16")  # fp16 AMP is for GPUs


class RuntimeConfig(StrictModel):
    """Where and how the computation runs."""

    seed: int = Field(0, ge=0, description="Seed for data order, augmentation and initialization.")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="Compute device.")
    precision: Precision = Field("auto", description="auto: bf16 on CPUs that support it, fp16 AMP on CUDA, else fp32.")
    channels_last: bool | None = Field(None, description="Use channels_last memory format; default on for CPU/CUDA.")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: torch's choice).")
    progress: bool | None = Field(None, description="Progress bars; default on when stderr is a TTY.")


class RunConfig(StrictModel):
    """Everything a training run needs; saved as config.yaml in the run directory."""

    name: str | None = Field(None, description="Run name (default: the output folder's name).")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    debug: DebugConfig = Field(default_factory=DebugConfig)
    profile: ProfileConfig = Field(default_factory=ProfileConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _staged_needs_epochs(self) -> RunConfig:
        if self.model.freeze == "staged" and self.optim.head_epochs >= self.optim.epochs:
            raise ValueError(
                f"optim.head_epochs ({self.optim.head_epochs}) must be below optim.epochs "
                f"({self.optim.epochs}) for freeze=staged"
            )
        return self


def format_validation_error(err: ValidationError, source: str = "config") -> str:
    """One readable line per problem, each naming the dotted field."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "<root>"
        given = e.get("input")
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        parts.append(f"{loc}: {msg}{shown}")
    return f"invalid {source}: " + "; ".join(parts)


MAX_CONFIG_BYTES = 1 << 20  # a config file is a few KiB


def read_config_file(path: str | Path, *, follow_links: bool = True) -> dict[str, Any]:
    """Read a YAML or JSON mapping of at most MAX_CONFIG_BYTES (aliases within a budget); errors name the file.

    With follow_links False (a run's own config.yaml) a symbolic link is refused rather than followed.
    """
    path = Path(path)
    raw = read_bounded(path, MAX_CONFIG_BYTES, "config file", follow_links=follow_links)
    return parse_config_bytes(raw, str(path), is_json=path.suffix == ".json")


def parse_config_bytes(raw: bytes, name: str, is_json: bool = False) -> dict[str, Any]:
    """A config mapping from bytes (YAML, or JSON with is_json; aliases within a budget); errors name `name`."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {name} is {len(raw)} bytes, over the {MAX_CONFIG_BYTES}-byte limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {name} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    try:
        data = json.loads(text) if is_json else load_yaml(text)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: JSON syntax, or an integer past the digit limit
        raise ConfigError(f"config file {name} is not valid YAML/JSON: {_one_line(exc)}") from None
    except RecursionError:
        raise ConfigError(f"config file {name} is not valid YAML/JSON: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {name} must hold a mapping of sections, got a {type(data).__name__}")
    return data


def _one_line(exc: Exception) -> str:
    """A parser's multi-line message (with its source excerpt) folded into one line."""
    return " ".join(str(exc).split())


def parse_yaml_value(raw: str, what: str) -> Any:
    """One YAML scalar or flow value (1e-3, true, null, [1, 2]); tags that build objects are refused."""
    try:
        return load_yaml(raw)
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{what}: {raw!r} is not a plain YAML value: {_one_line(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{what}: {raw!r:.40} is not a plain YAML value: nested too deeply") from None


def deep_update(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Merge nested mappings; every key present in `update` wins, an explicit None included.

    "Not given" is a missing key, never None: `{"model.weights": None}` means random init, whatever the file says.
    """
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = value
    return out


def dotted_to_nested(values: dict[str, Any]) -> dict[str, Any]:
    """{'optim.lr': 0.1} -> {'optim': {'lr': 0.1}}."""
    nested: dict[str, Any] = {}
    for dotted, value in values.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return nested


def build_config(
    file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve a RunConfig from defaults < base < file < dotted overrides."""
    data = dict(base or {})
    source = "config"
    if file is not None:
        data = deep_update(data, read_config_file(file))
        source = f"config ({file})"
    data = deep_update(data, dotted_to_nested(overrides or {}))
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def config_to_yaml(cfg: BaseModel) -> str:
    """Serialize a config as YAML with plain types (paths as strings)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
