"""Shared CLI option helpers: config overrides from flags."""

from __future__ import annotations

import argparse
import inspect
import types
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from dogclf.config import parse_yaml_value
from dogclf.errors import ConfigError


def parse_set(values: list[str] | None) -> dict[str, Any]:
    """--set a.b=value pairs; values parsed as YAML scalars (1e-3, true, null...)."""
    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects FIELD=VALUE (e.g. optim.lr=0.01), got {item!r}")
        out[key.strip()] = parse_yaml_value(raw, f"--set {key.strip()}")
    return out


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """Add the repeatable --set FIELD=VALUE override that `parse_set` reads."""
    parser.add_argument(
        "--set", action="append", metavar="FIELD=VALUE", help="override any config field, e.g. optim.warmup_epochs=1"
    )


def library_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """The keyword defaults of the library function a command calls: flags take their defaults from it."""
    return {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _flag_kwargs(annotation: Any) -> dict[str, Any]:
    """The argparse type, choices or action for a pydantic field's annotation (Optional unwrapped)."""
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Literal:
        return {"choices": list(get_args(annotation))}
    if annotation is bool:
        return {"action": "store_true"}
    return {"type": annotation}


def add_model_options(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    """A `--field-name` flag per field of `model`, with its description and default; unset flags stay None."""
    for name, info in model.model_fields.items():
        default = "" if info.default is None else f" (default {info.default!r})"
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            default=None,
            help=f"{(info.description or name).rstrip('.')}{default}",
            **_flag_kwargs(info.annotation),
        )


def model_values(args: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:
    """The fields of `model` given on the command line (flags left unset are absent, not None)."""
    return {name: getattr(args, name) for name in model.model_fields if getattr(args, name, None) is not None}


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """--backend: the engine that runs the network (dogclf.backends.select.choose_backend)."""
    from dogclf.backends.select import CHOICES

    parser.add_argument(
        "--backend",
        default="auto",
        choices=CHOICES,
        help="engine for the network: auto (the model's gated export when its engine is installed, else eager), "
        "eager, compile (torch.compile), openvino, onnx, or an export by name (default auto)",
    )
