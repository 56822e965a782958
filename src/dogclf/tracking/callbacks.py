"""The Trainer callbacks the tracking config enables: TensorBoard (default on) and MLflow (when asked)."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from dogclf.extras import require

if TYPE_CHECKING:
    from dogclf.config import RunConfig
    from dogclf.training.callbacks import Callback
    from dogclf.training.rundir import RunPaths

log = logging.getLogger("dogclf")
_warned: set[str] = set()


def tensorboard_available() -> bool:
    """Whether tensorboard (a core dependency) imports; when it does not, say so once and carry on without it."""
    try:
        importlib.import_module("tensorboard")
    except ModuleNotFoundError as exc:
        if exc.name != "tensorboard":
            raise  # tensorboard is there but one of its own dependencies is broken: show the real cause
        if "tensorboard" not in _warned:
            _warned.add("tensorboard")
            log.warning(
                "tensorboard is not installed (pip install 'tensorboard>=2.19,<2.21'); training continues without "
                "TensorBoard logs (tracking.tensorboard: false hides this warning)"
            )
        return False
    return True


def make_callbacks(cfg: RunConfig, paths: RunPaths | None = None) -> list[Callback]:
    """TensorBoardCallback (into `paths.tensorboard`, default RUN/tensorboard) and MlflowCallback as enabled."""
    callbacks: list[Callback] = []
    if cfg.tracking.tensorboard and tensorboard_available():
        from dogclf.tracking.tensorboard import TensorBoardCallback

        callbacks.append(TensorBoardCallback(paths.tensorboard if paths else None))
    if cfg.tracking.mlflow_enabled():
        require("mlflow", "mlflow", "tracking.mlflow needs mlflow")  # fail before training, not after it
        from dogclf.tracking.mlflow_runs import MlflowCallback, check_store

        check_store(cfg.tracking)
        callbacks.append(MlflowCallback(cfg.tracking))
    return callbacks
