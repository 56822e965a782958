"""MLflow runs: a training run's params, epoch metrics, plots and model; a study as a parent run of its trials.

Everything goes through an explicit `MlflowClient`, so a caller's active fluent run is left alone (a training
run started inside one becomes its child). The URI is passed through as given: a path, sqlite:///..., a server,
or a SageMaker managed MLflow tracking server ARN (which needs the `sagemaker-mlflow` plugin installed).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.extras import require
from dogclf.tracking.config import TrackingConfig
from dogclf.tracking.tensorboard import COUNTS
from dogclf.training.callbacks import Callback, TrainContext
from dogclf.training.resume import flatten
from dogclf.training.rundir import RunPaths

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from dogclf.config import RunConfig
    from dogclf.training.result import TrainResult

log = logging.getLogger("dogclf")

PARENT_TAG = "mlflow.parentRunId"
RUN_DIR_TAG = "dogclf.run_dir"
STUDY_TAG = "dogclf.study"
TRIAL_TAG = "dogclf.trial"
_BATCH = 100  # MLflow accepts at most 100 params per log_batch call


def connect(cfg: TrackingConfig) -> tuple[MlflowClient, str]:
    """A client for the config's tracking URI and the id of its experiment (created when missing)."""
    mlflow = require("mlflow", "mlflow", "tracking.mlflow needs mlflow")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=cfg.tracking_uri())
    found = client.get_experiment_by_name(cfg.experiment_name)
    experiment_id = found.experiment_id if found else client.create_experiment(cfg.experiment_name)
    log.info("mlflow: experiment %r at %s", cfg.experiment_name, client.tracking_uri or mlflow.get_tracking_uri())
    return client, experiment_id


def config_params(cfg: RunConfig) -> dict[str, str]:
    """The flattened config as MLflow params (dotted keys, string values, unset ones left out)."""
    return {k: str(v) for k, v in flatten(cfg.model_dump(mode="json")).items() if v is not None}


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    """Log params in batches of at most 100."""
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for start in range(0, len(items), _BATCH):
        client.log_batch(run_id, params=items[start : start + _BATCH])


def log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    """Log finite metrics at `step` in one call."""
    import math
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None and math.isfinite(float(v))]
    if items:
        client.log_batch(run_id, metrics=items)


def epoch_metrics(record: dict[str, Any]) -> dict[str, float]:
    """train_loss, valid_top1, ..., lr and epoch_seconds of one epoch record."""
    phases = [(p, k, v) for p in ("train", "valid") for k, v in record.get(p, {}).items()]
    out = {f"{p}_{k}": float(v) for p, k, v in phases if k not in COUNTS and v is not None}
    out.update(lr=float(record["lr"]), epoch_seconds=float(record["seconds"]))
    return out


def active_parent_tags() -> dict[str, str]:
    """The parent tag for a run started inside the caller's active fluent MLflow run."""
    import mlflow

    active = mlflow.active_run()
    return {PARENT_TAG: active.info.run_id} if active else {}


class MlflowCallback(Callback):
    """One MLflow run per training run: params, per-epoch metrics, final metrics, plots and the model (rank 0)."""

    def __init__(self, cfg: TrackingConfig) -> None:
        self.cfg = cfg
        self.client: Any = None
        self.run_id = ""

    def on_train_start(self, ctx: TrainContext) -> None:
        """Create the run and log the flattened config as its params."""
        if not ctx.is_main:
            return
        self.client, experiment_id = connect(self.cfg)
        name = ctx.config.name or ctx.run_root.name
        tags = {RUN_DIR_TAG: str(ctx.run_root.resolve()), **active_parent_tags()}
        self.run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        log_params(self.client, self.run_id, config_params(ctx.config))

    def on_epoch_end(self, ctx: TrainContext, record: dict[str, Any]) -> None:
        """The epoch's metrics, with the epoch as step."""
        if self.client is not None:
            log_metrics(self.client, self.run_id, epoch_metrics(record), record["epoch"])

    def on_train_end(self, ctx: TrainContext, result: TrainResult) -> None:
        """Final valid/test metrics, the plots and the model artifact folder; then end the run."""
        if self.client is None:
            return
        final = {f"final_valid_{k}": v for k, v in result.valid.items() if k not in COUNTS}
        final.update({f"test_{k}": v for k, v in (result.test or {}).items() if k not in COUNTS})
        log_metrics(self.client, self.run_id, {**final, "best_epoch": result.best_epoch}, len(result.history))
        plots = RunPaths(ctx.run_root).plots
        if plots.is_dir():
            self.client.log_artifacts(self.run_id, str(plots), "plots")
        if Path(result.artifact_dir).is_dir():
            self.client.log_artifacts(self.run_id, str(result.artifact_dir), "model")
        self.client.set_terminated(self.run_id, "FINISHED")
        self.client = None
