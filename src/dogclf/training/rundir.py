"""Layout of a run directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    """runs/<name>/: config, metrics, plots, checkpoints, model artifact."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def bad_images(self) -> Path:
        return self.root / "bad_images.txt"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best_weights(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def debug(self) -> Path:
        return self.root / "debug"

    @property
    def profile(self) -> Path:
        return self.root / "profile"
