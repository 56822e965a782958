"""Training: the loop, metrics contract, checkpoints and callbacks."""

from dogclf.train.callbacks import Callback
from dogclf.train.loop import Trainer, TrainResult, train
from dogclf.train.metrics import format_metric_line, metric_definitions, parse_metric_lines

__all__ = ["Callback", "TrainResult", "Trainer", "format_metric_line", "metric_definitions", "parse_metric_lines", "train"]
