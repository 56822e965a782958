"""The Trainer: run folder, resume, the epochs (dogclf.training.epochs) of train/valid; finishing work in finish.py."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from dogclf import timings
from dogclf.config import RunConfig, config_to_yaml, read_config_file
from dogclf.data.dataset import ImageDataset, default_workers, loader_workers, make_loader, train_batches
from dogclf.data.loading import load_dataset
from dogclf.data.preprocess import Preprocess, eval_transform, train_transform
from dogclf.errors import ConfigError, DatasetError, DogclfError, ModelError
from dogclf.evaluation import EvalResult, evaluate_loader
from dogclf.fsutil import atomic_write_text
from dogclf.models import backbone_parameters, create_model, head_parameters, set_trainable, train_mode
from dogclf.runtime import Runtime, resolve_runtime, rng_state, seed_everything, set_rng_state
from dogclf.training import distributed
from dogclf.training.balance import balanced_sampler, class_weights
from dogclf.training.batchnorm import recalibrate_before_validation
from dogclf.training.best import BestEpoch
from dogclf.training.callbacks import Callback, TrainContext
from dogclf.training.checkpoint import CHECKPOINT_KEYS, load_checkpoint, save_checkpoint
from dogclf.training.epochs import run_epochs, run_steps
from dogclf.training.finish import finish
from dogclf.training.forward import (
    FrozenBackboneForward,
    frozen_backbone_forward,
    frozen_backbone_reason,
)
from dogclf.training.metrics import format_metric_line
from dogclf.training.optim import make_optimization
from dogclf.training.result import TrainResult
from dogclf.training.resume import config_differences
from dogclf.training.rundir import RunPaths
from dogclf.training.step import epoch_seed

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

    def _per_rank(self) -> int:
        """Training images per rank and epoch (DistributedSampler pads the shards to equal sizes)."""
        return -(-len(self.train_set) // self.dist.world_size)

    def _steps_per_epoch(self) -> int:
        steps, _ = train_batches(self._per_rank(), self.cfg.data.batch_size)
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

    def notify(self, event: str, *args: Any) -> None:
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
        per_rank = self._per_rank()
        _, drop = train_batches(per_rank, d.batch_size)
        workers = loader_workers(self.workers, per_rank, d.batch_size)
        return make_loader(self.train_set, d.batch_size, True, workers, seed, pin, sampler, drop_last=drop)

    def begin_epoch(self, epoch: int) -> None:
        """Unfreeze on schedule (staged), then build what trains this epoch."""
        self.epoch = epoch + 1
        if self.cfg.model.freeze == "staged":
            set_trainable(self.model, self.cfg.model.arch, backbone=epoch >= self.cfg.optim.head_epochs)
        # Before the loader's workers start: built while they decode, the fast forward competes for the CPUs.
        self.train_model = self.training_model()

    def train_epoch(self, epoch: int) -> tuple[dict[str, float], list[float]]:
        """One epoch of the training loader through the model; its metrics and each step's lr."""
        train_mode(self.model)
        self.notify("on_phase_start", "train")
        batches = self._timed(self._progress(self.train_loader(epoch), self.steps_per_epoch, f"epoch {epoch + 1}"))
        after = partial(self._after_step, epoch)
        done = run_steps(self.train_model, batches, self.steps_per_epoch, self.optim, self.runtime, after)
        result = distributed.reduce_metrics(done.plain).result()
        if self._objective_differs():
            result["objective"] = distributed.reduce_metrics(done.objective).result()["loss"]
        return result, done.lrs

    def _timed(self, batches: Iterable) -> Iterator:
        """`batches`, noting each one's wait since the last step (data_time) and the run's first step."""
        self._batch_ready = time.perf_counter()
        for batch in batches:
            if self.global_step == self.start_step:
                timings.mark("first_step")
            self._data_time = time.perf_counter() - self._batch_ready
            yield batch

    def _after_step(self, epoch: int, step: dict[str, Any]) -> bool:
        """Tell the callbacks about the step; True to stop the epoch (never mid-epoch under DDP)."""
        self.global_step += 1
        y = step["targets"]
        out = {"step": self.global_step, "epoch": epoch + 1, "loss": step["loss"], "batch_size": int(y.numel())}
        out["lr"] = self.optim.optimizer.param_groups[0]["lr"]
        out.update(data_time=self._data_time, **{k: step[k] for k in _STEP_TIMES})
        self.notify("on_step_end", out)
        self._batch_ready = time.perf_counter()
        # Under DDP a mid-epoch stop would leave other ranks waiting in backward: stop at epoch end.
        return self.should_stop and not self.dist.enabled

    def evaluate_split(self, split: str, model: nn.Module | None = None) -> EvalResult:
        """Evaluate `model` (default: what trains, in eval mode) on 'valid' or 'test'."""
        self.notify("on_phase_start", split)
        bs = self.cfg.data.eval_batch_size or 2 * self.cfg.data.batch_size
        dataset = self.eval_sets[split]
        loader = make_loader(dataset, bs, False, loader_workers(self.workers, len(dataset), bs), 0)
        if model is None:
            model = self.fast_forward if self.fast_forward is not None else self.model
        return evaluate_loader(model, loader, self.runtime, self.num_classes, self.layout.classes)

    def _fast_forward_reason(self) -> str | None:
        """Why the frozen-backbone forward does not train this run (None: it does)."""
        return frozen_backbone_reason(self.model, self.cfg, self.dist.enabled)

    def training_model(self) -> nn.Module:
        """What trains this epoch: the frozen-backbone forward (built on first use), else the model for DDP."""
        if self.fast_reason is not None:
            # Rebuilt each epoch: DDP syncs only the parameters trainable when built (staged unfreezing).
            return distributed.wrap(self.model, self.runtime.device)
        if self.fast_forward is None:
            self.fast_forward = frozen_backbone_forward(self.model, self.cfg.model.arch, self.runtime)
        return self.fast_forward

    def emit(self, epoch: int, phase: str, values: dict[str, float], extra: dict | None = None) -> None:
        """Print one metric line (rank 0)."""
        if self.is_main:
            print(format_metric_line(epoch, phase, {**values, **(extra or {})}), flush=True)

    def validate(self) -> dict[str, float]:
        """The valid split through what trains, in eval mode; every rank gets rank 0's metrics."""
        recalibrate_before_validation(self)  # optim.bn_recalibrate
        self._valid_result = self.evaluate_split("valid")
        return distributed.from_main(self._valid_result.metrics())

    def end_epoch(self, record: dict[str, Any], improved: bool) -> None:
        """Print the epoch, keep the best weights, tell the callbacks, save the checkpoint and metrics.jsonl."""
        epoch, result = record["epoch"], self._valid_result
        self.emit(epoch, "train", record["train"], {"lr": record["lr"]})
        self.emit(epoch, "valid", record["valid"])
        if improved and self.is_main and not self.metrics_only:
            save_checkpoint(self.paths.best_weights, self.model.state_dict())
            if self.fast_forward is not None:  # the final evaluation runs the same model: it reuses this pass
                self.best_valid = (epoch, result)
        self.ctx.valid_confusion = result.confusion
        self.notify("on_epoch_end", record)
        if self.is_main:
            if not self.metrics_only:
                self._save_checkpoint(epoch)
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
            "stopped": self.should_stop or self.best.exhausted,
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
        self.start_step = self.global_step
        log.info(
            "training %s on %d classes (%s) with %s",
            self.cfg.model.arch,
            self.num_classes,
            ", ".join(f"{len(v)} {k}" for k, v in self.layout.splits.items()),
            self.runtime.describe(),
        )
        self.ctx = self._context()
        self.notify("on_train_start")
        self.fast_reason = self._fast_forward_reason()  # callbacks have attached their hooks by now
        log.debug("frozen-backbone forward: %s", self.fast_reason or "yes")
        epochs = range(self.start_epoch, self.cfg.optim.epochs)
        run_epochs(self, epochs, self.cfg.runtime.seed, self.best, self.history, self._stop_everywhere)
        timings.mark("epochs_done")
        return finish(self)

    def _stop_everywhere(self) -> bool:
        """Whether any rank asked to stop (every rank calls this before each epoch)."""
        self.should_stop = distributed.any_rank(self.should_stop)
        return self.should_stop
