"""MLflow runs: a training run's params, epoch metrics, plots and model; a study as a parent run of its trials.

Everything goes through an explicit `MlflowClient`, so a caller's active fluent run is left alone (a training
run started inside one becomes its child). The URI is passed through as given: sqlite:///..., a server, or a
SageMaker managed MLflow tracking server ARN (which needs the `sagemaker-mlflow` plugin installed); MLflow's
file store (a plain path) is refused before training unless MLFLOW_ALLOW_FILE_STORE allows it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from dogclf.errors import ConfigError
from dogclf.extras import require
from dogclf.tracking.config import MLFLOW_URI_ENV, TrackingConfig
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
SQLITE = "sqlite:///"
ARTIFACTS_BESIDE_DATABASE = "mlartifacts"  # the folder `mlflow server` uses by default


def check_store(cfg: TrackingConfig) -> None:
    """Refuse, before anything runs, a tracking URI that MLflow 3 refuses: its file store (a path or file://)."""
    require("mlflow", "mlflow", "tracking.mlflow needs mlflow")
    from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE

    uri = cfg.tracking_uri()
    scheme = urlparse(uri).scheme if uri else "none"
    if scheme in ("", "file") and not MLFLOW_ALLOW_FILE_STORE.get():
        source = "tracking.mlflow_uri" if cfg.mlflow_uri else MLFLOW_URI_ENV
        raise ConfigError(
            f"{source} {uri!r} is an MLflow file store, which MLflow 3 refuses: use a database such as "
            "sqlite:///mlflow.db or a tracking server (or set MLFLOW_ALLOW_FILE_STORE=true)"
        )


def artifact_location(cfg: TrackingConfig, uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: tracking.mlflow_artifacts, else beside a sqlite database.

    None leaves it to the store (a tracking server's own location). MLflow's own default for a sqlite store
    is ./mlruns in whatever folder the process happens to run in.
    """
    if cfg.mlflow_artifacts:
        explicit = cfg.mlflow_artifacts
        return explicit if "://" in explicit else Path(explicit).resolve().as_uri()
    database = uri.removeprefix(SQLITE).split("?", 1)[0] if uri.startswith(SQLITE) else ""
    if database in ("", ":memory:"):
        return None
    return (Path(database).resolve().parent / ARTIFACTS_BESIDE_DATABASE).as_uri()


def connect(cfg: TrackingConfig) -> tuple[MlflowClient, str]:
    """A client for the config's tracking URI and the id of its experiment (created when missing)."""
    mlflow = require("mlflow", "mlflow", "tracking.mlflow needs mlflow")
    from mlflow.tracking import MlflowClient

    check_store(cfg)
    uri = cfg.tracking_uri() or mlflow.get_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(cfg.experiment_name)
    if found is None:
        created = client.create_experiment(cfg.experiment_name, artifact_location=artifact_location(cfg, uri))
        found = client.get_experiment(created)
    log.info("mlflow: experiment %r at %s, artifacts in %s", cfg.experiment_name, uri, found.artifact_location)
    return client, found.experiment_id


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
