"""`dogclf tune` as users run it: close to an exhaustive grid, and resumable after a SIGKILL."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import yaml

from conftest import run_cli
from dogclf.tune.storage import default_storage, open_storage

TINY = [
    "--arch",
    "tiny_cnn",
    "--weights",
    "none",
    "--image-size",
    "32",
    "--workers",
    "0",
    "--set",
    "runtime.threads=1",
    "--set",
    "runtime.progress=false",
]
SPACE = {
    "lr": {"type": "categorical", "values": [0.0003, 0.003, 0.03, 0.3]},
    "batch-size": {"type": "categorical", "values": [4, 16]},
}


def _rows(out):
    with (out / "results.csv").open() as f:
        return list(csv.DictReader(f))


def test_tuner_matches_an_exhaustive_grid_within_one_point(tiny_data, tmp_path):
    frozen = ["--freeze", "head", "--augment", "false", "--epochs", "4", *TINY]
    results = {}
    for strategy in ("grid", "bayesian"):
        space = tmp_path / f"{strategy}.yaml"
        space.write_text(yaml.safe_dump({"parameters": SPACE, "strategy": strategy}))
        out = tmp_path / strategy
        proc = run_cli(
            "tune",
            "--data",
            str(tiny_data),
            "--output",
            str(out),
            "--space",
            str(space),
            "--n-trials",
            "8",
            *frozen,
        )
        assert proc.returncode == 0, proc.stderr
        assert "best: trial" in proc.stdout and "valid:loss" in proc.stdout
        results[strategy] = (_rows(out), json.loads((out / "best.json").read_text()))

    grid_rows, grid_best = results["grid"]
    assert len({(r["lr"], r["batch-size"]) for r in grid_rows}) == 8  # every point of the space, once
    accuracy = {(float(r["lr"]), int(r["batch-size"])): float(r["valid_top1"]) for r in grid_rows}
    grid_pick = accuracy[(grid_best["best_params"]["lr"], grid_best["best_params"]["batch-size"])]
    assert min(accuracy.values()) < grid_pick - 0.2  # the space has bad corners: a random pick could miss

    tpe_rows, tpe_best = results["bayesian"]
    trained = [r for r in tpe_rows if not r["note"].startswith("skipped")]  # a set another trial holds is skipped
    assert {r["path"] for r in trained} == {"feature-cache"}
    assert len({(r["lr"], r["batch-size"]) for r in trained}) == len(trained)
    assert tpe_best["valid_top1"] >= grid_pick - 0.01
    assert tpe_best["best_value"] <= grid_best["best_value"] + 1e-9 or tpe_best["valid_top1"] >= grid_pick


def _study(out):
    return optuna.load_study(study_name="dogclf", storage=default_storage(out))


class _Watcher:
    """Polls a running study's trials through one storage (opening a storage per poll is slow enough to miss
    the moment a trial is training on a loaded machine)."""

    def __init__(self, out):
        self.out, self.storage = out, None

    def trials(self):
        """Trials so far; none while the database file or the study does not exist yet."""
        if self.storage is None:
            if not (self.out / "study.db").exists():
                return []
            self.storage = open_storage(default_storage(self.out))  # safe while tune creates the tables
        try:
            return optuna.load_study(study_name="dogclf", storage=self.storage).get_trials()
        except KeyError:  # optuna: "Record does not exist." until create_study commits
            return []


def test_killed_study_resumes_without_rerunning_completed_trials(tiny_data, tmp_path):
    out = tmp_path / "tune"
    args = [
        "tune",
        "--data",
        str(tiny_data),
        "--output",
        str(out),
        "--n-trials",
        "5",
        "--freeze",
        "full",
        "--epochs",
        "2",
        *TINY,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dogclf.cli.main", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    watcher = _Watcher(out)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            trials = watcher.trials()
            training = [t for t in trials if t.state.name == "RUNNING" and t.params]  # sampled, now training
            if sum(t.state.name == "COMPLETE" for t in trials) >= 2 and training:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"tune ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = _study(out).get_trials()
    done = {t.number: t for t in before if t.state.name == "COMPLETE"}
    killed = [t for t in before if t.state.name == "RUNNING"]
    assert len(done) >= 2 and len(killed) == 1

    metric_files = {n: out / "trials" / f"trial_{n:04d}" / "metrics.jsonl" for n in done}
    written = {n: path.stat().st_mtime_ns for n, path in metric_files.items()}

    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert "interrupted by the last run" in rerun.stderr
    after = _study(out).get_trials()
    for number, old in done.items():  # completed trials are kept as they were, not run again
        new = after[number]
        assert (new.state.name, new.params, new.value, new.datetime_start) == (
            "COMPLETE",
            old.params,
            old.value,
            old.datetime_start,
        )
    fresh = after[len(before) :]
    assert all(t.params != old.params for t in fresh for old in done.values())
    assert all(t.number > max(t0.number for t0 in before) for t in fresh)  # the count continues
    assert sum(t.state.name == "COMPLETE" for t in after) == 5
    interrupted = after[killed[0].number]
    assert interrupted.state.name == "FAIL" and interrupted.user_attrs["interrupted"] is True
    retry = [t for t in fresh if t.user_attrs.get("retry_of") == interrupted.number]
    if interrupted.params:  # killed while training (the usual case): exactly these parameters run again
        assert len(retry) == 1 and retry[0].params == interrupted.params and retry[0].state.name == "COMPLETE"
    else:  # killed between creating the trial and sampling: nothing to repeat
        assert retry == []
    assert {n: path.stat().st_mtime_ns for n, path in metric_files.items()} == written  # not trained again
    for t in fresh:
        assert (out / "trials" / f"trial_{t.number:04d}" / "metrics.jsonl").exists()
    rows = _rows(out)
    assert [int(r["trial"]) for r in rows] == [t.number for t in after]
    assert "interrupted" in rows[interrupted.number]["note"]
