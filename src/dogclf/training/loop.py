"""The training loop: epochs of train/valid, best-checkpoint selection, resumable, then test + artifact."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from dogclf import timings
from dogclf.artifact import ArtifactMetadata, runtime_versions, save_artifact
from dogclf.config import RunConfig, config_to_yaml, read_config_file
from dogclf.data.dataset import ImageDataset, default_workers, loader_workers, make_loader, train_batches
from dogclf.data.loading import load_dataset
from dogclf.data.preprocess import Preprocess, eval_transform, train_transform
from dogclf.data.splits import SPLITS_FILE, SplitRecord
from dogclf.errors import ConfigError, DatasetError, DogclfError, ModelError
from dogclf.evaluation import EvalResult, evaluate_loader
from dogclf.fsutil import atomic_write_text
from dogclf.models import backbone_parameters, create_model, head_parameters, set_trainable, train_mode
from dogclf.running_metrics import RunningMetrics
from dogclf.runtime import Runtime, resolve_runtime, rng_state, seed_everything, set_rng_state
from dogclf.training import distributed
from dogclf.training.balance import balanced_sampler, class_weights
from dogclf.training.batchnorm import recalibrate_before_validation
from dogclf.training.best import BestEpoch
from dogclf.training.callbacks import Callback, TrainContext
from dogclf.training.checkpoint import CHECKPOINT_KEYS, load_checkpoint, save_checkpoint
from dogclf.training.forward import (
    FrozenBackboneForward,
    evaluation_model,
    frozen_backbone_forward,
    frozen_backbone_reason,
    has_hooks,
)
from dogclf.training.metrics import format_metric_line
from dogclf.training.optim import make_optimization
from dogclf.training.result import TrainResult
from dogclf.training.resume import config_differences
from dogclf.training.rundir import RunPaths
from dogclf.training.stability import warn_jumps
from dogclf.training.step import epoch_seed, train_step

__all__ = ["Trainer", "TrainResult"]

log = logging.getLogger("dogclf")
_STEP_TIMES = ("forward_time", "backward_time", "optimizer_time")


class Trainer:
    """Fits a RunConfig into a run directory; `fit()` is resumable from the last epoch checkpoint.

    `paths` may relocate parts of the run (e.g. the artifact to SM_MODEL_DIR); under torchrun every rank
    trains its data shard and rank 0 alone writes.
    """

    def __init__(
        self,
        cfg: RunConfig,
        output: str | Path,
        resume: bool = False,
        callbacks: Sequence[Callback] = (),
        paths: RunPaths | None = None,
        metrics_only: bool = False,
        evaluate_test: bool = True,
    ) -> None:
        self.cfg = cfg
        self.paths = paths or RunPaths(Path(output))
        self.resume = resume
        # Tuning trials: metrics.jsonl only; no checkpoints, artifact, plots, and never the test split.
        self.metrics_only = metrics_only
        self.evaluate_test = evaluate_test and not metrics_only  # False: the test split is never read
        self.callbacks = list(callbacks)
        self.should_stop = False
        self.dist = distributed.info_from_env()
        if cfg.data.balance == "sampler" and self.dist.enabled:
            raise ConfigError("data.balance=sampler is not supported under torchrun; use data.balance=weights")
        self.is_main = self.dist.is_main
        self.history: list[dict] = []
        self.global_step = 0
        self.epoch = 0
        self.best = BestEpoch.from_config(cfg.optim)
        self.fast_reason: str | None = "not decided before training"  # why the fast forward is not used
        self.fast_forward: FrozenBackboneForward | None = None
        self.best_valid: tuple[int, EvalResult] | None = None  # (epoch, its valid result) of this process
        self.temperature_note: str | None = None
        self.unstable_epochs: list[str] = []

    # ----------------------------------------------------------------- setup
    def _prepare_run_dir(self) -> None:
        """Create or validate the run folder (rank 0 only)."""
        root = self.paths.root
        current = self.cfg.model_dump(mode="json")
        if self.paths.config.exists():
            if not self.resume:
                raise DogclfError(
                    f"{root} already holds a run; pass --resume to continue it or choose another --output"
                )
            try:
                saved = read_config_file(self.paths.config)
            except ConfigError as exc:
                raise ConfigError(f"cannot resume {root}: {exc}") from None
            diffs = config_differences(saved, current)
            if diffs:
                raise ConfigError(f"cannot resume {root}: config differs from the saved run: " + "; ".join(diffs))
        elif root.exists() and any(root.iterdir()) and not self.resume:
            raise DogclfError(f"{root} exists and is not empty; choose a new --output (nothing was changed)")
        # Nothing is written before the dataset has passed its checks.
        self.layout, self.bad_images, self.fingerprint = load_dataset(self.cfg)
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.paths.config, config_to_yaml(self.cfg))

    def _resume_checkpoint(self) -> dict | None:
        """The last epoch checkpoint when resuming, read by every rank."""
        if self.resume and self.paths.last_checkpoint.exists():
            return load_checkpoint(self.paths.last_checkpoint)
        return None

    def _build(self) -> None:
        cfg = self.cfg
        if not hasattr(self, "layout"):
            self.layout, self.bad_images, self.fingerprint = load_dataset(cfg)
        self.num_classes = len(self.layout.class_folders)
        self.runtime: Runtime = resolve_runtime(cfg.runtime)
        self._owns_group = distributed.setup(self.dist, self.runtime.device)
        seed_everything(cfg.runtime.seed)
        self.preprocess = Preprocess.for_size(cfg.data.image_size, cfg.data.resize_size)
        decode = self.preprocess.decode_options(cfg.data.max_image_pixels)
        self.workers = default_workers(cfg.data.num_workers)
        self.train_set = ImageDataset(
            self.layout.splits["train"], train_transform(self.preprocess, cfg.data.augment), decode
        )
        eval_tf = eval_transform(self.preprocess)
        kept = [s for s, v in self.layout.splits.items() if s != "train" and v and (s != "test" or self.evaluate_test)]
        self.eval_sets = {s: ImageDataset(self.layout.splits[s], eval_tf, decode) for s in kept}
        arch, freeze = cfg.model.arch, cfg.model.freeze
        initially = "nothing" if freeze == "nothing" else "backbone"
        model = create_model(arch, self.num_classes, cfg.model.weights, initially, cfg.model.dropout)
        self.model: nn.Module = self.runtime.prepare_model(model)
        self.steps_per_epoch = self._steps_per_epoch()
        backbone = None if freeze == "backbone" else backbone_parameters(self.model, arch)
        mult = cfg.optim.backbone_lr_mult if freeze == "staged" else 1.0
        head = head_parameters(self.model, arch)
        weights = self._class_weights()
        self.optim = make_optimization(cfg.optim, self.runtime, self.steps_per_epoch, head, backbone, mult, weights)

    # -- class balance (data.balance) and plain-CE train loss
    def _class_weights(self) -> torch.Tensor | None:
        """Inverse-frequency loss weights for data.balance=weights, else None."""
        if self.cfg.data.balance != "weights":
            return None
        return class_weights([s.label for s in self.train_set.samples], self.num_classes)

    def _objective_differs(self) -> bool:
        """Whether the training criterion is not plain cross-entropy (label smoothing or class weights)."""
        return self.cfg.optim.label_smoothing > 0 or self.cfg.data.balance == "weights"

    def _steps_per_epoch(self) -> int:
        per_rank = -(-len(self.train_set) // self.dist.world_size)  # DistributedSampler pads to equal shards
        steps, _ = train_batches(per_rank, self.cfg.data.batch_size)
        cap = self.cfg.optim.max_steps_per_epoch
        return min(steps, cap) if cap else steps

    def _restore(self, ckpt: dict) -> None:
        if ckpt.get("fingerprint") != self.fingerprint:
            raise DatasetError(
                f"cannot resume {self.paths.root}: the dataset changed since the checkpoint "
                f"(fingerprint {ckpt.get('fingerprint')} -> {self.fingerprint})"
            )
        missing = sorted(CHECKPOINT_KEYS - set(ckpt))
        if missing:
            raise ModelError(f"cannot resume from {self.paths.last_checkpoint}: it lacks {', '.join(missing)}")
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optim.optimizer.load_state_dict(ckpt["optimizer"])
            self.optim.scheduler.load_state_dict(ckpt["scheduler"])
            self.optim.scaler.load_state_dict(ckpt["scaler"])
            set_rng_state(ckpt["rng"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"cannot resume from {self.paths.last_checkpoint}: it does not fit this run's model/optimizer ({first})"
            ) from None
        self.start_epoch = self.epoch = ckpt["epoch"]
        self.global_step = ckpt["global_step"]
        self.history = ckpt["history"]
        self.best.best_value, self.best.best_epoch = ckpt["best_value"], ckpt["best_epoch"]
        self.best.bad_epochs = ckpt["bad_epochs"]
        self.should_stop = ckpt["stopped"]
        log.info("resuming %s after epoch %d", self.paths.root, self.start_epoch)

    # ----------------------------------------------------------------- loop
    def _context(self) -> TrainContext:
        """What callbacks see of this run."""
        counts = self.layout.counts()
        return TrainContext(
            run_root=self.paths.root,
            config=self.cfg,
            model=self.model,
            criterion=self.optim.criterion,
            runtime=self.runtime,
            is_main=self.is_main,
            steps_per_epoch=self.steps_per_epoch,
            workers=self.workers,
            class_names=self.layout.classes,
            class_counts=counts,
            global_step=self.global_step,
            epoch=self.epoch,
        )

    def _notify(self, event: str, *args: Any) -> None:
        """Call `event` on every callback with the current context; take up a stop it requested."""
        self.ctx.global_step, self.ctx.epoch = self.global_step, self.epoch
        for cb in self.callbacks:
            getattr(cb, event)(self.ctx, *args)
        if self.ctx.stop_requested:
            self.should_stop = True

    def _progress(self, iterable: Iterable, total: int, desc: str) -> Iterable:
        enabled = self.cfg.runtime.progress
        if enabled is None:
            enabled = sys.stderr.isatty()
        return tqdm(iterable, total=total, desc=desc, leave=False, disable=not (enabled and self.is_main))

    def train_loader(self, epoch: int) -> torch.utils.data.DataLoader:
        """The shuffled training loader of `epoch` (order depends only on seed and epoch)."""
        d, sampler = self.cfg.data, None
        if self.dist.enabled:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(
                self.train_set, self.dist.world_size, self.dist.rank, seed=self.cfg.runtime.seed
            )
            sampler.set_epoch(epoch)
        seed = epoch_seed(self.cfg.runtime.seed, epoch)
        self.train_set.seed = seed  # augmentation independent of the worker count
        if d.balance == "sampler":
            sampler = balanced_sampler([s.label for s in self.train_set.samples], self.num_classes, seed)
        pin = self.runtime.device.type == "cuda"
        per_rank = -(-len(self.train_set) // self.dist.world_size)
        _, drop = train_batches(per_rank, d.batch_size)
        workers = loader_workers(self.workers, per_rank, d.batch_size)
        return make_loader(self.train_set, d.batch_size, True, workers, seed, pin, sampler, drop_last=drop)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        train_mode(self.model)
        self._notify("on_phase_start", "train")
        running, objective = RunningMetrics(), RunningMetrics()
        batches = self._progress(self.train_loader(epoch), self.steps_per_epoch, f"epoch {epoch + 1}")
        t_prev, self._epoch_lrs = time.perf_counter(), []
        for i, (images, targets) in enumerate(batches):
            t_data = time.perf_counter()
            if i == 0 and epoch == self.start_epoch:
                timings.mark("first_step")
            self._epoch_lrs.append(self.optim.optimizer.param_groups[0]["lr"])  # the lr this step uses
            step = train_step(self.train_model, images, targets, self.optim, self.runtime)
            y = step["targets"]
            running.update(step["ce_sum"], step["logits"], y)  # plain CE: comparable with the valid loss
            objective.update(step["loss"] * y.numel(), step["logits"], y)
            self.global_step += 1
            out = {"step": self.global_step, "epoch": epoch + 1, "loss": step["loss"], "batch_size": int(y.numel())}
            out["lr"] = self.optim.optimizer.param_groups[0]["lr"]
            out.update(data_time=t_data - t_prev, **{k: step[k] for k in _STEP_TIMES})
            self._notify("on_step_end", out)
            t_prev = time.perf_counter()
            # Under DDP a mid-epoch stop would leave other ranks waiting in backward: stop at epoch end.
            if i + 1 >= self.steps_per_epoch or (self.should_stop and not self.dist.enabled):
                break
        result = distributed.reduce_metrics(running).result()
        if self._objective_differs():
            result["objective"] = distributed.reduce_metrics(objective).result()["loss"]
        return result

    def evaluate_split(self, split: str, model: nn.Module | None = None) -> EvalResult:
        """Evaluate `model` (default: what trains, in eval mode) on 'valid' or 'test'."""
        self._notify("on_phase_start", split)
        bs = self.cfg.data.eval_batch_size or 2 * self.cfg.data.batch_size
        dataset = self.eval_sets[split]
        loader = make_loader(dataset, bs, False, loader_workers(self.workers, len(dataset), bs), 0)
        if model is None:
            model = self.fast_forward if self.fast_forward is not None else self.model
        return evaluate_loader(model, loader, self.runtime, self.num_classes, self.layout.classes)

    def _fast_forward_reason(self) -> str | None:
        """Why the frozen-backbone forward does not train this run (None: it does)."""
        return frozen_backbone_reason(self.model, self.cfg, self.dist.enabled)

    def _training_model(self) -> nn.Module:
        """What trains this epoch: the frozen-backbone forward (built on first use), else the model for DDP."""
        if self.fast_reason is not None:
            # Rebuilt each epoch: DDP syncs only the parameters trainable when built (staged unfreezing).
            return distributed.wrap(self.model, self.runtime.device)
        if self.fast_forward is None:
            self.fast_forward = frozen_backbone_forward(self.model, self.cfg.model.arch, self.runtime)
        return self.fast_forward

    def _emit(self, epoch: int, phase: str, values: dict[str, float], extra: dict | None = None) -> None:
        if self.is_main:
            print(format_metric_line(epoch, phase, {**values, **(extra or {})}), flush=True)

    def _end_epoch(self, epoch: int, train: dict, valid: dict, seconds: float, result: EvalResult) -> None:
        # Mean head lr over the epoch's steps (param_groups holds the lr of the step after the epoch).
        lrs = self._epoch_lrs or [self.optim.optimizer.param_groups[0]["lr"]]
        lr = sum(lrs) / len(lrs)
        record = {"epoch": epoch + 1, "train": train, "valid": valid, "lr": lr, "seconds": round(seconds, 3)}
        self._emit(epoch + 1, "train", train, {"lr": lr})
        self._emit(epoch + 1, "valid", valid)
        if self.best.update(epoch + 1, valid) and self.is_main and not self.metrics_only:
            save_checkpoint(self.paths.best_weights, self.model.state_dict())
            if self.fast_forward is not None:  # the final evaluation runs the same model: it reuses this pass
                self.best_valid = (epoch + 1, result)
        self.history.append(record)
        self.ctx.valid_confusion = result.confusion
        self._notify("on_epoch_end", record)
        if self.best.exhausted:
            log.info("early stopping: no better %s for %d epochs", self.best.monitor, self.best.patience)
            self.should_stop = True
        if self.is_main:
            if not self.metrics_only:
                self._save_checkpoint(epoch + 1)
            self._write_metrics()

    def _save_checkpoint(self, epochs_done: int) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optim.optimizer.state_dict(),
            "scheduler": self.optim.scheduler.state_dict(),
            "scaler": self.optim.scaler.state_dict(),
            "rng": rng_state(),
            "epoch": epochs_done,
            "global_step": self.global_step,
            "history": self.history,
            "best_value": self.best.best_value,
            "best_epoch": self.best.best_epoch,
            "bad_epochs": self.best.bad_epochs,
            "stopped": self.should_stop,
            "fingerprint": self.fingerprint,
        }
        save_checkpoint(self.paths.last_checkpoint, state)

    def _write_metrics(self) -> None:
        atomic_write_text(self.paths.metrics, "".join(json.dumps(r) + "\n" for r in self.history))

    def fit(self) -> TrainResult:
        """Run (or resume) training, then evaluate the best model on test and write the artifact."""
        if self.is_main:
            self._prepare_run_dir()
        self._build()
        timings.mark("setup_done")
        try:
            return self._fit()
        finally:
            if self._owns_group:
                distributed.shutdown()

    def _fit(self) -> TrainResult:
        distributed.barrier()  # rank 0 has validated the run folder
        self.start_epoch = 0
        ckpt = self._resume_checkpoint()
        if ckpt is not None:
            self._restore(ckpt)
        log.info(
            "training %s on %d classes (%s) with %s",
            self.cfg.model.arch,
            self.num_classes,
            ", ".join(f"{len(v)} {k}" for k, v in self.layout.splits.items()),
            self.runtime.describe(),
        )
        self.ctx = self._context()
        self._notify("on_train_start")
        self.fast_reason = self._fast_forward_reason()  # callbacks have attached their hooks by now
        log.debug("frozen-backbone forward: %s", self.fast_reason or "yes")
        for epoch in range(self.start_epoch, self.cfg.optim.epochs):
            self.should_stop = distributed.any_rank(self.should_stop)
            if self.should_stop:
                break
            self.epoch = epoch + 1
            if self.cfg.model.freeze == "staged":
                set_trainable(self.model, self.cfg.model.arch, backbone=epoch >= self.cfg.optim.head_epochs)
            # Before the loader's workers start: built while they decode, the fast forward competes for the CPUs.
            self.train_model = self._training_model()
            seed_everything(epoch_seed(self.cfg.runtime.seed, epoch))
            started = time.perf_counter()
            train = self._train_epoch(epoch)
            recalibrate_before_validation(self)  # optim.bn_recalibrate
            result = self.evaluate_split("valid")
            valid = distributed.from_main(result.metrics())
            self._end_epoch(epoch, train, valid, time.perf_counter() - started, result)
        timings.mark("epochs_done")
        return self._finish()

    # ----------------------------------------------------------------- end
    def _finish(self) -> TrainResult:
        # Rank 0 alone evaluates the best weights (its checkpoints may be on another node).
        if not self.is_main or self.metrics_only:
            valid = self.history[-1]["valid"] if self.history else {}
            if self.metrics_only and self.best.best_epoch:
                valid = self.history[self.best.best_epoch - 1]["valid"]
            paths = self.paths
            result = TrainResult(paths.root, paths.model, self.history, self.best.best_epoch, valid, None)
            self._notify("on_train_end", result)
            return result
        timings.mark("final_eval_start")
        results = self._final_results()
        timings.mark("final_eval_done")
        self._calibrate(results)
        test = results["test"].metrics() if "test" in results else None
        if test is not None:
            self._emit(self.best.best_epoch, "test", test)
        valid = results["valid"].metrics()
        self.unstable_epochs = warn_jumps([h["valid"]["loss"] for h in self.history], self.num_classes)
        paths, best, bad = self.paths, self.best.best_epoch, self.bad_images
        result = TrainResult(paths.root, paths.model, self.history, best, valid, test, bad, self.unstable_epochs)
        self._write_outputs(results)
        timings.mark("outputs_written")
        self._notify("on_train_end", result)
        timings.mark("train_end")
        return result

    def _final_results(self) -> dict[str, EvalResult]:
        """Every eval split under the best weights, through the model as served (batch norms folded, weights cast).

        The frozen-backbone forward is that model already: the best epoch's valid pass through it is reused.
        When hooks watch the model (the debug hook), the model itself runs, so that they see the passes.
        """
        if self.paths.best_weights.exists():
            self.model.load_state_dict(load_checkpoint(self.paths.best_weights))
        kept = self.best_valid[1] if self.best_valid and self.best_valid[0] == self.best.best_epoch else None
        if self.fast_reason is None:
            model = self._training_model()  # the frozen-backbone forward
        else:
            model = self.model if has_hooks(self.model) else evaluation_model(self.model, self.runtime)
        return {
            split: kept if split == "valid" and kept is not None else self.evaluate_split(split, model)
            for split in self.eval_sets
        }

    # -- temperature scaling
    def _calibrate(self, results: dict[str, EvalResult]) -> None:
        """Fit one temperature on the valid logits (model.calibrate) and give it to every split's result."""
        valid = results["valid"]
        if not self.cfg.model.calibrate or valid.logits is None:
            return
        from dogclf.calibration import decide_temperature

        temperature, self.temperature_note = decide_temperature(valid.logits, valid.targets)
        log.info("%s", self.temperature_note)
        valid.in_sample = temperature != 1.0
        for r in results.values():
            r.temperature = temperature

    def _write_outputs(self, results: dict[str, EvalResult]) -> None:
        from dogclf import plots

        metrics = {
            f"{split}_{k}": float(v) for split, r in results.items() for k, v in r.metrics().items() if v is not None
        }
        meta = ArtifactMetadata(
            arch=self.cfg.model.arch,
            num_classes=self.num_classes,
            class_names=self.layout.classes,
            class_folders=self.layout.class_folders,
            dropout=self.cfg.model.dropout,
            preprocess=self.preprocess,
            metrics=metrics,
            temperature=results["valid"].temperature,
            temperature_note=self.temperature_note,
            dataset_fingerprint=self.fingerprint,
            run_name=self.cfg.name or self.paths.root.name,
            versions=runtime_versions(),
        )
        record = SplitRecord.of(self.layout)
        save_artifact(self.paths.model, self.model, meta, {SPLITS_FILE: record.to_json()})
        if self.bad_images:
            atomic_write_text(self.paths.bad_images, "".join(f"{b.path}\t{b.reason}\n" for b in self.bad_images))
        if self.history:
            plots.plot_curves(self.history, self.paths.plots / "curves.png")
        for split, r in results.items():
            plots.plot_confusion(
                r.confusion, r.class_names, self.paths.plots / f"confusion_{split}.png", f"{split} confusion"
            )
            plots.plot_reliability(r.calibration(), self.paths.plots / f"reliability_{split}.png", split)
        summary = {
            "best_epoch": self.best.best_epoch,
            "epochs_run": len(self.history),
            "metrics": metrics,
            "temperature_note": self.temperature_note,
            "unstable_epochs": self.unstable_epochs,
            "evaluation": {s: r.to_dict() for s, r in results.items()},
            "runtime": self.runtime.describe(),
            "bad_images": [{"path": str(b.path), "reason": b.reason} for b in self.bad_images],
        }
        atomic_write_text(self.paths.summary, json.dumps(summary, indent=2))
