"""Training: the loop, metrics contract, checkpoints and callbacks (submodules load on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Callback": "dogclf.train.callbacks",
    "Trainer": "dogclf.train.loop",
    "TrainResult": "dogclf.train.loop",
    "train": "dogclf.train.loop",
    "format_metric_line": "dogclf.train.metrics",
    "metric_definitions": "dogclf.train.metrics",
    "parse_metric_lines": "dogclf.train.metrics",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from dogclf.train.callbacks import Callback
    from dogclf.train.loop import Trainer, TrainResult, train
    from dogclf.train.metrics import format_metric_line, metric_definitions, parse_metric_lines


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dogclf.train' has no attribute {name!r}")
