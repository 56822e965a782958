"""Shared CLI option helpers: config overrides from flags."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any

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
