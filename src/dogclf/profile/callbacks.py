"""Trainer callbacks built from the profile config."""

from __future__ import annotations

from dogclf.train.callbacks import Callback
from dogclf.train.rundir import RunPaths


def make_callbacks(cfg, paths: RunPaths) -> list[Callback]:
    """Callbacks for cfg.profile (none yet)."""
    return []
