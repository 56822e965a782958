"""Shared CLI option helpers: config overrides from flags."""

from __future__ import annotations

import argparse
import inspect
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

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


@dataclass(frozen=True)
class Flag:
    """How an option-model field is spelled on the command line, where not `--field-name`."""

    name: str | None = None  # e.g. "--max-run" for max_run_s; "--no-X" turns a bool field off
    metavar: str | None = None
    choices: tuple[str, ...] | None = None  # for a str field whose values another module lists


def _unwrap(annotation: Any) -> Any:
    """The annotation with Optional removed."""
    if get_origin(annotation) in (Union, types.UnionType):
        return next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def _flag_kwargs(annotation: Any, flag: str) -> dict[str, Any]:
    """The argparse type, choices or action for a pydantic field's annotation (Optional unwrapped)."""
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin is Literal:
        return {"choices": list(get_args(annotation))}
    if annotation is bool:
        return {"action": "store_const", "const": not flag.startswith("--no-")}
    if origin is tuple:
        return {"action": "append", "type": get_args(annotation)[0]}
    if origin is dict:
        return {"action": "append", "metavar": "KEY=VALUE", "type": _key_value}
    return {"type": annotation}


def _default_text(value: Any) -> str:
    """' (default X)' for a field's default; nothing where there is none to show."""
    if value is None or value is False or value in ((), {}):
        return ""
    if isinstance(value, tuple):
        return f" (default {','.join(map(str, value))})"
    return f" (default {value})"


def _help(info: FieldInfo, name: str, flag: str) -> str:
    """The field's description with its default; a `--no-X` flag says it turns the field off."""
    text = (info.description or name).rstrip(".")
    if flag.startswith("--no-"):
        return f"turn off: {text[0].lower()}{text[1:]}"
    if get_origin(_unwrap(info.annotation)) is tuple:
        text += "; repeatable or comma-separated"
    if get_origin(_unwrap(info.annotation)) is dict:
        text += "; repeatable"
    return text if info.is_required() else text + _default_text(info.get_default(call_default_factory=True))


def add_model_options(
    parser: argparse.ArgumentParser, model: type[BaseModel], fields: Mapping[str, Flag] | None = None
) -> None:
    """A flag per field of `model` (or per name in `fields`), with its description and default; unset flags stay None.

    Fields without a default are required flags. The flag's destination is the field's name (`model_values`).
    """
    for name in fields if fields is not None else model.model_fields:
        info = model.model_fields[name]
        spec = (fields or {}).get(name) or Flag()
        flag = spec.name or f"--{name.replace('_', '-')}"
        kwargs = _flag_kwargs(info.annotation, flag)
        if spec.choices is not None:
            kwargs["choices"] = list(spec.choices)
        if spec.metavar is not None:
            kwargs["metavar"] = spec.metavar
        elif kwargs.get("action") != "store_const" and "choices" not in kwargs and "metavar" not in kwargs:
            kwargs["metavar"] = flag.removeprefix("--").replace("-", "_").upper()
        parser.add_argument(
            flag, dest=name, default=None, required=info.is_required(), help=_help(info, name, flag), **kwargs
        )


def _key_value(item: str) -> tuple[str, str]:
    """One KEY=VALUE item (argparse names the flag when it has no '=')."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
    return key, value


def model_values(
    args: argparse.Namespace, model: type[BaseModel], fields: Iterable[str] | None = None
) -> dict[str, Any]:
    """The fields of `model` (or those named in `fields`) given on the command line; unset flags are absent.

    Repeated tuple flags are split at commas; repeated KEY=VALUE flags become a dict.
    """
    out: dict[str, Any] = {}
    for name in fields if fields is not None else model.model_fields:
        info = model.model_fields[name]
        value = getattr(args, name, None)
        if value is None:
            continue
        origin = get_origin(_unwrap(info.annotation))
        if origin is tuple:
            value = tuple(part.strip() for item in value for part in str(item).split(",") if part.strip())
        elif origin is dict:
            value = dict(value)
        out[name] = value
    return out


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
