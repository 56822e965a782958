"""Config section for experiment tracking (TensorBoard, MLflow)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

MLFLOW_URI_ENV = "MLFLOW_TRACKING_URI"
DEFAULT_EXPERIMENT = "dogclf"


class TrackingConfig(BaseModel):
    """Where a run reports its metrics; changing it never changes results, so a run may resume with other settings.

    TensorBoard is on by default: when the tensorboard package is missing the run logs one warning and trains on.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    tensorboard: bool = Field(
        True,
        description="TensorBoard event files in RUN/tensorboard/ (in a SageMaker job /opt/ml/output/tensorboard).",
    )
    mlflow: bool | None = Field(
        None, description="Log params, metrics, plots and model to MLflow; null: on when MLFLOW_TRACKING_URI is set."
    )
    mlflow_uri: str | None = Field(
        None,
        description="MLflow tracking URI (sqlite:///..., http(s)://, SageMaker MLflow ARN; a plain path or file:// "
        "only with MLFLOW_ALLOW_FILE_STORE=true); default MLFLOW_TRACKING_URI, else MLflow's local default.",
    )
    mlflow_artifacts: str | None = Field(
        None,
        description="Artifact location (folder or URI) of an experiment dogclf creates; default mlartifacts/ "
        "beside a sqlite database, else the tracking server's own.",
    )
    experiment: str | None = Field(None, description="MLflow experiment name (default 'dogclf').")

    def mlflow_enabled(self, environ: Mapping[str, str] | None = None) -> bool:
        """Whether runs log to MLflow: as set, or (when unset) whenever MLFLOW_TRACKING_URI is set."""
        env = os.environ if environ is None else environ
        return bool(env.get(MLFLOW_URI_ENV)) if self.mlflow is None else self.mlflow

    def tracking_uri(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The MLflow URI to use: mlflow_uri, else MLFLOW_TRACKING_URI, else None (MLflow's default)."""
        env = os.environ if environ is None else environ
        return self.mlflow_uri or env.get(MLFLOW_URI_ENV) or None

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment runs are logged to."""
        return self.experiment or DEFAULT_EXPERIMENT
