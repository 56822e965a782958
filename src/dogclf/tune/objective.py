"""One trial: sample parameters, build the trial's RunConfig, train it (from cached features if possible)."""

from __future__ import annotations

import logging
import math
import os
import random
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.config import RunConfig, build_config
from dogclf.errors import ConfigError, DogclfError
from dogclf.training.callbacks import Callback, TrainContext
from dogclf.tune.space import Categorical, Continuous, Integer, SearchSpace
from dogclf.tune.trial import LOCAL_TRIAL_TRACKING

if TYPE_CHECKING:
    import optuna

    from dogclf.data.discovery import DatasetLayout
    from dogclf.tune.features import FeatureCache

log = logging.getLogger("dogclf")


def apply_params(
    cfg: RunConfig, space: SearchSpace, params: dict[str, Any], name: str | None = None, settings: dict | None = None
) -> RunConfig:
    """`cfg` with hyperparameter values set on their config fields (and `settings`, dotted overrides, under them)."""
    base = cfg.model_dump(mode="json")
    if name is not None:
        base["name"] = name
    overrides = {**(settings or {}), **{space.config_fields[k]: v for k, v in params.items()}}
    return build_config(overrides=overrides, base=base)


def _probe_values(param: Continuous | Integer | Categorical) -> list[Any]:
    return list(param.values) if isinstance(param, Categorical) else [param.min, param.max]


def validate_space(cfg: RunConfig, space: SearchSpace) -> None:
    """Fail before any trial when a range reaches values the config rejects (e.g. lr above its maximum)."""
    for name, param in space.parameters.items():
        for value in _probe_values(param):
            try:
                apply_params(cfg, space, {name: value})
            except ConfigError as exc:
                raise ConfigError(
                    f"search space parameter {name!r} value {value!r} is not a valid config: {exc}"
                ) from None
    if space.strategy == "grid":
        continuous = [n for n, p in space.parameters.items() if isinstance(p, Continuous)]
        if continuous:
            raise ConfigError(f"strategy 'grid' needs categorical or integer parameters; continuous: {continuous}")


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Ask the trial for a value of every parameter."""
    params: dict[str, Any] = {}
    for name, p in space.parameters.items():
        if isinstance(p, Continuous):
            params[name] = trial.suggest_float(name, p.min, p.max, log=p.scale == "log")
        elif isinstance(p, Integer):
            params[name] = trial.suggest_int(name, p.min, p.max, log=p.scale == "log")
        else:
            params[name] = trial.suggest_categorical(name, p.values)
    return params


class SkippedTrial(DogclfError):
    """The trial's parameters are held by another trial; it does not run."""


class EpochReporter:
    """Reports each epoch's objective value to the trial and prunes (raises TrialPruned) when told to."""

    def __init__(self, trial: optuna.Trial, objective: str) -> None:
        self.trial = trial
        self.phase, self.field = objective.split(":")
        self.valid_losses: list[float] = []

    def save(self) -> None:
        """Record every epoch's valid loss on the trial (for divergence checks): once, however the trial ended."""
        if self.valid_losses:
            self.trial.set_user_attr("valid_losses", self.valid_losses)

    def __call__(self, record: dict) -> None:
        """Report the epoch's objective value (unless NaN or infinite), then prune if Optuna says so."""
        import optuna

        value = float(record[self.phase][self.field])
        self.valid_losses.append(float(record["valid"]["loss"]))
        if math.isfinite(value):
            with warnings.catch_warnings():  # a rerun of a lost trial keeps the reports it inherited
                warnings.filterwarnings("ignore", message="The reported value is ignored")
                self.trial.report(value, record["epoch"])
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {record['epoch']} ({self.phase}:{self.field}={value:.4g})")


class PruningCallback(Callback):
    """Feeds the Trainer's per-epoch validation records to an EpochReporter."""

    def __init__(self, reporter: EpochReporter) -> None:
        self.reporter = reporter

    def on_epoch_end(self, ctx: TrainContext, record: dict[str, Any]) -> None:
        """Pass the epoch's record to the reporter, which may end the trial."""
        self.reporter(record)


