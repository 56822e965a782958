"""Atomic per-epoch checkpoints that make a killed run resumable to identical results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dogclf.errors import ModelError
from dogclf.fsutil import atomic_write

# What an epoch checkpoint holds (Trainer._save_checkpoint writes them, _restore needs every one).
CHECKPOINT_KEYS = frozenset(
    {
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "rng",
        "epoch",
        "global_step",
        "history",
        "best_value",
        "best_epoch",
        "bad_epochs",
        "stopped",
        "fingerprint",
    }
)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save via a temp file + fsync + rename, so a kill never leaves half a checkpoint."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load with weights_only=True; errors name the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"cannot load checkpoint {path}: {exc}") from None
