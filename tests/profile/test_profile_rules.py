"""The bottleneck rules on recorded-format data written to disk and loaded back with load_profile."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dogclf.config import build_config
from dogclf.errors import ConfigError, DogclfError
from dogclf.profile.data import load_profile
from dogclf.profile.rules import RULES, evaluate_rules

AWS_DEFAULTS = {  # smdebug_rulesconfig.profiler_rules.rules, what SageMaker's ProfilerReport uses
    "StepOutlier": {"stddev": 3, "n_outliers": 10},
    "CPUBottleneck": {"threshold": 50, "gpu_threshold": 10, "cpu_threshold": 90, "patience": 1000},
    "IOBottleneck": {"threshold": 50, "gpu_threshold": 10, "io_threshold": 50, "patience": 1000},
    "LowGPUUtilization": {"threshold_p95": 70, "threshold_p5": 10, "window": 500, "patience": 1000},
    "GPUMemoryIncrease": {"increase": 5, "patience": 1000, "window": 10},
    "BatchSize": {
        "cpu_threshold_p95": 70,
        "gpu_threshold_p95": 70,
        "gpu_memory_threshold_p95": 70,
        "patience": 1000,
        "window": 500,
    },
    "MaxInitializationTime": {"threshold": 20},
    "Dataloader": {"min_threshold": 70, "max_threshold": 200},
}


def write_profile(folder, steps, samples, **meta):
    """Write a profile/ folder in the format ProfilerCallback records."""
    folder.mkdir(parents=True, exist_ok=True)
    base = {
        "interval_ms": 500,
        "workers": 0,
        "cores": 4,
        "batch_size": 32,
        "precision": "fp32",
        "channels_last": False,
        "first_step_seconds": 12.0,
    }
    (folder / "meta.json").write_text(json.dumps({**base, **meta}))
    (folder / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    (folder / "system.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    return load_profile(folder)


def make_steps(n=200, data=0.002, compute=0.02, seed=0, slow=()):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(1, n + 1):
        fwd = compute * 0.4 * (1 + 0.05 * rng.standard_normal()) + (0.5 if i in slow else 0)
        rows.append(
            {
                "step": i,
                "epoch": 1,
                "t": i * 0.03,
                "batch_size": 32,
                "data": data * (1 + 0.05 * rng.random()),
                "forward": fwd,
                "backward": compute * 0.5,
                "optimizer": compute * 0.1,
            }
        )
    return rows


def make_samples(n=1200, cpu=95.0, iowait=1.0, gpu=None, gpu_mem=None):
    rows = []
    for i in range(n):
        row = {
            "t": i * 0.5,
            "cpu": [cpu] * 4,
            "cpu_total": cpu,
            "iowait": iowait,
            "rss_mb": 900.0,
            "disk_read_mbs": 1.0,
            "disk_write_mbs": 0.0,
        }
        if gpu is not None:
            row.update(
                gpu_util=gpu(i) if callable(gpu) else gpu,
                gpu_mem=gpu_mem(i) if callable(gpu_mem) else gpu_mem,
            )
        rows.append(row)
    return rows


def by_name(results):
    return {r.rule: r for r in results}


def test_rule_defaults_are_the_ones_aws_documents():
    for name, expected in AWS_DEFAULTS.items():
        defaults = RULES[name][0]
        assert {k: defaults[k] for k in expected} == expected, name
    assert {
        "StepOutlier",
        "CPUBottleneck",
        "IOBottleneck",
        "Dataloader",
        "LowGPUUtilization",
        "GPUMemoryIncrease",
        "BatchSize",
        "MaxInitializationTime",
        "OverallSystemUsage",
    } == set(RULES)


def test_step_outlier_fires_on_slow_steps_only(tmp_path):
    quiet = by_name(evaluate_rules(write_profile(tmp_path / "a", make_steps(), make_samples(10))))["StepOutlier"]
    assert quiet.status == "NoIssuesFound"
    slow = set(range(20, 200, 15))  # 12 slow steps > n_outliers=10
    data = write_profile(tmp_path / "b", make_steps(slow=slow), make_samples(10))
    result = by_name(evaluate_rules(data))["StepOutlier"]
    assert result.triggered and "12 of 199 steps" in result.finding and "forward" in result.finding
    assert "checkpointing" in result.advice
    tolerant = by_name(evaluate_rules(data, {"StepOutlier_n_outliers": 12}))["StepOutlier"]
    assert tolerant.status == "NoIssuesFound" and tolerant.parameters["n_outliers"] == 12


def test_dataloader_rule_recommends_workers_from_the_core_count(tmp_path):
    healthy = write_profile(tmp_path / "a", make_steps(data=0.002), make_samples(10))
    assert by_name(evaluate_rules(healthy))["Dataloader"].status == "NoIssuesFound"
    starved = write_profile(tmp_path / "b", make_steps(data=0.1), make_samples(10), workers=1, cores=8)
    result = by_name(evaluate_rules(starved))["Dataloader"]
    assert result.triggered and "raise num_workers" in result.advice and "8 CPU cores" in result.advice
    many = write_profile(tmp_path / "c", make_steps(data=0.1), make_samples(10), workers=24, cores=8)
    assert "lower num_workers" in by_name(evaluate_rules(many))["Dataloader"].advice
    enough = write_profile(tmp_path / "d", make_steps(data=0.1), make_samples(10), workers=8, cores=8)
    assert "pre-resize" in by_name(evaluate_rules(enough))["Dataloader"].advice


def test_system_rules_wait_for_patience_then_judge(tmp_path):
    short = by_name(evaluate_rules(write_profile(tmp_path / "a", make_steps(), make_samples(100, iowait=80))))
    assert short["IOBottleneck"].status == "InsufficientData" and "patience=1000" in short["IOBottleneck"].finding
    assert short["CPUBottleneck"].status == "NotApplicable"  # no GPU sampled
    io = by_name(evaluate_rules(write_profile(tmp_path / "b", make_steps(), make_samples(1200, iowait=80))))
    assert io["IOBottleneck"].triggered and "local SSD" in io["IOBottleneck"].advice
    calm = by_name(evaluate_rules(write_profile(tmp_path / "c", make_steps(), make_samples(1200, iowait=2))))
    assert calm["IOBottleneck"].status == "NoIssuesFound"


def test_gpu_rules(tmp_path):
    busy = by_name(evaluate_rules(write_profile(tmp_path / "a", make_steps(), make_samples(1600, gpu=95, gpu_mem=80))))
    for name in ("LowGPUUtilization", "CPUBottleneck", "GPUMemoryIncrease", "BatchSize"):
        assert busy[name].status == "NoIssuesFound", (name, busy[name].finding)
    idle = by_name(evaluate_rules(write_profile(tmp_path / "b", make_steps(), make_samples(1600, gpu=5, gpu_mem=20))))
    assert idle["LowGPUUtilization"].triggered and idle["CPUBottleneck"].triggered  # CPU 95% while GPU 5%
    low = by_name(
        evaluate_rules(write_profile(tmp_path / "c", make_steps(), make_samples(1600, cpu=30, gpu=30, gpu_mem=20)))
    )
    assert low["BatchSize"].triggered and "increase the batch size" in low["BatchSize"].advice
    leak = write_profile(tmp_path / "d", make_steps(), make_samples(1600, gpu=95, gpu_mem=lambda i: 10 + i * 0.05))
    assert by_name(evaluate_rules(leak))["GPUMemoryIncrease"].status == "NoIssuesFound"  # 0.5 points per window
    jump = write_profile(
        tmp_path / "e", make_steps(), make_samples(1600, gpu=95, gpu_mem=lambda i: 10 + 30 * (i > 1300))
    )
    assert by_name(evaluate_rules(jump))["GPUMemoryIncrease"].triggered


def test_initialization_time_and_overall_usage(tmp_path):
    slow = by_name(
        evaluate_rules(write_profile(tmp_path / "a", make_steps(), make_samples(10), first_step_seconds=1500))
    )
    assert slow["MaxInitializationTime"].triggered
    fast = by_name(evaluate_rules(write_profile(tmp_path / "b", make_steps(), make_samples(10))))
    assert fast["MaxInitializationTime"].status == "NoIssuesFound"
    assert (
        fast["OverallSystemUsage"].status == "NoIssuesFound"
        and "CPU p50/p95/p99 95/95/95%" in fast["OverallSystemUsage"].finding
    )


def test_unknown_rule_parameters_are_rejected_with_the_valid_names(tmp_path):
    data = write_profile(tmp_path / "a", make_steps(), make_samples(10))
    with pytest.raises(ConfigError, match="unknown rule parameter.*StepOutlier_sigma.*valid: .*StepOutlier_stddev"):
        evaluate_rules(data, {"StepOutlier_sigma": 2})
    with pytest.raises(ConfigError, match="profile.rules: .*StepOutlier_sigma"):
        build_config(overrides={"profile.rules": {"StepOutlier_sigma": 2}})


def test_missing_profile_folder_says_how_to_make_one(tmp_path):
    with pytest.raises(DogclfError, match="holds no profile data.*--profile"):
        load_profile(tmp_path)