class TrialRunner:
    """The Optuna objective: one call trains one configuration and returns its objective value."""

    def __init__(
        self,
        cfg: RunConfig,
        space: SearchSpace,
        output: Path,
        cache: FeatureCache | None,
        worker: str = "",
        seed: int = 0,
    ) -> None:
        from dogclf.tune.workers import grid_points

        self.cfg, self.space, self.output, self.cache, self.worker = cfg, space, output, cache, worker
        self._datasets: dict[tuple, tuple[DatasetLayout, str]] = {}
        self._points = grid_points(space)
        self._rng = random.Random(seed)
        self.exhausted = False

    def __call__(self, trial: optuna.Trial) -> float:
        """Train the trial's suggested configuration and return its objective; skip a set another trial holds."""
        trial.set_user_attr("worker", self.worker)
        trial.set_user_attr("worker_pid", os.getpid())
        params = suggest(trial, self.space)
        self._skip_if_held(trial, params)
        started = time.perf_counter()
        reporter = EpochReporter(trial, self.space.objective)
        try:
            value = self._run(trial, params, reporter)
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            trial.study.enqueue_trial(params, user_attrs={"retry_of": trial.number})
            raise
        except Exception as exc:
            import optuna

            if not isinstance(exc, optuna.TrialPruned):
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
                log.warning("trial %d failed: %s: %s", trial.number, type(exc).__name__, exc)
            raise
        finally:
            reporter.save()
        seconds = time.perf_counter() - started
        took = f"{self.space.objective}={value:.5g} ({seconds:.1f} s, {trial.user_attrs['path']})"
        log.info("trial %d: %s -> %s", trial.number, _fmt(params), took)
        return value

    def _skip_if_held(self, trial: optuna.Trial, params: dict[str, Any]) -> None:
        """Raise SkippedTrial when another trial holds `params`; in a finite space, queue a free point instead."""
        from dogclf.tune.workers import free_points, twin

        other = twin(trial.study, trial.number, params)
        if other is None:
            return
        trial.set_user_attr("skipped", other.number)
        if self._points is not None:
            free = free_points(trial.study, self._points)
            if free:
                trial.study.enqueue_trial(self._rng.choice(free))
            else:
                self.exhausted = True
        log.info("trial %d: %s skipped: trial %d holds these parameters", trial.number, _fmt(params), other.number)
        raise SkippedTrial(f"same parameters as trial {other.number}")

    def remember_dataset(self, cfg: RunConfig, layout: DatasetLayout, fingerprint: str) -> None:
        """Reuse an already scanned dataset (scanning a large one takes a while)."""
        self._datasets[_dataset_key(cfg)] = (layout, fingerprint)

    def _dataset(self, cfg: RunConfig) -> tuple[DatasetLayout, str]:
        from dogclf.data.loading import load_dataset

        key = _dataset_key(cfg)
        if key not in self._datasets:
            layout, _, fingerprint = load_dataset(cfg)
            self._datasets[key] = (layout, fingerprint)
        return self._datasets[key]

    def _run(self, trial: optuna.Trial, params: dict[str, Any], reporter: EpochReporter) -> float:
        from dogclf.tune.features import unavailable_reason

        name = f"{self.cfg.name or self.output.name}-trial-{trial.number:04d}"
        cfg = apply_params(self.cfg, self.space, params, name, LOCAL_TRIAL_TRACKING)
        if self.cache is not None and unavailable_reason(cfg) is None:
            trial.set_user_attr("path", "feature-cache")
            history, best_epoch = self._run_cached(cfg, reporter, self.cache)
        else:
            trial.set_user_attr("path", "trainer")
            history, best_epoch = self._run_trainer(cfg, trial, reporter)
        best = history[best_epoch - 1]
        trial.set_user_attr("best_epoch", best_epoch)
        trial.set_user_attr("valid_top1", best["valid"]["top1"])
        trial.set_user_attr("valid_loss", best["valid"]["loss"])
        value = float(best[reporter.phase][reporter.field])
        if not math.isfinite(value):
            raise DogclfError(f"{self.space.objective} is {value} (training diverged)")
        return value

    def _run_cached(self, cfg: RunConfig, reporter: EpochReporter, cache: FeatureCache) -> tuple[list[dict], int]:
        from dogclf.runtime import resolve_runtime
        from dogclf.tune.head import train_head

        layout, fingerprint = self._dataset(cfg)
        features = cache.get(cfg, layout, fingerprint, resolve_runtime(cfg.runtime))
        run = train_head(cfg, features.splits, len(layout.class_folders), reporter)
        return run.history, run.best_epoch

    def _run_trainer(self, cfg: RunConfig, trial: optuna.Trial, reporter: EpochReporter) -> tuple[list[dict], int]:
        from dogclf.training import train

        run_dir = self.output / "trials" / f"trial_{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        result = train(cfg, run_dir, callbacks=[PruningCallback(reporter)], metrics_only=True)
        return result.history, result.best_epoch


def _dataset_key(cfg: RunConfig) -> tuple:
    """The settings that decide which images a run sees."""
    d = cfg.data
    return (
        str(d.root),
        d.valid_fraction,
        d.test_fraction,
        d.max_image_pixels,
        d.skip_bad_images,
        cfg.runtime.seed,
    )


def _fmt(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
