"""The local tuner in-process: failures recorded, outputs usable, bad input refused, parallel workers."""

from __future__ import annotations

import csv
import json

import optuna
import pytest
from PIL import Image

from conftest import tiny_config
from dogclf.cli.main import main as cli_main
from dogclf.config import build_config
from dogclf.errors import ConfigError, DogclfError
from dogclf.tune import Categorical, Continuous, SearchSpace, tune
from dogclf.tune.storage import default_storage


def _frozen(data, **overrides):
    base = {"model.freeze": "head", "data.augment": False, "optim.epochs": 2}
    return tiny_config(data, **{**base, **overrides})


def _trials(output):
    return optuna.load_study(study_name="dogclf", storage=default_storage(output)).get_trials()


def test_failing_trial_is_recorded_and_the_study_goes_on(tiny_data, tmp_path):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    space = SearchSpace(
        parameters={
            "weights": Categorical(values=[str(broken), "none"]),
            "lr": Continuous(min=0.01, max=0.3, scale="log"),
        },
        strategy="random",
    )
    out = tmp_path / "tune"
    result = tune(_frozen(tiny_data), space, out, n_trials=6, final_train=True)

    trials = _trials(out)
    failed = [t for t in trials if t.state.name == "FAIL"]
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert failed and done and len(failed) + len(done) == 6
    assert all(t.params["weights"] == str(broken) for t in failed)
    assert all("ModelError" in t.user_attrs["error"] and str(broken) in t.user_attrs["error"] for t in failed)
    assert max(t.number for t in done) > min(t.number for t in failed)  # trials ran after a failure
    assert result.best_params["weights"] == "none" and result.finished_trials == 6

    with result.table.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "trial",
        "weights",
        "lr",
        "valid:loss",
        "valid_top1",
        "state",
        "duration_s",
        "path",
        "note",
    ]
    assert [int(r["trial"]) for r in rows] == [t.number for t in trials]
    assert {r["state"] for r in rows if r["weights"] == str(broken)} == {"FAIL"}
    assert all("cannot load weights file" in r["note"] for r in rows if r["state"] == "FAIL")
    best_row = min((r for r in rows if r["state"] == "COMPLETE"), key=lambda r: float(r["valid:loss"]))
    assert int(best_row["trial"]) == result.best_trial
    assert float(best_row["valid:loss"]) == pytest.approx(result.best_value)

    for png in result.plots:
        with Image.open(png) as img:
            assert img.format == "PNG" and img.width >= 400 and img.height >= 300

    best = build_config(result.config)
    assert best.optim.lr == pytest.approx(result.best_params["lr"]) and best.model.weights is None
    summary = json.loads((result.final_run / "summary.json").read_text())
    assert summary["metrics"]["valid_loss"] == pytest.approx(result.best_value, rel=1e-4)
    assert cli_main(["-q", "train", "--config", str(result.config), "--output", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "model" / "metadata.json").exists()


def test_space_values_the_config_rejects_fail_before_any_trial(tiny_data, tmp_path):
    space = SearchSpace(parameters={"lr": Continuous(min=0.001, max=100.0, scale="log")})
    with pytest.raises(ConfigError, match=r"search space parameter 'lr' value 100\.0 .*optim\.lr"):
        tune(_frozen(tiny_data), space, tmp_path / "tune", n_trials=2)
    assert not (tmp_path / "tune").exists()
    grid = SearchSpace(parameters={"lr": Continuous(min=0.001, max=0.1)}, strategy="grid")
    with pytest.raises(ConfigError, match="strategy 'grid' needs categorical or integer parameters"):
        tune(_frozen(tiny_data), grid, tmp_path / "tune", n_trials=2)


def test_resume_refuses_a_different_setup_or_a_foreign_folder(tiny_data, tmp_path):
    space = SearchSpace(parameters={"lr": Categorical(values=[0.01, 0.1])})
    out = tmp_path / "tune"
    tune(_frozen(tiny_data), space, out, n_trials=1)
    with pytest.raises(ConfigError, match=r"cannot resume study 'dogclf'.*optim\.epochs: 2 -> 3"):
        tune(_frozen(tiny_data, **{"optim.epochs": 3}), space, out, n_trials=2)
    other = SearchSpace(parameters={"lr": Categorical(values=[0.01, 0.2])})
    with pytest.raises(ConfigError, match=r"space.*parameters"):
        tune(_frozen(tiny_data), other, out, n_trials=2)
    with pytest.raises(DogclfError, match="holds study 'dogclf'; pass --study-name dogclf"):
        tune(_frozen(tiny_data), space, out, n_trials=2, study_name="other")
    assert len(_trials(out)) == 1
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(DogclfError, match="exists and is not a tuning folder"):
        tune(_frozen(tiny_data), space, tmp_path / "notes", n_trials=1)


@pytest.mark.slow
def test_parallel_workers_share_the_study(tiny_data, tmp_path):
    space = SearchSpace(parameters={"lr": Continuous(min=0.01, max=0.3, scale="log")})
    out = tmp_path / "tune"
    result = tune(_frozen(tiny_data), space, out, n_trials=4, jobs=2)
    trials = _trials(out)
    # Both workers count the study's trials: 4, or 5 when both started the last one at the same instant.
    assert {t.state.name for t in trials} == {"COMPLETE"} and len(trials) in (4, 5)
    assert result.finished_trials == len(trials)
    assert {t.user_attrs["worker"].rsplit("#", 1)[1] for t in trials} <= {"0", "1"}
    assert {t.user_attrs["worker_pid"] for t in trials}.isdisjoint({__import__("os").getpid()})
    assert len({t.params["lr"] for t in trials}) == len(trials)  # each worker samples with its own seed
    assert {t.user_attrs["path"] for t in trials} == {"feature-cache"}
    assert len(list((out / "feature_cache").iterdir())) == 1  # built once, before the workers started


def test_trainer_epochs_feed_the_pruner(tiny_data, tmp_path):
    space = SearchSpace(parameters={"lr": Continuous(min=1e-5, max=0.3, scale="log")}, strategy="random")
    out = tmp_path / "tune"
    cfg = tiny_config(tiny_data, **{"optim.epochs": 3})  # freeze=full: every trial runs the Trainer
    tune(cfg, space, out, n_trials=6, pruner="median")
    trials = _trials(out)
    assert {t.user_attrs.get("path") for t in trials if t.state.name == "COMPLETE"} == {"trainer"}
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned, [(t.params, t.intermediate_values) for t in trials]
    for t in trials:
        metrics = out / "trials" / f"trial_{t.number:04d}" / "metrics.jsonl"
        losses = (
            [json.loads(line)["valid"]["loss"] for line in metrics.read_text().splitlines()] if metrics.exists() else []
        )
        reported = [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
        assert t.user_attrs["valid_losses"] == pytest.approx(reported)  # kept however the trial ended
        if t.state.name == "COMPLETE":
            assert reported == pytest.approx(losses) and len(losses) == 3
        else:  # pruned at the epoch whose validation was reported last, before its checkpoint was written
            assert reported[:-1] == pytest.approx(losses) and len(reported) < 3


def test_trainer_trials_keep_metrics_only_and_never_touch_the_test_split(tiny_data, tmp_path, capfd):
    space = SearchSpace(parameters={"lr": Categorical(values=[0.01])})
    out = tmp_path / "tune"
    tune(tiny_config(tiny_data, **{"optim.epochs": 2}), space, out, n_trials=1)
    trial_dir = out / "trials" / "trial_0000"
    assert sorted(p.name for p in trial_dir.iterdir() if p.is_dir()) == [], list(trial_dir.iterdir())
    assert len((trial_dir / "metrics.jsonl").read_text().splitlines()) == 2
    printed = capfd.readouterr().out
    assert "phase=valid" in printed and "phase=test" not in printed


def test_workers_opening_a_new_study_database_at_once_all_get_it(tmp_path):
    """Each worker creates the tables of a fresh database; the ones that lose the race must open it anyway."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from dogclf.tune.storage import default_storage, open_storage

    for attempt in range(3):
        url = default_storage(tmp_path / f"db{attempt}")
        (tmp_path / f"db{attempt}").mkdir()
        start = threading.Barrier(4)

        def open_together(url=url, start=start):
            start.wait()
            return open_storage(url)

        with ThreadPoolExecutor(4) as pool:
            storages = list(pool.map(lambda _: open_together(), range(4)))
        assert len({id(s) for s in storages}) == 4 and all(s.get_all_studies() == [] for s in storages)


def test_a_finite_space_runs_each_point_once_and_stops_when_all_are_taken(tiny_data, tmp_path, caplog):
    space = SearchSpace(parameters={"lr": Categorical(values=[0.01, 0.1, 0.3])})
    out = tmp_path / "tune"
    with caplog.at_level("INFO", logger="dogclf"):
        result = tune(_frozen(tiny_data), space, out, n_trials=5)
    trials = _trials(out)
    trained = [t for t in trials if "skipped" not in t.user_attrs]
    assert sorted(t.params["lr"] for t in trained) == [0.01, 0.1, 0.3]  # every point once, none twice
    assert all(t.state.name == "COMPLETE" for t in trained) and result.finished_trials == 3
    skipped = [t for t in trials if "skipped" in t.user_attrs]
    assert all(t.state.name == "FAIL" and t.params in [o.params for o in trained] for t in skipped)
    assert "every point of the search space is finished or running: this worker stops" in caplog.text
    assert result.workers == {trained[0].user_attrs["worker"]: 3}
