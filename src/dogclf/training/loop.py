"""The training loop: epochs of train/valid, best-checkpoint selection, resumable, then test + artifact."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from tqdm import tqdm

from dogclf.artifact import ArtifactMetadata, runtime_versions, save_artifact
from dogclf.config import RunConfig, config_to_yaml
from dogclf.data.check import BadImage, scan_dataset
from dogclf.data.dataset import ImageDataset, default_workers, make_loader
from dogclf.data.discovery import DatasetLayout, discover
from dogclf.data.preprocess import Preprocess, eval_transform, train_transform
from dogclf.errors import ConfigError, DatasetError, DogclfError
from dogclf.evaluation import EvalResult, evaluate_loader
from dogclf.fsutil import atomic_write_text
from dogclf.models import backbone_parameters, create_model, head_parameters, set_trainable, train_mode
from dogclf.training import distributed
from dogclf.training.callbacks import Callback
from dogclf.training.checkpoint import load_checkpoint, save_checkpoint
from dogclf.training.metrics import RunningMetrics, format_metric_line
from dogclf.training.rundir import RunPaths
from dogclf.training.runtime import Runtime, resolve_runtime, rng_state, seed_everything, set_rng_state
from dogclf.training.schedule import make_scheduler

log = logging.getLogger("dogclf")

# Settings that may change between a run and its resumption without changing its results.
_RESUME_FREE = {"name", "data.root", "data.num_workers", "data.eval_batch_size", "runtime"}


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    artifact_dir: Path
    history: list[dict]
    best_epoch: int
    valid: dict[str, float]
    test: dict[str, float] | None
    bad_images: list[BadImage] = field(default_factory=list)


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def _config_differences(saved: dict, current: dict) -> list[str]:
    a, b = _flatten(saved), _flatten(current)
    keys = sorted(set(a) | set(b))
    free = lambda k: any(k == f or k.startswith(f + ".") for f in _RESUME_FREE)  # noqa: E731
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if not free(k) and a.get(k) != b.get(k)]


def load_dataset(cfg: RunConfig) -> tuple[DatasetLayout, list[BadImage], str]:
    """Discover and scan the dataset; bad images fail the run unless skip_bad_images is set."""
    if cfg.data.root is None:
        raise ConfigError("data.root is not set (pass --data DIR)")
    layout = discover(cfg.data.root, cfg.data.valid_fraction, cfg.data.test_fraction, cfg.runtime.seed)
    report = scan_dataset(layout, cfg.data.max_image_pixels)
    if report.bad and not cfg.data.skip_bad_images:
        raise DatasetError(
            f"{len(report.bad)} bad image(s) in {layout.root} (fix or remove them, or pass --skip-bad-images):\n"
            + report.format_bad()
        )
    if report.bad:
        log.warning("skipping %d bad image(s):\n%s", len(report.bad), report.format_bad(limit=20))
        layout = layout.without({b.path for b in report.bad})
    if not layout.splits.get("valid"):
        raise DatasetError(f"{layout.root}: the valid split has no usable images")
    return layout, report.bad, report.fingerprint


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
    ) -> None:
        self.cfg = cfg
        self.paths = paths or RunPaths(Path(output))
        self.resume = resume
        # Tuning trials: metrics.jsonl only; no checkpoints, artifact, plots, and never the test split.
        self.metrics_only = metrics_only
        self.callbacks = list(callbacks)
        self.should_stop = False
        self.sync_timing = False
        self.dist = distributed.info_from_env()
        self.is_main = self.dist.is_main
        self.history: list[dict] = []
        self.global_step = 0
        self.epoch = 0

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
            saved = yaml.safe_load(self.paths.config.read_text())
            diffs = _config_differences(saved, current)
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
        self.eval_sets = {
            s: ImageDataset(v, eval_tf, decode) for s, v in self.layout.splits.items() if s != "train" and v
        }
        freeze = "full" if cfg.model.freeze == "full" else "head"
        model = create_model(cfg.model.arch, self.num_classes, cfg.model.weights, freeze, cfg.model.dropout)
        self.model: nn.Module = self.runtime.prepare_model(model)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)
        self.optimizer = self._make_optimizer()
        self.steps_per_epoch = self._steps_per_epoch()
        self.scheduler = make_scheduler(self.optimizer, cfg.optim, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(self.runtime.device.type, enabled=self.runtime.precision == "fp16")

    def _make_optimizer(self) -> torch.optim.Optimizer:
        o, arch = self.cfg.optim, self.cfg.model.arch
        groups = [{"params": head_parameters(self.model, arch), "lr": o.lr, "name": "head"}]
        if self.cfg.model.freeze != "head":
            mult = o.backbone_lr_mult if self.cfg.model.freeze == "staged" else 1.0
            groups.append({"params": backbone_parameters(self.model, arch), "lr": o.lr * mult, "name": "backbone"})
        if o.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=True)
        return torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay)

    def _steps_per_epoch(self) -> int:
        per_rank = -(-len(self.train_set) // self.dist.world_size)  # DistributedSampler pads to equal shards
        steps = -(-per_rank // self.cfg.data.batch_size)
        cap = self.cfg.optim.max_steps_per_epoch
        return min(steps, cap) if cap else steps

    def _restore(self, ckpt: dict) -> None:
        if ckpt.get("fingerprint") != self.fingerprint:
            raise DatasetError(
                f"cannot resume {self.paths.root}: the dataset changed since the checkpoint "
                f"(fingerprint {ckpt.get('fingerprint')} -> {self.fingerprint})"
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        self.start_epoch = ckpt["epoch"]
        self.global_step = ckpt["global_step"]
        self.history = ckpt["history"]
        self.best_value, self.best_epoch, self.bad_epochs = ckpt["best_value"], ckpt["best_epoch"], ckpt["bad_epochs"]
        self.should_stop = ckpt["stopped"]
        log.info("resuming %s after epoch %d", self.paths.root, self.start_epoch)

    # ----------------------------------------------------------------- loop
    def _epoch_seed(self, epoch: int) -> int:
        return self.cfg.runtime.seed * 1_000_003 + epoch + 1

    def _progress(self, iterable: Iterable, total: int, desc: str) -> Iterable:
        enabled = self.cfg.runtime.progress
        if enabled is None:
            enabled = sys.stderr.isatty()
        return tqdm(iterable, total=total, desc=desc, leave=False, disable=not (enabled and self.is_main))

    def _now(self) -> float:
        if self.sync_timing and self.runtime.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def train_loader(self, epoch: int) -> torch.utils.data.DataLoader:
        """The shuffled training loader of `epoch` (order depends only on seed and epoch)."""
        d, sampler = self.cfg.data, None
        if self.dist.enabled:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(
                self.train_set, self.dist.world_size, self.dist.rank, seed=self.cfg.runtime.seed
            )
            sampler.set_epoch(epoch)
        return make_loader(self.train_set, d.batch_size, True, self.workers, self._epoch_seed(epoch),
                           pin_memory=self.runtime.device.type == "cuda", sampler=sampler)  # fmt: skip

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        train_mode(self.model)
        for cb in self.callbacks:
            cb.on_phase_start(self, "train")
        running = RunningMetrics()
        loader = self.train_loader(epoch)
        rt, clip = self.runtime, self.cfg.optim.grad_clip
        t_prev = self._now()
        for i, (images, targets) in enumerate(self._progress(loader, self.steps_per_epoch, f"epoch {epoch + 1}")):
            t_data = self._now()
            x, y = rt.to_input(images), targets.to(rt.device, non_blocking=True)
            with rt.autocast():
                logits = self.train_model(x)
            loss = self.criterion(logits.float(), y)
            t_fwd = self._now()
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            t_bwd = self._now()
            if clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            t_opt = self._now()
            loss_value = float(loss.detach())
            running.update(loss_value * y.numel(), logits.detach().float(), y)
            self.global_step += 1
            out = {"step": self.global_step, "epoch": epoch + 1, "loss": loss_value, "batch_size": int(y.numel()),
                   "data_time": t_data - t_prev, "forward_time": t_fwd - t_data, "backward_time": t_bwd - t_fwd,
                   "optimizer_time": t_opt - t_bwd}  # fmt: skip
            for cb in self.callbacks:
                cb.on_step_end(self, out)
            t_prev = self._now()
            # Under DDP a mid-epoch stop would leave other ranks waiting in backward: stop at epoch end.
            if i + 1 >= self.steps_per_epoch or (self.should_stop and not self.dist.enabled):
                break
        return distributed.reduce_metrics(running).result()

    def evaluate_split(self, split: str) -> EvalResult:
        """Evaluate the current model on 'valid' or 'test'."""
        for cb in self.callbacks:
            cb.on_phase_start(self, split)
        bs = self.cfg.data.eval_batch_size or 2 * self.cfg.data.batch_size
        loader = make_loader(self.eval_sets[split], bs, False, self.workers, 0)
        return evaluate_loader(self.model, loader, self.runtime, self.num_classes, self.layout.classes)

    def _improved(self, valid: dict[str, float]) -> bool:
        value = valid["loss"] if self.cfg.optim.monitor == "valid_loss" else -valid["top1"]
        if self.best_value is None or value < self.best_value - self.cfg.optim.early_stopping_min_delta:
            self.best_value = value
            return True
        return False

    def _emit(self, epoch: int, phase: str, values: dict[str, float], extra: dict | None = None) -> None:
        if self.is_main:
            print(format_metric_line(epoch, phase, {**values, **(extra or {})}), flush=True)

    def _end_epoch(self, epoch: int, train: dict, valid: dict, seconds: float) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        record = {"epoch": epoch + 1, "train": train, "valid": valid, "lr": lr, "seconds": round(seconds, 3)}
        self._emit(epoch + 1, "train", train, {"lr": lr})
        self._emit(epoch + 1, "valid", valid)
        if self._improved(valid):
            self.best_epoch, self.bad_epochs = epoch + 1, 0
            if self.is_main and not self.metrics_only:
                save_checkpoint(self.paths.best_weights, self.model.state_dict())
        else:
            self.bad_epochs += 1
        self.history.append(record)
        for cb in self.callbacks:
            cb.on_epoch_end(self, record)
        patience = self.cfg.optim.early_stopping_patience
        if patience and self.bad_epochs >= patience:
            log.info("early stopping: no better %s for %d epochs", self.cfg.optim.monitor, patience)
            self.should_stop = True
        if self.is_main:
            if not self.metrics_only:
                self._save_checkpoint(epoch + 1)
            self._write_metrics()

    def _save_checkpoint(self, epochs_done: int) -> None:
        save_checkpoint(self.paths.last_checkpoint, {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "rng": rng_state(),
            "epoch": epochs_done, "global_step": self.global_step, "history": self.history,
            "best_value": self.best_value, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
            "stopped": self.should_stop, "fingerprint": self.fingerprint,
        })  # fmt: skip

    def _write_metrics(self) -> None:
        atomic_write_text(self.paths.metrics, "".join(json.dumps(r) + "\n" for r in self.history))

    def fit(self) -> TrainResult:
        """Run (or resume) training, then evaluate the best model on test and write the artifact."""
        if self.is_main:
            self._prepare_run_dir()
        self._build()
        try:
            return self._fit()
        finally:
            if self._owns_group:
                distributed.shutdown()

    def _fit(self) -> TrainResult:
        distributed.barrier()  # rank 0 has validated the run folder
        self.start_epoch, self.best_value, self.best_epoch, self.bad_epochs = 0, None, 0, 0
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
        for cb in self.callbacks:
            cb.on_train_start(self)
        for epoch in range(self.start_epoch, self.cfg.optim.epochs):
            self.should_stop = distributed.any_rank(self.should_stop)
            if self.should_stop:
                break
            self.epoch = epoch + 1
            if self.cfg.model.freeze == "staged":
                set_trainable(self.model, self.cfg.model.arch, backbone=epoch >= self.cfg.optim.head_epochs)
            # Rebuilt each epoch: DDP syncs only the parameters trainable when built (staged unfreezing).
            self.train_model = distributed.wrap(self.model, self.runtime.device)
            seed_everything(self._epoch_seed(epoch))
            started = time.perf_counter()
            train = self._train_epoch(epoch)
            valid = distributed.from_main(self.evaluate_split("valid").metrics())
            self._end_epoch(epoch, train, valid, time.perf_counter() - started)
        return self._finish()

    # ----------------------------------------------------------------- end
    def _finish(self) -> TrainResult:
        # Rank 0 alone evaluates the best weights (its checkpoints may be on another node).
        if not self.is_main or self.metrics_only:
            valid = self.history[-1]["valid"] if self.history else {}
            if self.metrics_only and self.best_epoch:
                valid = self.history[self.best_epoch - 1]["valid"]
            paths = self.paths
            result = TrainResult(paths.root, paths.model, self.history, self.best_epoch, valid, None)
            for cb in self.callbacks:
                cb.on_train_end(self, result)
            return result
        if self.paths.best_weights.exists():
            self.model.load_state_dict(load_checkpoint(self.paths.best_weights))
        results = {split: self.evaluate_split(split) for split in self.eval_sets}
        test = results["test"].metrics() if "test" in results else None
        if test is not None:
            self._emit(self.best_epoch, "test", test)
        valid = results["valid"].metrics()
        result = TrainResult(
            self.paths.root, self.paths.model, self.history, self.best_epoch, valid, test, self.bad_images
        )
        self._write_outputs(results)
        for cb in self.callbacks:
            cb.on_train_end(self, result)
        return result

    def _write_outputs(self, results: dict[str, EvalResult]) -> None:
        from dogclf import plots

        metrics = {f"{split}_{k}": float(v) for split, r in results.items() for k, v in r.metrics().items()}
        meta = ArtifactMetadata(
            arch=self.cfg.model.arch, num_classes=self.num_classes, class_names=self.layout.classes,
            class_folders=self.layout.class_folders, dropout=self.cfg.model.dropout, preprocess=self.preprocess,
            metrics=metrics, dataset_fingerprint=self.fingerprint, run_name=self.cfg.name or self.paths.root.name,
            versions=runtime_versions(),
        )  # fmt: skip
        save_artifact(self.paths.model, self.model, meta)
        if self.bad_images:
            atomic_write_text(self.paths.bad_images, "".join(f"{b.path}\t{b.reason}\n" for b in self.bad_images))
        if self.history:
            plots.plot_curves(self.history, self.paths.plots / "curves.png")
        for split, r in results.items():
            plots.plot_confusion(
                r.confusion, r.class_names, self.paths.plots / f"confusion_{split}.png", f"{split} confusion"
            )
        summary = {"best_epoch": self.best_epoch, "epochs_run": len(self.history), "metrics": metrics,
                   "evaluation": {s: r.to_dict() for s, r in results.items()}, "runtime": self.runtime.describe(),
                   "bad_images": [{"path": str(b.path), "reason": b.reason} for b in self.bad_images]}  # fmt: skip
        atomic_write_text(self.paths.summary, json.dumps(summary, indent=2))


def train(
    cfg: RunConfig,
    output: str | Path,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    paths: RunPaths | None = None,
    metrics_only: bool = False,
) -> TrainResult:
    """Train `cfg` into the run folder `output` (see Trainer); config-enabled callbacks run first.

    `metrics_only` (tuning trials) keeps metrics.jsonl and skips checkpoints, the artifact and the test split.
    """
    from dogclf.training.plugins import callbacks_from_config

    paths = paths or RunPaths(Path(output))
    configured = callbacks_from_config(cfg, paths)
    return Trainer(cfg, output, resume, [*configured, *callbacks], paths, metrics_only).fit()
