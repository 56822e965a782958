"""Training: the loop, metrics contract, checkpoints and callbacks (submodules load on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Callback": "dogclf.training.callbacks",
    "Trainer": "dogclf.training.loop",
    "TrainResult": "dogclf.training.loop",
    "train": "dogclf.training.loop",
    "format_metric_line": "dogclf.training.metrics",
    "metric_definitions": "dogclf.training.metrics",
    "parse_metric_lines": "dogclf.training.metrics",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from dogclf.training.callbacks import Callback
    from dogclf.training.loop import Trainer, TrainResult, train
    from dogclf.training.metrics import format_metric_line, metric_definitions, parse_metric_lines


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dogclf.training' has no attribute {name!r}")
