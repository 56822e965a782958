"""The local tuner: a resumable Optuna study (TPE + pruner) over a SearchSpace, in-process or in workers.

`n_trials` is the number of finished trials the study should hold, however many workers share it (see
dogclf.tune.workers): a rerun of an interrupted study runs only what is missing (the interrupted trial's
parameters first), and a larger `n_trials` adds more.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.config import RunConfig, build_config
from dogclf.errors import ConfigError, DogclfError
from dogclf.training.resume import RESUME_FREE, canonical, flatten, is_free
from dogclf.training.rundir import RunPaths
from dogclf.tune.results import TuneResult, format_differences, masked_url, trial_differences, write_results
from dogclf.tune.space import Categorical, Integer, Pruner, SearchSpace
from dogclf.tune.storage import default_storage, open_storage
from dogclf.tune.workers import HEARTBEAT, counts, run_budget, worker_identity, worker_seed

if TYPE_CHECKING:
    import optuna

    from dogclf.data.discovery import DatasetLayout

log = logging.getLogger("dogclf")

MARKER = "tune.json"
LOCAL = "study.db in this folder"


@dataclass(frozen=True)
class _Job:
    """What one process needs to run its share of trials (picklable for spawned workers)."""

    cfg: dict[str, Any]
    space: dict[str, Any]
    output: str
    storage: str
    study_name: str
    n_trials: int
    seed: int
    pruner: str
    cache_dir: str | None
    threads: int | None = None
    log_level: int = logging.INFO
    worker: str = ""
    heartbeat: int = HEARTBEAT


def make_sampler(space: SearchSpace, seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    """TPE (bayesian, hyperband), random, or an exhaustive grid."""
    import optuna

    if space.strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if space.strategy == "grid":
        grid = {
            n: list(p.values) if isinstance(p, Categorical) else list(range(p.min, p.max + 1))
            for n, p in space.parameters.items()
            if isinstance(p, Categorical | Integer)
        }
        return optuna.samplers.GridSampler(grid, seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(3, n_trials // 3)))


def resolve_pruner(space: SearchSpace, pruner: Pruner | None) -> str:
    """Explicit choice, else hyperband for that strategy, median when the space asks for early stopping."""
    if pruner is not None:
        return pruner
    if space.strategy == "hyperband":
        return "hyperband"
    return "median" if space.early_stopping else "none"


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    """Median / successive halving / hyperband over epochs, or none."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _comparable(cfg: RunConfig, space: SearchSpace, fingerprint: str) -> dict[str, Any]:
    # The shared resume rule (RESUME_FREE): a study may resume on another machine; unlike a single run it
    # may not change device or precision, which would make its trials incomparable.
    flat = {k: v for k, v in flatten(cfg.model_dump(mode="json")).items() if not is_free(k, RESUME_FREE)}
    keep = space.model_dump(mode="json", include={"parameters", "objective", "direction"})
    return {"config": flat, "space": keep, "dataset": fingerprint}


