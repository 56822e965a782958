"""Layout of a run directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    """runs/<name>/: config, metrics, plots, checkpoints, model artifact, and the debug and profile folders."""

    root: Path

    @property
    def config(self) -> Path:
        """The run's config; resuming refuses changes to it that would change results."""
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        """One JSON line of metrics per epoch."""
        return self.root / "metrics.jsonl"

    @property
    def summary(self) -> Path:
        """What the run ended with: best epoch, metrics, per-split evaluation, runtime."""
        return self.root / "summary.json"

    @property
    def bad_images(self) -> Path:
        """Bad images the run skipped, one `path<TAB>reason` per line."""
        return self.root / "bad_images.txt"

    @property
    def plots(self) -> Path:
        """Training curves and per-split confusion matrices."""
        return self.root / "plots"

    @property
    def tensorboard(self) -> Path:
        """TensorBoard event files (a SageMaker job relocates them to its synced output path)."""
        return self.root / "tensorboard"

    @property
    def model(self) -> Path:
        """The model artifact (best weights + metadata) that evaluate, predict and serve load."""
        return self.root / "model"

    @property
    def checkpoints(self) -> Path:
        """The resumable last checkpoint and the best weights."""
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        """Full training state after the latest epoch, for resuming."""
        return self.checkpoints / "last.pt"

    @property
    def best_weights(self) -> Path:
        """Weights of the best epoch so far, which the artifact is built from."""
        return self.checkpoints / "best.pt"

    @property
    def debug(self) -> Path:
        """Debugger tensors, class counts and live rule results (the debug plug-in writes them)."""
        return self.root / "debug"

    @property
    def profile(self) -> Path:
        """Step timings, system samples, traces and rule results (the profiler plug-in writes them)."""
        return self.root / "profile"
