"""Kill a `--debug` training run, resume it, and get the uninterrupted run's tensors; a finished run says so."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import run_cli
from dogclf.data.synthetic import make_dataset
from dogclf.debug.engine import load_trial

EPOCHS = 4
ARGS = [
    *("--arch", "tiny_cnn", "--weights", "none", "--freeze", "nothing", "--epochs", str(EPOCHS)),
    *("--batch-size", "4", "--image-size", "32", "--lr", "0.01", "--workers", "0", "--seed", "3"),
    *("--debug", "--debug-save-interval", "3", "--set", "runtime.threads=1", "--set", "runtime.progress=false"),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "dogs", classes=3, per_class=16, size=32, eval_per_class=4)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """The same run, uninterrupted."""
    out = tmp_path_factory.mktemp("runs") / "reference"
    r = run_cli("train", "--data", str(data), "--output", str(out), *ARGS)
    assert r.returncode == 0, r.stderr
    return out


def _saved(run) -> dict[str, dict[int, np.ndarray]]:
    """Every saved tensor's value at every saved step."""
    trial = load_trial(run / "debug")
    return {name: {s: trial.tensor(name).value(s) for s in trial.tensor(name).steps()} for name in trial.tensor_names()}


def _interrupt(data, out, sig: int) -> int:
    """Start the run, send `sig` once two epochs are in metrics.jsonl; the epochs it had finished."""
    cmd = [sys.executable, "-m", "dogclf.cli.main", "train", "--data", str(data), "--output", str(out), *ARGS]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics, deadline = out / "metrics.jsonl", time.time() + 180
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.01)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    done = metrics.read_text().count("\n")
    assert 2 <= done < EPOCHS and not (out / "summary.json").exists(), "the signal must land mid-run"
    return done


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_resumed_debug_run_saves_the_uninterrupted_runs_tensors(data, reference, tmp_path, sig):
    out = tmp_path / "run"
    _interrupt(data, out, sig)
    resumed = run_cli("train", "--data", str(data), "--output", str(out), "--resume", *ARGS)
    assert resumed.returncode == 0, resumed.stderr
    assert "will not be writing" not in resumed.stderr and "already finished" not in resumed.stderr
    expected, got = _saved(reference), _saved(out)
    assert sorted(got) == sorted(expected)
    for name, steps in expected.items():
        assert sorted(got[name]) == sorted(steps), name  # the same steps: none lost, none twice
        for step, value in steps.items():
            np.testing.assert_allclose(got[name][step], value, rtol=1e-5, atol=1e-6, err_msg=f"{name} step {step}")


def test_resuming_a_finished_run_says_so_in_one_line(data, reference):
    summary = reference / "summary.json"
    before = (summary.read_bytes(), summary.stat().st_mtime_ns)
    r = run_cli("train", "--data", str(data), "--output", str(reference), "--resume", *ARGS, "--profile")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines() == [f"dogclf: {reference} already finished ({summary}); nothing to resume"]
    assert r.stdout == ""
    assert (summary.read_bytes(), summary.stat().st_mtime_ns) == before