def _check_same_study(study: optuna.Study, current: dict[str, Any]) -> None:
    """A resumed study must tune the same thing on the same data; the first run records what that is."""
    saved = study.user_attrs.get("dogclf")
    if saved is None:
        study.set_user_attr("dogclf", current)
        return
    diffs = []
    for part, prefix in (("config", ""), ("space", "space.")):
        a, b = (canonical(saved[part]), current[part]) if part == "config" else (saved[part], current[part])
        diffs += [f"{prefix}{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if saved["dataset"] != current["dataset"]:
        diffs.append(f"dataset fingerprint: {saved['dataset']} -> {current['dataset']}")
    if diffs:
        raise ConfigError(
            f"cannot resume study {study.study_name!r}: it was started with different settings: "
            + "; ".join(diffs)
            + " (use another --output or --study-name)"
        )


def _open_study(
    rdb: optuna.storages.BaseStorage, name: str, comparable: dict[str, Any], direction: str, n_trials: int
) -> optuna.Study:
    """Create or load the study, check it tunes the same thing, and record the budget (for --status)."""
    import optuna

    study = optuna.create_study(storage=rdb, study_name=name, direction=direction, load_if_exists=True)
    _check_same_study(study, comparable)
    study.set_user_attr("n_trials", n_trials)
    return study


@contextmanager
def _tune_dir(output: Path, storage: str | None, study_name: str) -> Iterator[bool]:
    """Claim the tune folder and check it holds this study; yields whether this process is its only tuner."""
    where = LOCAL if storage is None else masked_url(storage)
    marker = output / MARKER
    if marker.exists():
        saved = json.loads(marker.read_text())
        if saved["study_name"] != study_name:
            name = saved["study_name"]
            raise DogclfError(f"{output} holds study {name!r}; pass --study-name {name} or choose another --output")
        if saved["storage"] != where:
            how = "without --storage" if saved["storage"] == LOCAL else f"with --storage {saved['storage']}"
            raise DogclfError(f"{output} holds a study stored {how}; run it that way or choose another --output")
    elif output.exists() and any(output.iterdir()):
        raise DogclfError(f"{output} exists and is not a tuning folder; choose a new --output (nothing changed)")
    output.mkdir(parents=True, exist_ok=True)
    with open(output / ".lock", "w") as lock:  # held for the whole run
        try:
            import fcntl
        except ImportError:  # no advisory locks here: heartbeats still catch dead trials
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise DogclfError(f"another dogclf tune runs in {output}; use --jobs for parallel trials") from None
        if not marker.exists():
            marker.write_text(json.dumps({"study_name": study_name, "storage": where}, indent=2))
        yield fcntl is not None


def _finished(study: optuna.Study) -> int:
    """Trials that count toward n_trials: complete, pruned, or failed by their own error."""
    return sum(1 for t in study.get_trials(deepcopy=False) if counts(t))


def _fail_running(
    study: optuna.Study, storage: optuna.storages.BaseStorage, pids: set[int] | None, error: str | None
) -> int:
    """Mark RUNNING trials (of the given worker pids, or all) failed; interrupted ones are queued again."""
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    count = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if pids is not None and t.user_attrs.get("worker_pid") not in pids:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        if error is None:
            storage.set_trial_user_attr(trial_id, "interrupted", True)
            if t.params:  # killed after sampling: run these parameters again
                study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        else:
            storage.set_trial_user_attr(trial_id, "error", error)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        count += 1
    return count


def run_trials(job: _Job, scanned: tuple[DatasetLayout, str] | None = None) -> None:
    """Run trials in this process until the study holds `job.n_trials` (`scanned`: the base config's dataset)."""
    import optuna

    from dogclf.tune.features import FeatureCache
    from dogclf.tune.objective import TrialRunner

    cfg, space = RunConfig.model_validate(job.cfg), SearchSpace.model_validate(job.space)
    study = optuna.load_study(
        study_name=job.study_name,
        storage=open_storage(job.storage, job.heartbeat),
        sampler=make_sampler(space, job.seed, job.n_trials),
        pruner=make_pruner(job.pruner, cfg.optim.epochs),
    )
    cache = FeatureCache(job.cache_dir) if job.cache_dir else None
    runner = TrialRunner(cfg, space, Path(job.output), cache, job.worker, job.seed)
    if scanned is not None:
        runner.remember_dataset(cfg, *scanned)
    run_budget(study, runner, job.n_trials, job.heartbeat, lambda: runner.exhausted)


def _worker_main(job: _Job) -> None:
    """Entry point of a spawned worker process."""
    import optuna
    import torch

    logging.basicConfig(level=job.log_level, format="%(message)s", force=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if job.threads:
        torch.set_num_threads(job.threads)
    run_trials(job)


def _run_workers(study: optuna.Study, storage: optuna.storages.BaseStorage, jobs: list[_Job]) -> None:
    """One spawned process per job; trials of a worker that died are recorded as failed."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # torch state must not be forked
    procs = [ctx.Process(target=_worker_main, args=(job,), name=f"dogclf-tune-{i}") for i, job in enumerate(jobs)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
        raise
    dead = {p.pid for p in procs if p.exitcode}
    if dead:
        n = _fail_running(study, storage, dead, "worker process died while running this trial")
        log.warning(
            "%d worker(s) died (exit codes %s); %d running trial(s) marked failed",
            len(dead),
            [p.exitcode for p in procs],
            n,
        )


def _jobs(base: _Job, remaining: int, jobs: int, started_at: int) -> list[_Job]:
    """Up to `jobs` workers (no more than trials remain), each with its identity and sampler seed."""
    from dogclf.system import cpu_count

    count = min(jobs, remaining)
    threads = (base.threads or max(1, cpu_count() // count)) if count > 1 else base.threads
    # A study in its own folder samples the same points wherever the folder is; shared, each machine its own.
    shared = base.storage != default_storage(Path(base.output))
    out = []
    for i in range(count):
        worker = worker_identity(Path(base.output), i if count > 1 else None)
        seed = worker_seed(base.seed, base.study_name, worker if shared else f"#{i}", started_at)
        out.append(dataclasses.replace(base, worker=worker, seed=seed, threads=threads))
    return out


def _run_missing(
    study: optuna.Study,
    rdb: optuna.storages.BaseStorage,
    base: _Job,
    n_trials: int,
    jobs: int,
    scanned: tuple[DatasetLayout, str],
) -> None:
    """Run the trials the study still lacks to hold `n_trials` finished ones, in-process or in workers."""
    remaining = n_trials - _finished(study)
    if remaining <= 0:
        log.info(
            "study %r already holds %d finished trials: budget of %d met, nothing to run "
            "(raise --n-trials to add more)",
            base.study_name,
            _finished(study),
            n_trials,
        )
        return
    # The trial count at start is part of each worker's seed: a rerun must not replay the first run's samples.
    work = _jobs(dataclasses.replace(base, n_trials=n_trials), remaining, jobs, len(study.trials))
    log.info("study %r: %d trial(s) to go, %d process(es) here", base.study_name, remaining, len(work))
    if len(work) == 1:
        run_trials(work[0], scanned)
    else:
        _run_workers(study, rdb, work)


def _prepare_cache(cfg: RunConfig, cache: Path | None, jobs: int, layout: DatasetLayout, fingerprint: str) -> None:
    """Say why the cache is off; with workers, build it once here rather than in every worker at once."""
    from dogclf.runtime import resolve_runtime
    from dogclf.tune.features import FeatureCache, unavailable_reason

    if cache is None:
        return
    reason = unavailable_reason(cfg)
    if reason is not None:
        log.info("feature cache not used for the base config: %s", reason)
    elif jobs > 1:
        FeatureCache(cache).get(cfg, layout, fingerprint, resolve_runtime(cfg.runtime))


def _base_job(
    cfg: RunConfig,
    space: SearchSpace,
    output: Path,
    url: str,
    study_name: str,
    pruner: str,
    cache: Path | None,
    heartbeat: int,
) -> _Job:
    """The job every worker starts from (its worker identity and seed are set per worker)."""
    return _Job(
        cfg.model_dump(mode="json"),
        space.model_dump(mode="json"),
        str(output),
        url,
        study_name,
        0,
        cfg.runtime.seed,
        pruner,
        str(cache) if cache else None,
        cfg.runtime.threads,
        logging.getLogger().getEffectiveLevel(),
        heartbeat=heartbeat,
    )


def tune(
    cfg: RunConfig,
    space: SearchSpace,
    output: str | Path,
    n_trials: int | None = None,
    jobs: int | None = None,
    storage: str | None = None,
    study_name: str = "dogclf",
    pruner: Pruner | None = None,
    feature_cache: bool = True,
    cache_dir: str | Path | None = None,
    final_train: bool = False,
    final: RunConfig | None = None,
    heartbeat: int = HEARTBEAT,
) -> TuneResult:
    """Tune `cfg` over `space` into the folder `output` (resumable); see the module docstring for n_trials.

    `final`: the config the tuned values will train (default: `cfg`); where the trials train something else,
    every differing setting is logged and recorded in best.json and TuneResult.differences. `heartbeat`:
    seconds between a running trial's heartbeats (a trial silent for four of them is failed and rerun).
    """
    import optuna

    from dogclf.data.loading import load_dataset
    from dogclf.tune.objective import validate_space

    output = Path(output)
    n_trials = space.max_trials if n_trials is None else n_trials
    jobs = space.parallel_trials if jobs is None else jobs
    for name, value in (("n_trials (--n-trials)", n_trials), ("jobs (--jobs)", jobs), ("--heartbeat", heartbeat)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1 (got {value})")
    validate_space(cfg, space)
    _check_tracking(cfg)
    layout, _, fingerprint = load_dataset(cfg)  # the data is checked before anything is written
    shared = open_storage(storage, heartbeat) if storage else None  # a bad URL or driver fails before any write
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with _tune_dir(output, storage, study_name) as sole_tuner:
            url = storage or default_storage(output)
            rdb = shared or open_storage(url, heartbeat)
            study = _open_study(rdb, study_name, _comparable(cfg, space, fingerprint), space.direction, n_trials)
            if storage is None and sole_tuner and (n := _fail_running(study, rdb, None, None)):
                log.info("%d trial(s) were interrupted by the last run; their parameters run again first", n)
            cache = Path(cache_dir or output / "feature_cache") if feature_cache else None
            _prepare_cache(cfg, cache, jobs, layout, fingerprint)
            base = _base_job(cfg, space, output, url, study_name, resolve_pruner(space, pruner), cache, heartbeat)
            _run_missing(study, rdb, base, n_trials, jobs, (layout, fingerprint))
            result = write_results(study, cfg, space, output, url, _finished(study), _differences(cfg, space, final))
            if cfg.tracking.mlflow_enabled():  # the study as a parent run, each trial a child run
                from dogclf.tracking.mlflow_study import log_study

                log_study(study, cfg, space, result, output)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if final_train:
        result.final_run = _final_train(result, output)
    return result


def _check_tracking(cfg: RunConfig) -> None:
    """Refuse an MLflow store MLflow would refuse before the trials, not when the study is logged after them."""
    if cfg.tracking.mlflow_enabled():
        from dogclf.tracking.mlflow_runs import check_store

        check_store(cfg.tracking)


def _differences(cfg: RunConfig, space: SearchSpace, final: RunConfig | None) -> dict[str, list[Any]]:
    """Settings (other than the tuned ones) in which the trials differ from the final run, logged when any."""
    found = {} if final is None else trial_differences(cfg, final, tuple(space.config_fields.values()))
    if found:
        log.warning("%s", format_differences(found))
    return found


def _final_train(result: TuneResult, output: Path) -> Path:
    """Train the best config to completion in output/final/trial_NNNN (resumed if interrupted)."""
    from dogclf.training import train

    run_dir = output / "final" / f"trial_{result.best_trial:04d}"
    if RunPaths(run_dir).summary.exists():
        log.info("final training of trial %d already done: %s", result.best_trial, run_dir)
        return run_dir
    train(build_config(result.config), run_dir, resume=run_dir.exists())
    return run_dir
