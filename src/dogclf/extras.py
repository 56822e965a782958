"""Optional dependencies: one place that turns a missing extra into an error naming what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from dogclf.errors import DogclfError


class MissingExtraError(DogclfError):
    """An optional package that this feature needs is not installed."""


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """Import `module`, or raise MissingExtraError with the `pip install 'dogclf[extra]'` line to run."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if exc.name is None or exc.name.split(".")[0] != top:
            raise  # a dependency of an installed package is broken: show the real cause
        what = feature or f"this command needs {top}"
        raise MissingExtraError(f"{what}, which is not installed: pip install 'dogclf[{extra}]'") from exc
