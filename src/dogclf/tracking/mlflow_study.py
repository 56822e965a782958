"""A tuning study in MLflow: one parent run per study folder, one nested child run per finished trial.

Logged when the study's results are written, from the study's storage, so trials of worker processes and
of the feature cache are all there; a resumed study reuses its parent run and adds only the new trials.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.tracking.mlflow_runs import (
    PARENT_TAG,
    STUDY_TAG,
    TRIAL_TAG,
    active_parent_tags,
    config_params,
    connect,
    log_metrics,
    log_params,
)
from dogclf.training.resume import flatten

if TYPE_CHECKING:
    import optuna
    from mlflow.tracking import MlflowClient

    from dogclf.config import RunConfig
    from dogclf.tune.results import TuneResult
    from dogclf.tune.space import SearchSpace

TRIAL_ATTRS = ("valid_top1", "valid_loss", "best_epoch")


def _ms(when: Any) -> int | None:
    return int(when.timestamp() * 1000) if when is not None else None


def _parent(client: MlflowClient, experiment_id: str, key: str, cfg: RunConfig, space: SearchSpace) -> str:
    """The study's parent run: found by its tag, else created with the base config and the space as params."""
    found = client.search_runs([experiment_id], f"tags.`{STUDY_TAG}` = '{key}'", max_results=1)
    if found:
        return found[0].info.run_id
    name = key.split("@", 1)[0]
    run = client.create_run(experiment_id, run_name=name, tags={STUDY_TAG: key, **active_parent_tags()})
    space_params = flatten(space.model_dump(mode="json"), "space.")
    log_params(client, run.info.run_id, {**config_params(cfg), **{k: v for k, v in space_params.items() if v}})
    return run.info.run_id


def _logged_trials(client: MlflowClient, experiment_id: str, parent_id: str) -> set[str]:
    """Numbers (as strings) of the trials that already have a child run under `parent_id`."""
    runs = client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent_id}'", max_results=50_000)
    return {r.data.tags.get(TRIAL_TAG, "") for r in runs}


def _log_trial(client: MlflowClient, experiment_id: str, parent_id: str, trial: optuna.trial.FrozenTrial) -> None:
    """A child run: the trial's params, its per-epoch objective, final objective and valid metrics, its state."""
    tags = {PARENT_TAG: parent_id, TRIAL_TAG: str(trial.number), "dogclf.state": trial.state.name}
    run = client.create_run(
        experiment_id, start_time=_ms(trial.datetime_start), tags=tags, run_name=f"trial-{trial.number:04d}"
    )
    run_id = run.info.run_id
    log_params(client, run_id, trial.params)
    for epoch, value in sorted(trial.intermediate_values.items()):
        log_metrics(client, run_id, {"epoch_objective": value}, epoch)
    final = {"objective": trial.value, **{k: trial.user_attrs.get(k) for k in TRIAL_ATTRS}}
    log_metrics(client, run_id, final, len(trial.intermediate_values))
    status = "FAILED" if trial.state.name == "FAIL" else "FINISHED"
    client.set_terminated(run_id, status, end_time=_ms(trial.datetime_complete))


def log_study(study: optuna.Study, cfg: RunConfig, space: SearchSpace, result: TuneResult, output: Path) -> str:
    """Log the study to MLflow (see the module docstring); returns the parent run id."""
    client, experiment_id = connect(cfg.tracking)
    parent_id = _parent(client, experiment_id, f"{study.study_name}@{Path(output).resolve()}", cfg, space)
    client.set_tag(parent_id, "dogclf.objective", space.objective)
    logged = _logged_trials(client, experiment_id, parent_id)
    for trial in study.get_trials(deepcopy=False):
        finished = trial.state.name in ("COMPLETE", "PRUNED", "FAIL")
        if finished and str(trial.number) not in logged:
            _log_trial(client, experiment_id, parent_id, trial)
    summary = {"best_value": result.best_value, "best_trial": result.best_trial, "finished": result.finished_trials}
    log_metrics(client, parent_id, summary, result.finished_trials)
    for path in (result.table, result.config, *result.plots):
        if Path(path).is_file():
            client.log_artifact(parent_id, str(path))
    client.set_terminated(parent_id, "FINISHED")
    return parent_id
