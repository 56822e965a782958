"""Tuning outputs: the results table (CSV + text), PNG plots, and the best parameters as a train config."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.config import RunConfig, config_to_yaml
from dogclf.csvsafe import csv_text
from dogclf.errors import DogclfError
from dogclf.fsutil import atomic_write_text
from dogclf.training.resume import RESUME_FREE, canonical, flatten, is_free
from dogclf.tune.space import Categorical, SearchSpace

if TYPE_CHECKING:
    import optuna

TABLE = "results.csv"
BEST_CONFIG = "best_config.yaml"


@dataclass
class TuneResult:
    """What a tuning run produced."""

    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    table: Path
    config: Path
    plots: list[Path]
    study_name: str
    storage: str
    finished_trials: int
    states: dict[str, int] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    final_run: Path | None = None
    differences: dict[str, list[Any]] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)


# Settings that never change what a trial learns: names, hooks, data location, loader parallelism, threads.
_SAME_PROBLEM = (*RESUME_FREE, "profile", "debug")


def trial_differences(trial: RunConfig, final: RunConfig, tuned: tuple[str, ...] = ()) -> dict[str, list[Any]]:
    """{field: [trial value, final value]} for each setting, other than the `tuned` ones, that differs."""
    a, b = (canonical(flatten(c.model_dump(mode="json"))) for c in (trial, final))
    keys = [k for k in sorted(set(a) | set(b)) if not is_free(k, _SAME_PROBLEM) and k not in tuned]
    return {k: [a.get(k), b.get(k)] for k in keys if a.get(k) != b.get(k)}


def format_differences(differences: dict[str, list[Any]]) -> str:
    """One line naming every setting in which the tuning trials differ from the final run (empty if none)."""
    if not differences:
        return ""
    shown = "; ".join(f"{k}: {t!r} in the trials, {f!r} in the final run" for k, (t, f) in differences.items())
    return f"the tuning trials trained a different problem than the final run: {shown}"


def masked_url(url: str) -> str:
    """A storage URL with its password hidden, fit for logs and results."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _note(t: optuna.trial.FrozenTrial) -> str:
    attrs = t.user_attrs
    if "error" in attrs:
        return attrs["error"]
    if attrs.get("interrupted"):
        return "interrupted (its parameters run again)"
    if "skipped" in attrs:
        return f"skipped: trial {attrs['skipped']} holds these parameters"
    if "duplicate_of" in attrs:
        return f"same parameters as trial {attrs['duplicate_of']} (not retrained)"
    if "retry_of" in attrs:
        return f"rerun of interrupted trial {attrs['retry_of']}"
    if "failed_trial" in t.system_attrs:
        return f"rerun of trial {t.system_attrs['failed_trial']} (its worker stopped)"
    if t.state.name == "FAIL":
        return "its worker stopped sending heartbeats"
    if t.state.name == "PRUNED" and t.intermediate_values:
        return f"pruned after epoch {max(t.intermediate_values)}"
    return ""


def trial_rows(study: optuna.Study, space: SearchSpace) -> list[dict[str, Any]]:
    """One row per trial: number, parameters, objective, valid top-1, state, duration, path, note."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"trial": t.number}
        row.update({name: t.params.get(name, "") for name in space.parameters})
        row[space.objective] = t.value if t.value is not None else ""
        row["valid_top1"] = t.user_attrs.get("valid_top1", "")
        row["state"] = t.state.name
        row["duration_s"] = round(t.duration.total_seconds(), 3) if t.duration else ""
        row["path"] = t.user_attrs.get("path", "")
        row["note"] = _note(t)
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    return f"{value:.5g}" if isinstance(value, float) else str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned text table (for the terminal)."""
    if not rows:
        return "(no trials)"
    columns = list(rows[0])
    cells = [[_cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """The table as CSV (atomically, strings formula-escaped)."""
    header = list(rows[0]) if rows else []
    text = csv_text(header, [[r.get(k, "") for k in header] for r in rows]) if rows else ""
    return atomic_write_text(path, text)


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if math.isfinite(t.value)]


def plot_history(study: optuna.Study, objective: str, out: Path) -> Path:
    """Objective per trial (complete, and pruned at their last epoch) with the best-so-far line."""
    from dogclf.plots import save_figure, subplots

    minimize = study.direction.name == "MINIMIZE"
    done = _complete(study)
    pruned = [t for t in study.get_trials(deepcopy=False) if t.state.name == "PRUNED" and t.intermediate_values]
    fig, ax = subplots(figsize=(7, 4))
    ax.plot([t.number for t in done], [t.value for t in done], "o", label="complete")
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        ax.plot([t.number for t in pruned], last, "x", color="gray", label="pruned (last epoch)")
    best, xs, ys = None, [], []
    for t in done:
        if best is None or (t.value < best if minimize else t.value > best):
            best = t.value
        xs.append(t.number)
        ys.append(best)
    ax.step(xs, ys, where="post", color="C3", label="best so far")
    ax.set(title="optimization history", xlabel="trial", ylabel=objective)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out)


