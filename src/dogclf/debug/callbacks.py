"""Trainer callbacks built from the debug config: the smdebug hook and live rules that stop a hopeless run."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.debug.config import DebugConfig
from dogclf.debug.hook import CLASS_COUNTS_TENSOR, SAGEMAKER_HOOK_CONFIG, VALID_LOSS_TENSOR
from dogclf.fsutil import atomic_write_text
from dogclf.training.callbacks import Callback
from dogclf.training.rundir import RunPaths

if TYPE_CHECKING:
    from dogclf.training.loop import Trainer, TrainResult

log = logging.getLogger("dogclf")

CLASS_COUNTS_FILE = "class_counts.json"
LIVE_RULES_FILE = "live_rules.json"


class DebugHookCallback(Callback):
    """Creates and drives the smdebug hook: modes per phase, validation loss, class counts, live rules."""

    def __init__(self, cfg: DebugConfig, paths: RunPaths, sagemaker_config: Path = SAGEMAKER_HOOK_CONFIG) -> None:
        self.cfg, self.paths, self.sagemaker_config = cfg, paths, sagemaker_config
        self.hook: Any = None
        self.gradients = None

    def on_train_start(self, trainer: Trainer) -> None:
        """Create the hook, attach it to model and loss, and save the training set's class counts."""
        import numpy as np

        from dogclf.debug.hook import attach, create_hook

        if not (trainer.is_main or self.sagemaker_config.exists()):
            return  # locally, rank 0 alone writes tensors
        self.hook = create_hook(self.cfg, self.paths.debug, self.sagemaker_config)
        if self.hook is None:
            return
        self.gradients = attach(self.hook, trainer.model, trainer.criterion, self.cfg)
        counts = trainer.layout.counts()
        if trainer.is_main:
            self.paths.debug.mkdir(parents=True, exist_ok=True)
            classes = {"classes": trainer.layout.classes, "counts": counts}
            atomic_write_text(self.paths.debug / CLASS_COUNTS_FILE, json.dumps(classes, indent=2))
        self.hook.save_tensor(CLASS_COUNTS_TENSOR, np.asarray(counts["train"], dtype=np.float32), "dataset")

    def on_phase_start(self, trainer: Trainer, phase: str) -> None:
        """Switch the hook's mode to the phase's; on 'train', pick up gradients of newly unfrozen layers."""
        if self.hook is None:
            return
        import smdebug.pytorch as smd

        mode = {"train": smd.modes.TRAIN, "valid": smd.modes.EVAL}.get(phase, smd.modes.PREDICT)
        self.hook.set_mode(mode)
        if phase == "train" and self.gradients.refresh():
            log.info("debug hook: gradients of newly unfrozen parameters are now saved")

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """Save the validation loss, then run the live rules, which may stop training."""
        if self.hook is None:
            return
        import torch

        # The evaluation loop computes its loss functionally: save the epoch's validation loss explicitly.
        self.hook.record_tensor_value(VALID_LOSS_TENSOR, torch.tensor(float(record["valid"]["loss"])))
        if self.cfg.live_rules and trainer.is_main:
            self._live_rules(trainer)

    def _live_rules(self, trainer: Trainer) -> None:
        from dogclf.debug.engine import evaluate_rules

        self.hook._close_writers()  # flush this step's event files so the trial sees them
        results = evaluate_rules(Path(self.hook.out_dir), self.cfg.rule_parameters)
        atomic_write_text(self.paths.debug / LIVE_RULES_FILE, json.dumps([r.to_dict() for r in results], indent=2))
        fired = [r for r in results if r.triggered and r.rule in self.cfg.live_stop_on]
        for r in fired:
            log.warning("rule %s fired at step %s: %s; stopping training. %s", r.rule, r.step, r.finding, r.advice)
        if fired:
            trainer.should_stop = True

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        """Close the hook, flushing its files."""
        if self.hook is not None:
            self.hook.close()
            self.hook = None


def make_callbacks(cfg, paths: RunPaths) -> list[Callback]:
    """Callbacks for cfg.debug: the hook callback (live rules run inside it, after the validation loss)."""
    return [DebugHookCallback(cfg.debug, paths)]
