"""Training as users run it: the config's debug, profile and tracking callbacks assembled above the Trainer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dogclf.config import RunConfig

if TYPE_CHECKING:
    from dogclf.training.callbacks import Callback
    from dogclf.training.result import TrainResult
    from dogclf.training.rundir import RunPaths


def config_callbacks(cfg: RunConfig) -> list[Callback]:
    """The profiler, debugger and tracking callbacks that `cfg` enables, in that order (imported only when enabled)."""
    callbacks: list[Callback] = []
    if cfg.profile.enabled:
        from dogclf.profile.callbacks import make_callbacks as profile_callbacks

        callbacks += profile_callbacks(cfg)
    if cfg.debug.enabled or cfg.debug.live_rules:
        from dogclf.debug.callbacks import make_callbacks as debug_callbacks

        callbacks += debug_callbacks(cfg)
    if cfg.tracking.tensorboard or cfg.tracking.mlflow_enabled():
        from dogclf.tracking.callbacks import make_callbacks as tracking_callbacks

        callbacks += tracking_callbacks(cfg)
    return callbacks


def train(
    cfg: RunConfig,
    output: str | Path,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    paths: RunPaths | None = None,
    metrics_only: bool = False,
    evaluate_test: bool = True,
) -> TrainResult:
    """Train `cfg` into the run folder `output` (see Trainer); the config's callbacks run before `callbacks`.

    `metrics_only` (tuning trials) keeps metrics.jsonl and skips checkpoints, the artifact and the test split;
    `evaluate_test=False` (SageMaker tuning trials) keeps everything but the test split.
    """
    from dogclf.training.loop import Trainer

    configured = config_callbacks(cfg)
    trainer = Trainer(cfg, output, resume, [*configured, *callbacks], paths, metrics_only, evaluate_test)
    return trainer.fit()
