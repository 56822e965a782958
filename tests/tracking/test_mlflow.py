"""MLflow: a run's params, metrics and artifacts, a study's parent and child runs, read back with MlflowClient."""

from __future__ import annotations

import argparse

import pytest

from conftest import run_cli, tiny_config
from dogclf.cli.commands.train import add_tracking_option, add_train_options, build_run_config, tracking_overrides
from dogclf.tracking.config import TrackingConfig
from dogclf.training import train

mlflow = pytest.importorskip("mlflow")


def _runs(uri, experiment="dogclf"):
    client = mlflow.tracking.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id]) if exp else []


def test_training_run_logs_params_metrics_plots_and_model(tiny_data, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # MLflow's own default puts a sqlite store's artifacts in ./mlruns
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}"
    (tmp_path / "db").mkdir()
    cfg = tiny_config(tiny_data, **{"tracking.mlflow": True, "tracking.mlflow_uri": uri, "name": "tiny-ml"})
    result = train(cfg, tmp_path / "run")
    client, (run,) = _runs(uri)
    assert run.info.run_name == "tiny-ml" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.arch"] == "tiny_cnn" and params["data.batch_size"] == "8" and params["optim.epochs"] == "2"
    history = client.get_metric_history(run.info.run_id, "valid_loss")
    assert [m.step for m in history] == [1, 2]
    assert history[-1].value == pytest.approx(result.history[-1]["valid"]["loss"])
    expected = {"train_loss", "valid_top1", "valid_macro_f1", "lr", "epoch_seconds", "test_top1", "best_epoch"}
    assert expected <= set(run.data.metrics)
    assert "train_n" not in run.data.metrics and "valid_top5" not in run.data.metrics  # top-5 n/a with 3 classes
    model = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"model/model.pth", "model/metadata.json"} <= model
    assert {"plots/curves.png", "plots/confusion_valid.png"} <= plots
    beside = tmp_path / "db" / "mlartifacts"  # artifacts beside the database, nothing in the working folder
    assert list(cwd.iterdir()) == [] and run.info.artifact_uri.startswith(beside.as_uri())
    assert (beside / run.info.run_id / "artifacts" / "model" / "model.pth").is_file()


def test_an_explicit_artifact_location_holds_the_artifacts(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri, artifacts = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts"
    overrides = {"tracking.mlflow": True, "tracking.mlflow_uri": uri, "tracking.mlflow_artifacts": str(artifacts)}
    train(tiny_config(tiny_data, **{**overrides, "optim.epochs": 1, "tracking.experiment": "mine"}), tmp_path / "run")
    _, (run,) = _runs(uri, "mine")
    assert (artifacts / run.info.run_id / "artifacts" / "model" / "model.pth").is_file()
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlartifacts").exists()


def test_artifact_location_defaults_beside_a_sqlite_database_only(tmp_path):
    from dogclf.tracking.mlflow_runs import artifact_location

    db = tmp_path / "t" / "m.db"
    assert artifact_location(TrackingConfig(), f"sqlite:///{db}") == (tmp_path / "t" / "mlartifacts").as_uri()
    assert artifact_location(TrackingConfig(), f"sqlite:///{db}?timeout=5") == (tmp_path / "t" / "mlartifacts").as_uri()
    assert artifact_location(TrackingConfig(), "http://localhost:5000") is None  # the server's own location
    assert artifact_location(TrackingConfig(), "sqlite://") is None  # in memory: MLflow decides
    assert artifact_location(TrackingConfig(mlflow_artifacts="s3://b/p"), "http://h") == "s3://b/p"


TRAIN = ("train", "--arch", "tiny_cnn", "--weights", "none", "--image-size", "32", "--epochs", "1",
         "--set", "data.num_workers=0", "--tracking", "mlflow")  # fmt: skip


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_a_file_store_uri_is_refused_before_training_and_leaves_nothing(tiny_data, tmp_path, scheme):
    store, run = tmp_path / "store", tmp_path / "run"
    command = (*TRAIN, "--data", str(tiny_data), "-o", str(run))
    r = run_cli(*command, cwd=tmp_path, env={"MLFLOW_TRACKING_URI": f"{scheme}{store}"})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("dogclf: error: MLFLOW_TRACKING_URI") and "sqlite:///" in line, line
    assert not run.exists() and not store.exists() and not (tmp_path / "mlruns").exists()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    r = run_cli(*command, cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})  # the same command, the URI fixed
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(_runs(uri)[1]) == 1


