"""What a tuning trial trains, wherever it runs (`dogclf tune`, the quickstart, the examples, a SageMaker HPO job)."""

from __future__ import annotations

from typing import Any

from dogclf.config import RunConfig, build_config

# A trial keeps its metrics only: it pays for no debugger hook, live rules or profiler.
TRIAL_SETTINGS: dict[str, Any] = {"debug.enabled": False, "debug.live_rules": False, "profile.enabled": False}
# A local trial writes no tracking files of its own: the study logs each trial as an MLflow child run.
LOCAL_TRIAL_TRACKING: dict[str, Any] = {"tracking.tensorboard": False, "tracking.mlflow": False}


def tuning_config(cfg: RunConfig, epochs: int) -> RunConfig:
    """What every tuning trial trains: `cfg` itself, shortened to `epochs` epochs, with TRIAL_SETTINGS.

    The best lr and batch size are applied to `cfg` afterwards, so trials must optimize what `cfg` optimizes.
    With a frozen pretrained backbone (freeze=backbone, or the head stage of freeze=staged) trials train only
    the head, with augmentation off, so they run from cached backbone features in seconds; the tuner records
    and prints these differences from the final run (best.json "differences"). The head stage of a
    random-init backbone says nothing about the lr of the staged training that follows (measured on the
    sample data: the head-stage winner, lr 1e-3, left staged training at 0.63 valid top-1, against 1.0 with
    lr 2e-2), so then the trials are short runs of the staged training itself, like those of freeze=nothing.
    """
    trial: dict[str, Any] = {"optim.epochs": epochs, **TRIAL_SETTINGS}
    frozen = cfg.model.freeze == "backbone" or (cfg.model.freeze == "staged" and cfg.model.weights is not None)
    if frozen:
        trial.update({"model.freeze": "backbone", "data.augment": False})
    return build_config(overrides=trial, base=cfg.model_dump(mode="json"))