def plot_params(study: optuna.Study, space: SearchSpace, out: Path) -> Path:
    """Objective against each parameter (one panel each), the best trial marked."""
    from dogclf.plots import save_figure, subplots

    done = _complete(study)
    best = study.best_trial if done else None
    names = list(space.parameters)
    fig, axes = subplots(1, len(names), figsize=(4.5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        param = space.parameters[name]
        position = (lambda v, p=param: p.values.index(v)) if isinstance(param, Categorical) else (lambda v: v)
        ax.plot([position(t.params[name]) for t in done], [t.value for t in done], "o", alpha=0.7)
        if best is not None:
            ax.plot([position(best.params[name])], [best.value], "*", color="C3", markersize=14, label="best")
            ax.legend()
        if isinstance(param, Categorical):
            ax.set_xticks(range(len(param.values)), [str(v) for v in param.values])
        elif param.scale == "log":
            ax.set_xscale("log")
        ax.set(xlabel=name, ylabel=space.objective)
        ax.grid(alpha=0.3)
    fig.suptitle("objective vs parameters")
    return save_figure(fig, out)


def write_best_config(cfg: RunConfig, space: SearchSpace, trial: optuna.trial.FrozenTrial, path: Path) -> Path:
    """The base config with the best parameters applied: `dogclf train --config PATH` trains it."""
    from dogclf.tune.objective import apply_params

    best = apply_params(cfg, space, trial.params)
    params = ", ".join(f"{k}={v}" for k, v in trial.params.items())
    header = f"# dogclf tune: best trial {trial.number}, {space.objective}={trial.value:.6g} ({params})\n"
    return atomic_write_text(path, header + config_to_yaml(best))


def write_results(
    study: optuna.Study,
    cfg: RunConfig,
    space: SearchSpace,
    output: Path,
    storage: str,
    finished: int,
    differences: dict[str, list[Any]] | None = None,
) -> TuneResult:
    """Write the table, plots, best config and best.json (with trial-vs-final differences); errors if none completed."""
    from dogclf.tune.workers import per_worker

    rows = trial_rows(study, space)
    table = write_csv(rows, output / TABLE)
    states = dict(Counter(r["state"] for r in rows))
    if not _complete(study):
        raise DogclfError(f"no trial completed ({states}); see the notes in {table}")
    best = study.best_trial
    plots = [
        plot_history(study, space.objective, output / "plots" / "history.png"),
        plot_params(study, space, output / "plots" / "params.png"),
    ]
    config = write_best_config(cfg, space, best, output / BEST_CONFIG)
    workers = per_worker(study)
    summary = {
        "best_trial": best.number,
        "objective": space.objective,
        "direction": space.direction,
        "best_value": best.value,
        "best_params": best.params,
        "valid_top1": best.user_attrs.get("valid_top1"),
        "states": states,
        "differences": differences or {},
        "workers": workers,
    }
    atomic_write_text(output / "best.json", json.dumps(summary, indent=2))
    return TuneResult(
        dict(best.params),
        float(best.value),
        best.number,
        table,
        config,
        plots,
        study.study_name,
        masked_url(storage),
        finished,
        states,
        rows,
        differences=differences or {},
        workers=workers,
    )


def format_status(study: optuna.Study) -> str:
    """The study as its storage holds it: budget, trials by state and by worker, best so far, the table."""
    from datetime import datetime

    from dogclf.tune.workers import counts, tally

    now, budget = tally(study), study.user_attrs.get("n_trials", "?")
    trials = study.get_trials(deepcopy=False)
    lines = [
        f"study {study.study_name!r}: {now.finished} of {budget} finished trials, {now.running} running, "
        f"{now.waiting} waiting, {len(trials)} in all"
    ]
    workers: dict[str, list[str]] = {}
    for t in trials:
        name = t.user_attrs.get("worker", "(unrecorded)")
        if counts(t):
            workers.setdefault(name, []).append("finished")
        elif t.state.name == "RUNNING" and t.datetime_start is not None:
            age = (datetime.now() - t.datetime_start).total_seconds()
            workers.setdefault(name, []).append(f"trial {t.number} running for {age:.0f} s")
    for name, items in sorted(workers.items()):
        done = items.count("finished")
        lines.append(f"  {name}: {done} finished" + "".join(f", {i}" for i in items if i != "finished"))
    if _complete(study):
        best = study.best_trial
        lines.append(f"best: trial {best.number} value={best.value:.6g} {best.params}")
    saved = study.user_attrs.get("dogclf")
    if saved is not None:
        lines.append(format_table(trial_rows(study, SearchSpace.model_validate(saved["space"]))))
    return "\n".join(lines)
