"""The tuning-trial entry script with --data: trials train and validate, and never read the test split."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from dogclf.training.metrics import parse_metric_lines

ARGS = ["--arch", "tiny_cnn", "--weights", "null", "--image-size", "32", "--batch-size", "8", "--workers", "0"]


def _entry(mode: str, data, out) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", f"dogclf.entrypoints.{mode}", "--data", str(data), "--output-data-dir", str(out)]
    return subprocess.run([*cmd, *ARGS, "--epochs", "1"], capture_output=True, text=True, timeout=300)


@pytest.fixture
def poisoned(tiny_data, tmp_path):
    """tiny_data with an undecodable image in test/: a run that reads the test split fails on it."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    first_class = sorted((data / "test").iterdir())[0]
    (first_class / "broken.jpg").write_bytes(b"not an image")
    return data


def test_hpo_trial_never_reads_the_test_split(poisoned, tmp_path):
    r = _entry("hpo", poisoned, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    metrics = parse_metric_lines(r.stdout)
    assert metrics["valid:loss"] and metrics["test:loss"] == []
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["evaluation"]) == {"valid"}


def test_training_job_reads_the_test_split(poisoned, tmp_path):
    r = _entry("train", poisoned, tmp_path / "out")
    assert r.returncode == 2 and "broken.jpg" in r.stderr, r.stderr


def test_hpo_trial_on_a_flat_folder_never_evaluates_test(tiny_data, tmp_path):
    flat = tmp_path / "flat"
    for folder in (tiny_data / "train").iterdir():
        shutil.copytree(folder, flat / folder.name)
    r = _entry("hpo", flat, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert parse_metric_lines(r.stdout)["test:loss"] == []
    assert set(json.loads((tmp_path / "out" / "summary.json").read_text())["evaluation"]) == {"valid"}
