"""dogclf/entrypoints/train.py and hpo.py under a simulated /opt/ml tree, run as SageMaker runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import tiny_config
from dogclf.artifact import load_artifact
from dogclf.entry_scripts import script_path
from dogclf.sagemaker.bundle import requirements
from dogclf.sagemaker.staging import stage_source_dir
from dogclf.training.metrics import parse_metric_lines

HPS = {
    "arch": "tiny_cnn",
    "weights": "null",
    "freeze": "full",
    "image-size": "32",
    "batch-size": "8",
    "lr": "0.01",
    "workers": "0",
    "epochs": "3",
}


def _opt_ml(tmp_path: Path, data: Path, hps: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A /opt/ml tree (channel, hyperparameters.json, model, output, checkpoints) and its SM_* vars."""
    opt = tmp_path / "opt" / "ml"
    channel = opt / "input" / "data" / "training"
    shutil.copytree(data, channel)
    (opt / "input" / "config").mkdir(parents=True)
    encoded = {k: json.dumps(v) for k, v in hps.items()} | {"sagemaker_program": json.dumps("train.py")}
    (opt / "input" / "config" / "hyperparameters.json").write_text(json.dumps(encoded))
    for d in ("model", "output/data", "checkpoints"):
        (opt / d).mkdir(parents=True)
    env = {
        "SM_INPUT_DIR": str(opt / "input"),
        "SM_INPUT_CONFIG_DIR": str(opt / "input" / "config"),
        "SM_OUTPUT_DIR": str(opt / "output"),
        "SM_OUTPUT_DATA_DIR": str(opt / "output" / "data"),
        "SM_MODEL_DIR": str(opt / "model"),
        "SM_CHANNELS": '["training"]',
        "SM_CHANNEL_TRAINING": str(channel),
        "SM_HOSTS": '["algo-1"]',
        "SM_CURRENT_HOST": "algo-1",
        "SM_NUM_GPUS": "0",
        "SM_HPS": json.dumps(hps),
    }
    return opt, env


def _script(code: Path, env: dict[str, str], args: list[str]) -> subprocess.Popen:
    full = {**os.environ, **env, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=code,
        env=full,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_train_entrypoint_contract_and_spot_resume(tiny_data, tmp_path):
    opt, env = _opt_ml(tmp_path, tiny_data, HPS)
    # /opt/ml/code as the estimator ships it: train.py, a dogclf/ copy and the config (runtime.threads=1)
    # (with the debug extra in its requirements.txt, as a job with the debugger on has)
    code = stage_source_dir(["train.py"], tiny_config(tiny_data, **{"optim.label_smoothing": 0.1}), extras=["debug"])
    assert "smdebug==1.0.34" in (code / "requirements.txt").read_text().splitlines()
    args = [a for k, v in HPS.items() for a in (f"--{k}", v)]  # the toolkit passes hyperparameters as args
    try:
        first = _script(code, env, args)
        deadline = time.monotonic() + 120
        while not (opt / "checkpoints" / "last.pt").exists():  # simulate a spot interruption mid-run
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.02)
        first.kill()
        out1, _ = first.communicate()
        resumed = _script(code, env, [])  # hyperparameters.json alone is enough
        out2, err2 = resumed.communicate(timeout=300)
    finally:
        shutil.rmtree(code)
    assert resumed.returncode == 0, err2
    assert "resuming" in err2 and "phase=train" in out2
    records = [json.loads(line) for line in (opt / "output/data/metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    before, after = parse_metric_lines(out1), parse_metric_lines(out2)
    start = 3 - len(after["valid:loss"])  # epochs restored from the checkpoint, not trained again
    assert 1 <= start < 3 and len(before["valid:loss"]) >= start
    for phase in ("train", "valid"):
        for name in ("loss", "top1", "top5"):
            from_log = before[f"{phase}:{name}"][:start] + after[f"{phase}:{name}"]
            expected = [r[phase][name] for r in records if r[phase][name] is not None]  # top5 n/a: 3 classes
            assert all(abs(a - b) < 1e-6 for a, b in zip(from_log, expected, strict=True)), (phase, name)
    parsed = after
    summary = json.loads((opt / "output/data/summary.json").read_text())
    assert abs(parsed["test:loss"][-1] - summary["metrics"]["test_loss"]) < 1e-6
    artifact = load_artifact(opt / "model")
    assert artifact.metadata.arch == "tiny_cnn" and len(artifact.metadata.class_names) == 3
    served = opt / "model" / "code"  # model.tar.gz deploys as is: the serving code rides along
    assert (served / "inference.py").read_bytes() == script_path("inference.py").read_bytes()
    assert (served / "dogclf" / "serve" / "handlers.py").is_file()
    # serving gets dogclf's own dependencies, not the job's training extras
    assert (served / "requirements.txt").read_text() == requirements() and "pydantic" in requirements()
    assert "smdebug" not in requirements()
    assert (opt / "checkpoints" / "config.yaml").read_text().count("label_smoothing: 0.1") == 1
    assert not (opt / "output" / "failure").exists()


def test_failure_file_names_the_problem(tiny_data, tmp_path):
    opt, env = _opt_ml(tmp_path, tiny_data, {**HPS, "lr": "-1"})
    proc = _script(script_path("train.py").parent, env, [])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    failure = (opt / "output" / "failure").read_text()
    assert "optim.lr" in failure and "-1" in failure and "optim.lr" in err


def test_hpo_entrypoint_never_sees_test(tiny_data, tmp_path, monkeypatch, capsys):
    import runpy

    opt, env = _opt_ml(tmp_path, tiny_data, {**HPS, "epochs": "1"})
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(sys, "argv", ["hpo.py", "--lr", "0.02"])
    with pytest.raises(SystemExit) as exited:  # the packaged script, run as SageMaker runs it
        runpy.run_path(str(script_path("hpo.py")), run_name="__main__")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    parsed = parse_metric_lines(out)
    assert len(parsed["valid:loss"]) == 1 and parsed["test:loss"] == []
    summary = json.loads((opt / "output/data/summary.json").read_text())
    assert set(summary["evaluation"]) == {"valid"}
    assert "lr: 0.02" in (opt / "checkpoints" / "config.yaml").read_text()