def test_check_store_refuses_only_a_file_store_mlflow_refuses(tmp_path, monkeypatch):
    from dogclf.errors import ConfigError
    from dogclf.tracking.mlflow_runs import check_store

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ConfigError, match="^tracking.mlflow_uri .* is an MLflow file store"):
        check_store(TrackingConfig(mlflow_uri=str(tmp_path)))
    for fine in (f"sqlite:///{tmp_path / 'm.db'}", "http://localhost:5000", None):
        check_store(TrackingConfig(mlflow_uri=fine))
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's own opt-in keeps its file store
    check_store(TrackingConfig(mlflow_uri=str(tmp_path)))


def test_tune_refuses_a_file_store_before_any_trial(tiny_data, tmp_path):
    pytest.importorskip("optuna")
    from dogclf.errors import ConfigError
    from dogclf.tune import Continuous, SearchSpace, tune

    cfg = tiny_config(tiny_data, **{"tracking.mlflow": True, "tracking.mlflow_uri": f"file://{tmp_path / 's'}"})
    space = SearchSpace(parameters={"lr": Continuous(min=0.001, max=0.1, scale="log")}, strategy="random")
    with pytest.raises(ConfigError, match="file store"):
        tune(cfg, space, tmp_path / "tune", n_trials=1, feature_cache=False)
    assert not (tmp_path / "tune").exists() and not (tmp_path / "s").exists()


@pytest.mark.slow
def test_tracking_uri_env_turns_mlflow_on_and_the_cli_flag_too(tiny_data, tmp_path):
    assert TrackingConfig().mlflow_enabled({}) is False
    assert TrackingConfig().mlflow_enabled({"MLFLOW_TRACKING_URI": "sqlite:///x.db"}) is True
    assert TrackingConfig(mlflow=False).mlflow_enabled({"MLFLOW_TRACKING_URI": "sqlite:///x.db"}) is False
    assert tracking_overrides(None) == {}
    assert tracking_overrides(["none"]) == {"tracking.tensorboard": False, "tracking.mlflow": False}
    assert tracking_overrides(["none", "mlflow"]) == {"tracking.tensorboard": False, "tracking.mlflow": True}
    parser = argparse.ArgumentParser()
    add_train_options(parser)
    add_tracking_option(parser)
    cfg = build_run_config(parser.parse_args(["--tracking", "mlflow"]))
    assert cfg.tracking.mlflow is True and cfg.tracking.tensorboard is True
    assert build_run_config(parser.parse_args([])).tracking.mlflow is None

    uri = f"sqlite:///{tmp_path / 'env.db'}"
    r = run_cli(
        "train", "--data", str(tiny_data), "-o", str(tmp_path / "run"), "--arch", "tiny_cnn", "--weights", "none",
        "--image-size", "32", "--epochs", "1", "--set", "data.num_workers=0", "--tracking", "none",
        cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert _runs(uri)[1] == [] and not (tmp_path / "run" / "tensorboard").exists()  # --tracking none wins
    r = run_cli(
        "train", "--data", str(tiny_data), "-o", str(tmp_path / "run2"), "--arch", "tiny_cnn", "--weights", "none",
        "--image-size", "32", "--epochs", "1", "--set", "data.num_workers=0",
        cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    (run,) = _runs(uri)[1]
    assert run.data.params["data.image_size"] == "32" and (tmp_path / "run2" / "tensorboard").is_dir()


def test_study_is_a_parent_run_with_one_child_per_trial(tiny_data, tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    from dogclf.tune import Continuous, SearchSpace, tune

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = {"optim.epochs": 1, "tracking.mlflow": True, "tracking.mlflow_uri": uri, "tracking.experiment": "hpo"}
    cfg = tiny_config(tiny_data, **overrides)
    space = SearchSpace(parameters={"lr": Continuous(min=0.001, max=0.1, scale="log")}, strategy="random")
    for _ in range(2):  # a rerun finds the study complete: same parent, no duplicate children
        result = tune(cfg, space, tmp_path / "tune", n_trials=2, feature_cache=False)
    client, runs = _runs(uri, "hpo")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (parent,) = parents  # trials made no top-level runs of their own
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["dogclf.trial"] for r in children) == ["0", "1"] and len(runs) == 3
    assert parent.data.params["space.parameters.lr.max"] == "0.1" and parent.data.params["model.arch"] == "tiny_cnn"
    assert parent.data.metrics["best_value"] == pytest.approx(result.best_value)
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"best_config.yaml", "results.csv"}
    for child in children:
        assert 0.001 <= float(child.data.params["lr"]) <= 0.1
        assert {"objective", "valid_top1", "epoch_objective"} <= set(child.data.metrics)
        assert child.info.status == "FINISHED"
