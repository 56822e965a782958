"""Training: the loop, metrics contract, checkpoints and callbacks (submodules load on first use).

`train` is dogclf.workflow.train, which adds the config's debug/profile callbacks; the loop knows none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dogclf.lazy import lazy_exports

_EXPORTS = {
    "Callback": "dogclf.training.callbacks",
    "Trainer": "dogclf.training.loop",
    "TrainContext": "dogclf.training.callbacks",
    "TrainResult": "dogclf.training.result",
    "train": "dogclf.workflow",
    "format_metric_line": "dogclf.training.metrics",
    "metric_definitions": "dogclf.training.metrics",
    "parse_metric_lines": "dogclf.training.metrics",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from dogclf.training.callbacks import Callback, TrainContext
    from dogclf.training.loop import Trainer
    from dogclf.training.metrics import format_metric_line, metric_definitions, parse_metric_lines
    from dogclf.training.result import TrainResult
    from dogclf.workflow import train

__getattr__ = lazy_exports(__name__, _EXPORTS)
