"""Every example runs as a user runs it: `python examples/NAME.py`, in a subprocess, on tiny generated data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def run_example(name: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_every_example_is_found():
    assert {"quickstart.py", "custom_dataset.py", "use_as_library.py"} <= {p.name for p in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_help(example, tmp_path):
    proc = run_example(example.name, "--help", cwd=tmp_path, timeout=120)
    assert proc.stdout.startswith("usage:")


def test_quickstart_example_runs_the_whole_local_path(tmp_path):
    work = tmp_path / "qs"
    proc = run_example("quickstart.py", "--workdir", str(work), "--classes", "3", "--per-class", "12",
                       "--image-size", "32", "--arch", "tiny_cnn", "--epochs", "1", "--trials", "2",
                       "--tune-epochs", "1", cwd=tmp_path)  # fmt: skip
    out, run = proc.stdout, work / "run"
    best = re.search(r"best trial \d+: \{'lr': ([0-9.e-]+), 'batch-size': (\d+)\}", out)
    assert best, out
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["optim"]["lr"], config["data"]["batch_size"]) == (float(best[1]), int(best[2]))
    assert "rule                      status" in out and "VanishingGradient" in out
    outputs = [f"profiler report: {run / 'profile' / 'report.html'}", f"debug report: {run / 'debug' / 'report.html'}",
               f"tarball: {run / 'model.tar.gz'}", f"tuning: {work / 'tune' / 'results.csv'}"]  # fmt: skip
    for line in outputs:
        assert line in out, line
        assert Path(line.split(": ", 1)[1]).is_file()
    endpoint = re.search(r"^endpoint top-3: (.+)$", out, re.M)[1].split(", ")
    offline = re.search(r"^predict top-3: (.+)$", out, re.M)[1].split(", ")
    assert len(endpoint) == 3 and [e.split()[0] for e in endpoint] == [o.split()[0] for o in offline]
    assert not list((work / "tune" / "trials").glob("*/checkpoints"))


def test_custom_dataset_example_trains_and_shows_the_confusions(tmp_path):
    proc = run_example("custom_dataset.py", "--sample", str(tmp_path / "sample"), "--output", str(tmp_path / "run"),
                       "--arch", "tiny_cnn", "--epochs", "1", "--image-size", "32", cwd=tmp_path)  # fmt: skip
    assert "4 classes; images per split:" in proc.stdout
    assert re.search(r"^test: top-1 [0-9.]+, top-5 n/a on \d+ images$", proc.stdout, re.M), proc.stdout
    assert "most confused breeds" in proc.stdout
    assert (tmp_path / "run" / "plots" / "confusion_test.png").is_file()
    assert (tmp_path / "run" / "model" / "model.pth").is_file()
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["model"]["freeze"] == "nothing"


@pytest.mark.parametrize(("given", "saved"), [("backbone", "backbone"), ("head", "backbone")])
def test_custom_dataset_example_takes_current_freeze_names_and_old_aliases(tmp_path, given, saved):
    data = tmp_path / "data"
    run_example("custom_dataset.py", "--sample", str(data), "--output", str(tmp_path / "run"), "--arch", "tiny_cnn",
                "--epochs", "2", "--image-size", "32", "--freeze", given, cwd=tmp_path)  # fmt: skip
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["model"]["freeze"] == saved


def test_use_as_library_example_loads_and_predicts(tmp_path):
    proc = run_example("use_as_library.py", "--demo", str(tmp_path / "demo"), cwd=tmp_path)
    trainable = r"^resnet50 for 133 breeds: [\d,]+ trainable parameters with freeze='backbone'$"
    assert re.search(trainable, proc.stdout, re.M), proc.stdout
    assert "loaded tiny_cnn with 3 classes" in proc.stdout
    assert len(re.findall(r"^\w+_\d+\.(jpg|png): \w+ [0-9.]+", proc.stdout, re.M)) == 3, proc.stdout
    assert "logits shape: (3, 3)" in proc.stdout
