"""The trainer's hyperparameter names: CLI flags, SageMaker hyperparameters and search-space names.

One table maps each `--name` to its config field, so `dogclf train --batch-size 20`, a SageMaker job's
`--batch-size "20"` and a tuning range named `batch-size` all mean `data.batch_size`.
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import BaseModel

from dogclf.errors import ConfigError

HYPERPARAMETERS: dict[str, str] = {
    "arch": "model.arch",
    "weights": "model.weights",
    "freeze": "model.freeze",
    "dropout": "model.dropout",
    "epochs": "optim.epochs",
    "batch-size": "data.batch_size",
    "lr": "optim.lr",
    "optimizer": "optim.optimizer",
    "weight-decay": "optim.weight_decay",
    "momentum": "optim.momentum",
    "scheduler": "optim.scheduler",
    "warmup-epochs": "optim.warmup_epochs",
    "label-smoothing": "optim.label_smoothing",
    "grad-clip": "optim.grad_clip",
    "backbone-lr-mult": "optim.backbone_lr_mult",
    "head-epochs": "optim.head_epochs",
    "early-stopping-patience": "optim.early_stopping_patience",
    "max-steps-per-epoch": "optim.max_steps_per_epoch",
    "image-size": "data.image_size",
    "augment": "data.augment",
    "workers": "data.num_workers",
    "skip-bad-images": "data.skip_bad_images",
    "seed": "runtime.seed",
    "precision": "runtime.precision",
    "device": "runtime.device",
    "profile": "profile.enabled",
    "profile-interval-ms": "profile.interval_ms",
    "debug": "debug.enabled",
    "debug-rules": "debug.live_rules",
    "debug-save-interval": "debug.save_interval",
}
NULL = "null"  # a hyperparameter's None (random init for weights, no limit for grad-clip, ...)


def decode_value(value: Any) -> Any:
    """A received hyperparameter value, with the contract's 'null' as None."""
    return None if value == NULL else value


def field_info(dotted: str):
    """The pydantic FieldInfo behind a dotted RunConfig field."""
    from dogclf.config import RunConfig

    model: type[BaseModel] = RunConfig
    *parents, leaf = dotted.split(".")
    for p in parents:
        model = model.model_fields[p].annotation  # type: ignore[assignment]
    return model.model_fields[leaf]


def config_field(name: str) -> str:
    """Config field of a hyperparameter name; the error lists valid names."""
    key = name.replace("_", "-")
    if key not in HYPERPARAMETERS:
        raise ConfigError(f"unknown hyperparameter {name!r}; valid: {', '.join(sorted(HYPERPARAMETERS))}")
    return HYPERPARAMETERS[key]


def add_hyperparameter_flags(parser: argparse.ArgumentParser) -> None:
    """--name VALUE for every hyperparameter; values stay strings and pydantic validates them."""
    for name, dotted in HYPERPARAMETERS.items():
        info = field_info(dotted)
        kwargs: dict[str, Any] = {
            "dest": f"hp_{name.replace('-', '_')}",
            "metavar": "VALUE",
            "help": f"{info.description} [{dotted}, default {info.default!r}]",
        }
        if info.annotation is bool:
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        parser.add_argument(f"--{name}", **kwargs)


def overrides_from_namespace(args: argparse.Namespace) -> dict[str, Any]:
    """Dotted config overrides for the hyperparameter flags that were given."""
    out = {}
    for name, dotted in HYPERPARAMETERS.items():
        value = getattr(args, f"hp_{name.replace('-', '_')}", None)
        if value is not None:
            out[dotted] = decode_value(value)
    return out


def to_hyperparameters(overrides: dict[str, Any]) -> dict[str, str]:
    """Dotted overrides -> {'batch-size': '20'} as SageMaker passes them."""
    reverse = {v: k for k, v in HYPERPARAMETERS.items()}
    out = {}
    for dotted, value in overrides.items():
        if dotted not in reverse:
            raise ConfigError(f"config field {dotted!r} is not a hyperparameter; valid: {', '.join(sorted(reverse))}")
        out[reverse[dotted]] = NULL if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return out
