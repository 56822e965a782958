"""Name -> architecture registry, filled by the @register_model decorator."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from dogclf.errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    """How to build an architecture and where its classifier layer lives."""

    name: str
    build: Callable[[], nn.Module]
    head: str
    imagenet_weights: Callable[[], object] | None = None


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, head: str, imagenet_weights: Callable[[], object] | None = None):
    """Decorator registering a zero-argument builder under `name`."""

    def wrap(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        _REGISTRY[name] = ModelSpec(name, build, head, imagenet_weights)
        return build

    return wrap


def list_models() -> list[str]:
    """Registered architecture names."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """Look up a name; the error lists close matches and all valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"unknown architecture {name!r}.{hint} Available: {', '.join(list_models())}") from None
