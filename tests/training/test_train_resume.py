"""SIGKILL a CLI training run mid-way, resume it, and get exactly the uninterrupted run's results."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import run_cli
from dogclf.data.synthetic import make_dataset

ARGS = [
    "--arch",
    "tiny_cnn",
    "--weights",
    "none",
    "--freeze",
    "full",
    "--epochs",
    "4",
    "--batch-size",
    "4",
    "--image-size",
    "32",
    "--lr",
    "0.01",
    "--workers",
    "1",
    "--seed",
    "7",
    "--set",
    "runtime.threads=1",
    "--set",
    "optim.warmup_epochs=0.5",
]


def _rows(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _final(run):
    return json.loads((run / "summary.json").read_text())["metrics"]


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    data = make_dataset(tmp_path / "data", classes=3, per_class=40, size=32, eval_per_class=6)
    reference = tmp_path / "reference"
    done = run_cli("train", "--data", str(data), "--output", str(reference), *ARGS)
    assert done.returncode == 0, done.stderr

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dogclf.cli.main", "train", "--data", str(data), "--output", str(killed), *ARGS],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    metrics = killed / "metrics.jsonl"
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epochs_before_kill = metrics.read_text().count("\n")
    assert 1 <= epochs_before_kill < 4, "the kill must land before the run finished"
    assert not (killed / "summary.json").exists()

    resumed = run_cli("train", "--data", str(data), "--output", str(killed), "--resume", *ARGS)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {killed} after epoch {epochs_before_kill}" in resumed.stderr
    assert _rows(killed) == _rows(reference)
    assert _final(killed) == _final(reference)


def _resumable_run(tmp_path, data):
    out = tmp_path / "run"
    cmd = ["train", "--data", str(data), "--output", str(out), *ARGS[:6], "--epochs", "1", "--image-size", "32"]
    r = run_cli(*cmd)
    assert r.returncode == 0, r.stderr
    return out, [*cmd, "--resume"]


def _one_line_error(r) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("dogclf: error: "), r.stderr
    return lines[-1]


def test_broken_resume_inputs_are_one_line_errors_naming_the_file(tmp_path):
    import torch

    data = make_dataset(tmp_path / "d", classes=2, per_class=4, size=32, eval_per_class=2)
    out, resume = _resumable_run(tmp_path, data)
    ckpt_path = out / "checkpoints" / "last.pt"
    good = torch.load(ckpt_path, weights_only=True)
    config = (out / "config.yaml").read_text()
    (out / "summary.json").unlink()  # killed before its final outputs: a resume has work to do

    torch.save({k: v for k, v in good.items() if k != "scaler"}, ckpt_path)
    assert f"cannot resume from {ckpt_path}: it lacks scaler" in _one_line_error(run_cli(*resume))

    model = dict(good["model"])
    model.pop(next(iter(model)))
    torch.save({**good, "model": model}, ckpt_path)
    assert "does not fit this run's model/optimizer (" in _one_line_error(run_cli(*resume))

    torch.save(good, ckpt_path)
    (out / "config.yaml").write_text("data: [unclosed\n")
    message = _one_line_error(run_cli(*resume))
    assert f"cannot resume {out}: config file {out / 'config.yaml'} is not valid YAML/JSON" in message
    (out / "config.yaml").write_text("- data\n- model\n")
    assert "must hold a mapping of sections, got a list" in _one_line_error(run_cli(*resume))

    (out / "config.yaml").write_text(config)  # repaired: the same resume goes through
    assert run_cli(*resume).returncode == 0
