"""Data-parallel training on CPU: torchrun, 2 processes, gloo; rank 0 alone writes the artifact and run files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from conftest import ROOT
from dogclf.artifact import load_artifact
from dogclf.training.metrics import parse_metric_lines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_cpu_processes(tiny_data, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(ROOT / "src" / "dogclf" / "entrypoints" / "train.py"),
        "--data",
        str(tiny_data),
        "--output-data-dir",
        str(run),
        "--arch",
        "tiny_cnn",
        "--weights",
        "none",
        "--freeze",
        "full",
        "--image-size",
        "32",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--epochs",
        "2",
        "--debug",  # the file-writing callbacks too: smdebug hook and profiler
        "--profile",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parsed = parse_metric_lines(proc.stdout)
    assert len(parsed["train:loss"]) == 2 and len(parsed["test:loss"]) == 1  # rank 0 alone prints
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["train"]["n"] for r in records] == [36, 36]  # each rank saw 18; sums reduced over both
    assert all(abs(r["train"]["loss"] - v) < 1e-6 for r, v in zip(records, parsed["train:loss"], strict=True))
    artifact = load_artifact(run / "model")
    assert artifact.metadata.num_classes == 3
    assert sorted(p.name for p in (run / "model").iterdir()) == ["metadata.json", "model.pth", "splits.json"]
    # smdebug names its files by torch.distributed rank: only worker_0 wrote tensors
    assert {p.name.split("_", 1)[1] for p in (run / "debug" / "events").rglob("*.tfevents")} == {"worker_0.tfevents"}
    steps = (run / "profile" / "steps.jsonl").read_text().splitlines()
    assert len(steps) == 2 * 5  # rank 0's 5 steps per epoch (18 images, batch 4), once each
    assert [json.loads(s)["step"] for s in steps] == list(range(1, 11))
    assert "ChildFailedError" not in proc.stderr
