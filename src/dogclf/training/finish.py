"""The Trainer's finishing work: the final evaluation of the best weights, calibration, artifact, plots, summary."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

from dogclf import timings
from dogclf.artifact import ArtifactMetadata, runtime_versions, save_artifact
from dogclf.calibration import decide_temperature
from dogclf.data.splits import SPLITS_FILE, SplitRecord
from dogclf.evaluation import EvalResult
from dogclf.fsutil import atomic_write_text
from dogclf.training.checkpoint import load_checkpoint
from dogclf.training.forward import evaluation_model, has_hooks
from dogclf.training.result import TrainResult
from dogclf.training.stability import warn_jumps

if TYPE_CHECKING:
    from torch import nn

    from dogclf.config import RunConfig
    from dogclf.data.check import BadImage
    from dogclf.data.discovery import DatasetLayout
    from dogclf.data.preprocess import Preprocess
    from dogclf.runtime import Runtime
    from dogclf.training.best import BestEpoch
    from dogclf.training.rundir import RunPaths

log = logging.getLogger("dogclf")


class FinishingRun(Protocol):
    """What the finishing work reads and calls of dogclf.training.loop.Trainer after its epochs."""

    cfg: RunConfig
    paths: RunPaths
    runtime: Runtime
    model: nn.Module
    layout: DatasetLayout
    preprocess: Preprocess
    fingerprint: str
    bad_images: list[BadImage]
    num_classes: int
    eval_sets: dict[str, Any]
    history: list[dict]
    best: BestEpoch
    best_valid: tuple[int, EvalResult] | None
    fast_reason: str | None
    is_main: bool
    metrics_only: bool
    temperature_note: str | None
    unstable_epochs: list[str]

    def notify(self, event: str, *args: Any) -> None:
        """Call `event` on every callback."""

    def emit(self, epoch: int, phase: str, values: dict[str, float], extra: dict | None = None) -> None:
        """Print one metric line (rank 0)."""

    def training_model(self) -> nn.Module:
        """What trains: the frozen-backbone forward when it is used."""

    def evaluate_split(self, split: str, model: nn.Module | None = None) -> EvalResult:
        """Evaluate `model` on one split."""


def finish(trainer: FinishingRun) -> TrainResult:
    """After the epochs: rank 0 evaluates the best weights on every split, calibrates, writes the outputs."""
    # Rank 0 alone evaluates the best weights (its checkpoints may be on another node).
    if not trainer.is_main or trainer.metrics_only:
        valid = trainer.history[-1]["valid"] if trainer.history else {}
        if trainer.metrics_only and trainer.best.best_epoch:
            valid = trainer.history[trainer.best.best_epoch - 1]["valid"]
        paths = trainer.paths
        result = TrainResult(paths.root, paths.model, trainer.history, trainer.best.best_epoch, valid, None)
        trainer.notify("on_train_end", result)
        return result
    timings.mark("final_eval_start")
    results = final_results(trainer)
    timings.mark("final_eval_done")
    trainer.temperature_note = calibrate(results, trainer.cfg.model.calibrate)
    test = results["test"].metrics() if "test" in results else None
    if test is not None:
        trainer.emit(trainer.best.best_epoch, "test", test)
    valid = results["valid"].metrics()
    trainer.unstable_epochs = warn_jumps([h["valid"]["loss"] for h in trainer.history], trainer.num_classes)
    paths, best, bad = trainer.paths, trainer.best.best_epoch, trainer.bad_images
    result = TrainResult(paths.root, paths.model, trainer.history, best, valid, test, bad, trainer.unstable_epochs)
    write_outputs(trainer, results)
    timings.mark("outputs_written")
    trainer.notify("on_train_end", result)
    timings.mark("train_end")
    return result


def final_results(trainer: FinishingRun) -> dict[str, EvalResult]:
    """Every eval split under the best weights, through the model as served (batch norms folded, weights cast).

    The frozen-backbone forward is that model already: the best epoch's valid pass through it is reused.
    When hooks watch the model (the debug hook), the model itself runs, so that they see the passes.
    """
    if trainer.paths.best_weights.exists():
        trainer.model.load_state_dict(load_checkpoint(trainer.paths.best_weights))
    kept = trainer.best_valid[1] if trainer.best_valid and trainer.best_valid[0] == trainer.best.best_epoch else None
    if trainer.fast_reason is None:
        model = trainer.training_model()  # the frozen-backbone forward
    else:
        model = trainer.model if has_hooks(trainer.model) else evaluation_model(trainer.model, trainer.runtime)
    return {
        split: kept if split == "valid" and kept is not None else trainer.evaluate_split(split, model)
        for split in trainer.eval_sets
    }


def calibrate(results: dict[str, EvalResult], enabled: bool) -> str | None:
    """Fit one temperature on the valid logits (model.calibrate), give it to every split's result; its note."""
    valid = results["valid"]
    if not enabled or valid.logits is None:
        return None
    temperature, note = decide_temperature(valid.logits, valid.targets)
    log.info("%s", note)
    valid.in_sample = temperature != 1.0
    for r in results.values():
        r.temperature = temperature
    return note


def write_outputs(trainer: FinishingRun, results: dict[str, EvalResult]) -> None:
    """The artifact, bad-image list, plots (matplotlib loads here) and summary.json of a finished run."""
    from dogclf import plots

    metrics = {
        f"{split}_{k}": float(v) for split, r in results.items() for k, v in r.metrics().items() if v is not None
    }
    meta = ArtifactMetadata(
        arch=trainer.cfg.model.arch,
        num_classes=trainer.num_classes,
        class_names=trainer.layout.classes,
        class_folders=trainer.layout.class_folders,
        dropout=trainer.cfg.model.dropout,
        preprocess=trainer.preprocess,
        metrics=metrics,
        temperature=results["valid"].temperature,
        temperature_note=trainer.temperature_note,
        dataset_fingerprint=trainer.fingerprint,
        run_name=trainer.cfg.name or trainer.paths.root.name,
        versions=runtime_versions(),
    )
    record = SplitRecord.of(trainer.layout)
    save_artifact(trainer.paths.model, trainer.model, meta, {SPLITS_FILE: record.to_json()})
    if trainer.bad_images:
        atomic_write_text(trainer.paths.bad_images, "".join(f"{b.path}\t{b.reason}\n" for b in trainer.bad_images))
    if trainer.history:
        plots.plot_curves(trainer.history, trainer.paths.plots / "curves.png")
    for split, r in results.items():
        plots.plot_confusion(
            r.confusion, r.class_names, trainer.paths.plots / f"confusion_{split}.png", f"{split} confusion"
        )
        plots.plot_reliability(r.calibration(), trainer.paths.plots / f"reliability_{split}.png", split)
    summary = {
        "best_epoch": trainer.best.best_epoch,
        "epochs_run": len(trainer.history),
        "metrics": metrics,
        "temperature_note": trainer.temperature_note,
        "unstable_epochs": trainer.unstable_epochs,
        "evaluation": {s: r.to_dict() for s, r in results.items()},
        "runtime": trainer.runtime.describe(),
        "bad_images": [{"path": str(b.path), "reason": b.reason} for b in trainer.bad_images],
    }
    atomic_write_text(trainer.paths.summary, json.dumps(summary, indent=2))
