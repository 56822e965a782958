"""Callbacks that a run's config asks for (debug hooks, profiler), built lazily."""

from __future__ import annotations

from dogclf.config import RunConfig
from dogclf.training.callbacks import Callback
from dogclf.training.rundir import RunPaths


def callbacks_from_config(cfg: RunConfig, paths: RunPaths) -> list[Callback]:
    """Debug and profile callbacks enabled in `cfg`."""
    callbacks: list[Callback] = []
    if cfg.profile.enabled:
        from dogclf.profile.callbacks import make_callbacks as profile_callbacks

        callbacks += profile_callbacks(cfg, paths)
    if cfg.debug.enabled or cfg.debug.live_rules:
        from dogclf.debug.callbacks import make_callbacks as debug_callbacks

        callbacks += debug_callbacks(cfg, paths)
    return callbacks
