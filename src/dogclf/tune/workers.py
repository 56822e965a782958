"""Many workers on one study: the study's budget, a sampler seed per worker, no parameter set started twice.

A worker is one process running trials; several may share a study through one storage (other processes on
this machine, other machines through a database server). Before each trial a worker counts what the storage
holds: it stops once the study has `n_trials` finished trials, and it waits while the running trials of the
others could complete the budget (one of them may die; its trial then turns stale and is queued again).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import socket
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.tune.space import Categorical, Integer, SearchSpace

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

log = logging.getLogger("dogclf")

HEARTBEAT = 30  # seconds between a running trial's heartbeats; a trial silent for 4 of them is stale
# Finite spaces with more points than this are not enumerated (a duplicate there is only skipped).
MAX_POINTS = 100_000


def worker_identity(output: Path, index: int | None = None) -> str:
    """`host:folder[#index]`: unique among live workers, since a tune folder holds one tuner at a time."""
    name = f"{socket.gethostname()}:{output.resolve()}"
    return name if index is None else f"{name}#{index}"


def worker_seed(seed: int, study_name: str, worker: str, started_at: int) -> int:
    """The worker's sampler seed, reproducible from the study's seed and name, the worker and its start."""
    digest = hashlib.sha256(f"{study_name}\0{seed}\0{worker}\0{started_at}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def counts(t: FrozenTrial) -> bool:
    """Whether a trial counts toward n_trials: complete, pruned, or failed by its own error."""
    name = t.state.name
    return name in ("COMPLETE", "PRUNED") or (name == "FAIL" and "error" in t.user_attrs)


def params_of(t: FrozenTrial) -> dict[str, Any]:
    """A trial's parameters, including those fixed for a queued trial that has not sampled yet."""
    return {**t.system_attrs.get("fixed_params", {}), **t.params}


def _holds(t: FrozenTrial) -> bool:
    """Whether a trial holds its parameter set: it counts, runs, or waits to run (a skipped one does not)."""
    if "skipped" in t.user_attrs:
        return False
    return counts(t) or t.state.name in ("RUNNING", "WAITING")


def twin(study: optuna.Study, number: int, params: dict[str, Any]) -> FrozenTrial | None:
    """Another trial that holds `params` (finished, running or queued), if any.

    Every trial writes its parameters before it looks, so of two trials that sample the same set at once at
    least one sees the other: at most one of them runs.
    """
    for other in study.get_trials(deepcopy=False):
        if other.number != number and _holds(other) and params_of(other) == params:
            return other
    return None


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


def grid_points(space: SearchSpace) -> list[dict[str, Any]] | None:
    """Every point of a finite space (categorical and integer parameters only), or None."""
    axes: dict[str, list[Any]] = {}
    size = 1
    for name, p in space.parameters.items():
        if isinstance(p, Categorical):
            axes[name] = list(p.values)
        elif isinstance(p, Integer):
            axes[name] = list(range(p.min, p.max + 1))
        else:
            return None
        size *= len(axes[name])
        if size > MAX_POINTS:
            return None
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


def free_points(study: optuna.Study, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points no trial holds yet."""
    held = {_key(params_of(t)) for t in study.get_trials(deepcopy=False) if _holds(t)}
    return [p for p in points if _key(p) not in held]


@dataclass(frozen=True)
class Tally:
    """What the storage holds toward the budget."""

    finished: int
    running: int
    waiting: int


def tally(study: optuna.Study) -> Tally:
    """Count the study's trials that count, run and wait."""
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials)
    return Tally(sum(1 for t in trials if counts(t)), states["RUNNING"], states["WAITING"])


def fail_stale(study: optuna.Study) -> None:
    """Fail trials whose worker stopped sending heartbeats (the storage's callback queues them again)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def run_budget(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    poll: float,
    exhausted: Callable[[], bool],
) -> None:
    """Run trials until the study holds `n_trials` finished ones (or the space has no free point left)."""
    waiting_logged = False
    while True:
        now = tally(study)
        if now.finished >= n_trials:
            log.info("study %r holds %d finished trials: budget of %d met", study.study_name, now.finished, n_trials)
            return
        if exhausted():
            log.info("every point of the search space is finished or running: this worker stops")
            return
        if now.finished + now.running >= n_trials:
            fail_stale(study)  # only here: a trial that starts fails stale ones itself (Optuna does, heartbeats on)
            if tally(study).running < now.running:
                continue
            if not waiting_logged:
                log.info("waiting for %d running trial(s) of other workers to finish the budget", now.running)
                waiting_logged = True
            time.sleep(poll)
            continue
        waiting_logged = False
        study.optimize(objective, n_trials=1, catch=(Exception,))


def per_worker(study: optuna.Study) -> dict[str, int]:
    """Finished trials (those that count) by the worker that ran them."""
    trials = study.get_trials(deepcopy=False)
    return dict(Counter(t.user_attrs.get("worker", "(unrecorded)") for t in trials if counts(t)))
