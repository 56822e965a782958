"""Trainer callbacks built from the debug config: the smdebug hook and live rules that stop a hopeless run."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.debug.config import TRAIN_LOSS_TENSOR, VALID_CONFUSION_TENSOR, DebugConfig
from dogclf.debug.hook import CLASS_COUNTS_TENSOR, SAGEMAKER_HOOK_CONFIG, VALID_LOSS_TENSOR, attach, create_hook
from dogclf.fsutil import atomic_write_text
from dogclf.training.callbacks import Callback, TrainContext
from dogclf.training.metrics import format_rule_line
from dogclf.training.rundir import RunPaths

if TYPE_CHECKING:
    from dogclf.config import RunConfig
    from dogclf.training.result import TrainResult

log = logging.getLogger("dogclf")

CLASS_COUNTS_FILE = "class_counts.json"
LIVE_RULES_FILE = "live_rules.json"


def debug_folder(run_root: Path) -> Path:
    """Debugger tensors, class counts and live rule results of the run in `run_root`."""
    return RunPaths(run_root).debug


class DebugHookCallback(Callback):
    """Creates and drives the smdebug hook: modes per phase, validation loss, class counts, live rules."""

    def __init__(self, cfg: DebugConfig, sagemaker_config: Path = SAGEMAKER_HOOK_CONFIG) -> None:
        self.cfg, self.sagemaker_config = cfg, sagemaker_config
        self.folder: Path | None = None
        self.local = False  # the hook writes to RUN/debug (not SageMaker's tensor folder)
        self.hook: Any = None
        self.gradients = None

    def on_train_start(self, ctx: TrainContext) -> None:
        """Create the hook, attach it to model and loss, and save the training set's class counts."""
        import numpy as np

        from dogclf.debug import resume

        if not (ctx.is_main or self.sagemaker_config.exists()):
            return  # locally, rank 0 alone writes tensors
        self.folder = debug_folder(ctx.run_root)
        self.local = not self.sagemaker_config.exists()
        # The run folder holds a debug folder only when resuming (the Trainer refuses others).
        state = resume.prepare_folder(self.folder, ctx.epoch) if self.local and self.folder.exists() else None
        self.hook = create_hook(self.cfg, self.folder, self.sagemaker_config)
        if self.hook is None:
            return
        if state is not None:
            resume.restore(self.hook, state)
        self.gradients = attach(self.hook, ctx.model, ctx.criterion, self.cfg)
        if ctx.is_main:
            self.folder.mkdir(parents=True, exist_ok=True)
            classes = {"classes": ctx.class_names, "counts": ctx.class_counts}
            atomic_write_text(self.folder / CLASS_COUNTS_FILE, json.dumps(classes, indent=2))
        if state is None:  # a resumed run saved them at its start
            counts = np.asarray(ctx.class_counts["train"], dtype=np.float32)
            self.hook.save_tensor(CLASS_COUNTS_TENSOR, counts, "dataset")

    def on_phase_start(self, ctx: TrainContext, phase: str) -> None:
        """Switch the hook's mode to the phase's; on 'train', pick up gradients of newly unfrozen layers."""
        if self.hook is None:
            return
        import smdebug.pytorch as smd

        mode = {"train": smd.modes.TRAIN, "valid": smd.modes.EVAL}.get(phase, smd.modes.PREDICT)
        self.hook.set_mode(mode)
        if phase == "train" and self.gradients.refresh():
            log.info("debug hook: gradients of newly unfrozen parameters are now saved")

    def on_epoch_end(self, ctx: TrainContext, record: dict[str, Any]) -> None:
        """Save the valid loss, the epoch's plain-CE train loss and the valid confusion; run the live rules."""
        if self.hook is None:
            return
        import torch

        # The evaluation loop computes its loss functionally: save the epoch's validation loss explicitly, with
        # the train loss of the same kind (plain CE, whatever the training objective) for the Overfit rule.
        self.hook.record_tensor_value(VALID_LOSS_TENSOR, torch.tensor(float(record["valid"]["loss"])))
        self.hook.record_tensor_value(TRAIN_LOSS_TENSOR, torch.tensor(float(record["train"]["loss"])))
        if ctx.valid_confusion:
            confusion = torch.tensor(ctx.valid_confusion, dtype=torch.float32)
            self.hook.record_tensor_value(VALID_CONFUSION_TENSOR, confusion)
        self.hook._close_writers()  # the epoch's tensors are on disk before its checkpoint is
        if self.local:
            from dogclf.debug.resume import record_epoch

            record_epoch(self.folder, ctx.epoch, self.hook)
        if self.cfg.live_rules and ctx.is_main and self._live_rules_fired():
            ctx.request_stop()

    def _live_rules_fired(self) -> bool:
        """Evaluate the live rules on what the hook saved so far; True when one of `live_stop_on` fired."""
        from dogclf.debug.engine import evaluate_rules

        results = evaluate_rules(Path(self.hook.out_dir), self.cfg.rule_parameters)
        atomic_write_text(self.folder / LIVE_RULES_FILE, json.dumps([r.to_dict() for r in results], indent=2))
        for r in results:
            print(format_rule_line(r.rule, r.status, r.step), flush=True)
        fired = [r for r in results if r.triggered and r.rule in self.cfg.live_stop_on]
        for r in fired:
            log.warning("rule %s fired at step %s: %s; stopping training. %s", r.rule, r.step, r.finding, r.advice)
        return bool(fired)

    def on_train_end(self, ctx: TrainContext, result: TrainResult) -> None:
        """Close the hook, flushing its files."""
        if self.hook is not None:
            self.hook.close()
            self.hook = None


def make_callbacks(cfg: RunConfig) -> list[Callback]:
    """Callbacks for cfg.debug: the hook callback (live rules run inside it, after the validation loss)."""
    return [DebugHookCallback(cfg.debug)]
