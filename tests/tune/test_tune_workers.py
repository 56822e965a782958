"""Several `dogclf tune` workers on one study, as on several machines: a real PostgreSQL server (and SQLite).

Each worker is a real `dogclf tune` process with its own --output folder (one per machine) and otherwise the
same command; the checks read the study back from the database.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import run_cli, tiny_config
from dogclf.cli.main import main as cli_main
from dogclf.tune import SearchSpace, tune
from dogclf.tune.storage import open_storage
from dogclf.tune.workers import counts

TINY = [
    "--arch",
    "tiny_cnn",
    "--weights",
    "none",
    "--image-size",
    "32",
    "--workers",
    "0",
    "--freeze",
    "full",
    "--set",
    "runtime.threads=1",
    "--set",
    "runtime.progress=false",
]
SPACE = {
    "lr": {"type": "categorical", "values": [0.0003, 0.003, 0.03, 0.3]},
    "batch-size": {"type": "categorical", "values": [4, 16]},
}


def _bindir() -> Path | None:
    """Where initdb, pg_ctl and createdb are: Debian keeps them off PATH, in /usr/lib/postgresql/VERSION/bin."""
    candidates = [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    if found := shutil.which("pg_ctl"):
        candidates.append(Path(found).resolve().parent)
    tools = ("initdb", "pg_ctl", "createdb")
    return next((d for d in candidates if all((d / tool).exists() for tool in tools)), None)


class Postgres:
    """A private PostgreSQL server on a Unix socket in a temporary folder (as `postgres` when run as root)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir, self.root = bindir, Path(tempfile.mkdtemp(prefix="dogclf-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root
            shutil.chown(self.root, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data, self.log = self.root / "data", self.root / "server.log"

    def _run(self, *argv: str | Path) -> None:
        proc = subprocess.run([*self.as_user, *map(str, argv)], capture_output=True, text=True, timeout=120)
        if proc.returncode:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {proc.stdout}{proc.stderr}{log}")

    def start(self) -> None:
        self._run(self.bindir / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8")
        options = f"-k {self.root} -h '' -c fsync=off -c max_connections=50"
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def database(self, name: str) -> str:
        """A new empty database; its SQLAlchemy URL."""
        self._run(self.bindir / "createdb", "-h", self.root, "-U", "postgres", name)
        return f"postgresql://postgres@/{name}?host={self.root}"


@pytest.fixture(scope="module")
def postgres():
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; .ci/run installs the postgresql package")
    server = Postgres(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def space_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"parameters": SPACE, "strategy": "bayesian"}))
    return path


def _worker_args(data, out, url, space):
    return ["tune", "--data", str(data), "--output", str(out), "--space", str(space), "--storage", url, *TINY]


def _worker(data, out, url, space, *extra):
    """A `dogclf tune` process, as started on one machine."""
    return subprocess.Popen(
        [sys.executable, "-m", "dogclf.cli.main", *_worker_args(data, out, url, space), *extra],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _trials(url):
    return optuna.load_study(study_name="dogclf", storage=open_storage(url)).get_trials()


def _key(t):
    return tuple(sorted(t.params.items()))


@pytest.mark.slow
def test_two_workers_share_the_budget_and_never_repeat_parameters(postgres, tiny_data, tmp_path, space_file):
    url = postgres.database("shared")
    extra = ["--n-trials", "6", "--epochs", "1"]
    started = time.monotonic()
    workers = [_worker(tiny_data, tmp_path / f"machine-{i}", url, space_file, *extra) for i in range(2)]
    outputs = [w.communicate(timeout=400) for w in workers]
    seconds = time.monotonic() - started
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-3000:]

    trials = _trials(url)
    finished = [t for t in trials if counts(t)]
    assert 6 <= len(finished) <= 7, [(t.number, t.state.name, t.params) for t in trials]  # the study's budget
    ran = [t for t in trials if "skipped" not in t.user_attrs]  # every trial that trained
    assert len({_key(t) for t in ran}) == len(ran), [(t.number, t.params) for t in ran]
    per_worker = Counter(t.user_attrs["worker"] for t in finished)
    names = {f"{os.uname().nodename}:{(tmp_path / f'machine-{i}').resolve()}" for i in range(2)}
    assert set(per_worker) == names  # both workers took trials of the one study
    summary = f"finished trials per worker: {', '.join(f'{w} {n}' for w, n in sorted(per_worker.items()))}"
    assert summary in outputs[0][0] or summary in outputs[1][0]
    print(f"{len(finished)} finished, per worker {dict(per_worker)}, {len(trials)} trials, {seconds:.0f} s")

    # A late worker finds the budget met, says so, and runs nothing; --status shows the study from the database.
    late = run_cli(*_worker_args(tiny_data, tmp_path / "machine-2", url, space_file), *extra)
    assert late.returncode == 0, late.stderr
    assert f"already holds {len(finished)} finished trials: budget of 6 met, nothing to run" in late.stderr
    assert len(_trials(url)) == len(trials)
    status = run_cli("tune", "--status", "--storage", url)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    waiting = sum(t.state.name == "WAITING" for t in trials)  # free points queued by skipped trials
    assert lines[0] == f"study 'dogclf': {len(finished)} of 6 finished trials, 0 running, {waiting} waiting, " + (
        f"{len(trials)} in all"
    )
    for name, n in per_worker.items():
        assert f"  {name}: {n} finished" in lines


def _wait_for_training(url, pid, deadline):
    """The trial that worker `pid` trains once it has reported an epoch (it has a heartbeat by then)."""
    storage = open_storage(url)
    while time.monotonic() < deadline:
        try:
            trials = optuna.load_study(study_name="dogclf", storage=storage).get_trials()
        except KeyError:  # the study is not created yet
            trials = []
        for t in trials:
            if t.state.name == "RUNNING" and t.user_attrs.get("worker_pid") == pid and t.intermediate_values:
                return t
        time.sleep(0.05)
    return None


@pytest.mark.slow
def test_a_killed_workers_trial_is_failed_and_rerun_by_another_worker(postgres, tiny_data, tmp_path, space_file):
    url = postgres.database("killed")
    extra = ["--n-trials", "4", "--epochs", "3", "--heartbeat", "2"]
    victim = _worker(tiny_data, tmp_path / "machine-0", url, space_file, *extra)
    survivor = _worker(tiny_data, tmp_path / "machine-1", url, space_file, *extra)
    try:
        caught = _wait_for_training(url, victim.pid, time.monotonic() + 240)
        assert caught is not None and victim.poll() is None, "the worker never trained a trial"
        victim.send_signal(signal.SIGKILL)
        killed_at = datetime.now()
        victim.wait(timeout=30)
        _, err = survivor.communicate(timeout=400)
    finally:
        for p in (victim, survivor):
            if p.poll() is None:
                p.kill()
    assert survivor.returncode == 0, err[-3000:]

    trials = _trials(url)
    lost = trials[caught.number]
    assert lost.state.name == "FAIL" and "error" not in lost.user_attrs  # failed by the heartbeat check
    reruns = [t for t in trials if t.system_attrs.get("failed_trial") == lost.number]
    assert len(reruns) == 1, [(t.number, t.state.name, t.system_attrs) for t in trials]
    rerun = reruns[0]
    assert rerun.state.name == "COMPLETE" and rerun.params == lost.params
    assert rerun.user_attrs["worker_pid"] == survivor.pid
    kept = {e: v for e, v in lost.intermediate_values.items()}
    assert kept and {e: rerun.intermediate_values[e] for e in kept} == kept  # the lost trial's reports carried over
    assert sorted(rerun.intermediate_values) == [1, 2, 3]
    finished = [t for t in trials if counts(t)]
    assert 4 <= len(finished) <= 5 and len({_key(t) for t in finished}) == len(finished)
    recovery = (rerun.datetime_start - killed_at).total_seconds()
    print(f"killed trial {lost.number} rerun as trial {rerun.number} {recovery:.1f} s after the kill")

    rows = run_cli("tune", "--status", "--storage", url).stdout
    assert "its worker stopped sending heartbeats" in rows and f"rerun of trial {lost.number}" in rows


def test_a_missing_database_driver_is_one_line_naming_the_install(tiny_data, tmp_path, space_file):
    blocker = tmp_path / "no-driver" / "psycopg"  # SQLAlchemy 2.1 connects postgresql:// URLs with psycopg 3
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'psycopg'\", name='psycopg')\n")
    path = os.pathsep.join([str(blocker.parent), os.environ.get("PYTHONPATH", "")])
    out = tmp_path / "machine"
    url = "postgresql://postgres@/x?host=/nonexistent"
    proc = run_cli(*_worker_args(tiny_data, out, url, space_file), "--n-trials", "1", env={"PYTHONPATH": path})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "dogclf: error: --storage postgresql://... needs the driver psycopg, which is not installed: "
        "pip install 'dogclf[postgres]'"
    ]
    assert not out.exists()  # refused before anything was written


def test_status_reads_a_study_and_names_what_is_missing(tiny_data, tmp_path, capsys):
    out = tmp_path / "tune"
    assert cli_main(["tune", "--status", "--output", str(out)]) == 2
    assert capsys.readouterr().err == f"dogclf: error: no study database at sqlite:///{out / 'study.db'}\n"
    assert not out.exists()  # nothing created
    cfg = tiny_config(tiny_data, **{"model.freeze": "head", "data.augment": False})
    tune(cfg, SearchSpace.model_validate({"parameters": SPACE}), out, n_trials=2)
    capsys.readouterr()
    assert cli_main(["tune", "--status", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("study 'dogclf': 2 of 2 finished trials, 0 running, 0 waiting, ")
    assert f"{os.uname().nodename}:{out.resolve()}: 2 finished" in printed
    assert "best: trial" in printed and "valid:loss" in printed
    assert cli_main(["tune", "--status", "--output", str(out), "--study-name", "other"]) == 2
    assert "no study 'other'" in capsys.readouterr().err
