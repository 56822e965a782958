"""Rules, reports and profiling inside the job: the request sent to moto, replayed through the entry script.

Each replay builds the /opt/ml tree SageMaker would (the job's source tarball from S3 as /opt/ml/code, its
hyperparameters.json as captured, a training channel, SM_* variables) and runs train.py as the training toolkit
does (the hyperparameters also as `--name value` arguments).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from sm_moto import BUCKET, ROLE, aws_env, capture, conn, moto_url, recorded, start_recording  # noqa: F401

import dogclf.sagemaker as sm
from conftest import run_cli, tiny_config
from dogclf.config import RunConfig
from dogclf.errors import ArtifactError
from dogclf.hyperparameters import HYPERPARAMETERS
from dogclf.profile.data import TRACE_FILE
from dogclf.sagemaker.insight import DEBUG_REPORT, PROFILER_REPORT, REPORT_FILES, VERDICTS_FILE, rule_names

DATA = f"s3://{BUCKET}/data/dogs"
SERVICE_FIELDS = ("DebugHookConfig", "DebugRuleConfigurations", "ProfilerRuleConfigurations")


def _request(conn, cfg: RunConfig, **options) -> dict:  # noqa: F811
    seen = capture(conn, "CreateTrainingJob")
    opts = sm.EstimatorOptions(role=ROLE, instance_type="ml.m5.large", **options)
    sm.submit(conn, sm.make_estimator(cfg, conn, opts), DATA)
    return seen[-1]


def _replay(conn, req: dict, data: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:  # noqa: F811
    """Run the job of `req` in a simulated /opt/ml tree; (the finished process, the /opt/ml folder)."""
    opt = tmp_path / "opt" / "ml"
    hps = req["HyperParameters"]
    bucket, key = json.loads(hps["sagemaker_submit_directory"])[5:].split("/", 1)
    tarball = tmp_path / "sourcedir.tar.gz"
    tarball.write_bytes(conn.s3_client().get_object(Bucket=bucket, Key=key)["Body"].read())
    code = opt / "code"
    with tarfile.open(tarball) as tar:
        tar.extractall(code, filter="data")
    shutil.copytree(data, opt / "input" / "data" / "training")
    (opt / "input" / "config").mkdir(parents=True)
    (opt / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hps))
    for folder in ("model", "output/data", "checkpoints"):
        (opt / folder).mkdir(parents=True)
    decoded = {k: json.loads(v) for k, v in hps.items() if not k.startswith("sagemaker_")}
    env = {
        **os.environ,
        "SM_INPUT_DIR": str(opt / "input"),
        "SM_OUTPUT_DIR": str(opt / "output"),
        "SM_OUTPUT_DATA_DIR": str(opt / "output" / "data"),
        "SM_MODEL_DIR": str(opt / "model"),
        "SM_CHANNELS": '["training"]',
        "SM_CHANNEL_TRAINING": str(opt / "input" / "data" / "training"),
        "SM_HOSTS": '["algo-1"]',
        "SM_CURRENT_HOST": "algo-1",
        "SM_HPS": json.dumps(decoded),
        "OMP_NUM_THREADS": "1",
    }
    argv = [a for name, value in decoded.items() for a in (f"--{name}", str(value))]
    script = json.loads(hps["sagemaker_program"])
    proc = subprocess.run([sys.executable, script, *argv], cwd=code, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    return proc, opt


def _flat(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): node}


@pytest.mark.slow
def test_default_job_runs_rules_and_reports_inside_and_trains_what_was_asked(conn, tiny_data, tmp_path):  # noqa: F811
    local = tiny_config(tiny_data, **{"optim.epochs": 3, "debug.save_interval": 2, "optim.grad_clip": None,
                                      "optim.early_stopping_patience": None})  # fmt: skip
    assert local.model.weights is None  # the default would be ImageNet weights
    req = _request(conn, local)
    assert [f for f in SERVICE_FIELDS if f in req] == []
    assert req.get("ProfilerConfig", {"DisableProfiler": True}) == {"DisableProfiler": True}
    hps = {k: json.loads(v) for k, v in req["HyperParameters"].items()}
    assert set(HYPERPARAMETERS) <= set(hps)  # every setting, None included
    assert (hps["weights"], hps["grad-clip"], hps["debug"], hps["profile"]) == ("null", "null", "true", "true")
    definitions = {d["Name"]: d["Regex"] for d in req["AlgorithmSpecification"]["MetricDefinitions"]}
    assert {f"rule:{name}" for name in rule_names()} <= set(definitions) and len(definitions) <= 40

    proc, opt = _replay(conn, req, tiny_data, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the job's resolved config (kept with its checkpoints) is the local one, but for what the job adds
    resolved = _flat(yaml.safe_load((opt / "checkpoints" / "config.yaml").read_text()))
    expected = _flat(local.model_dump(mode="json"))
    differ = {k for k in expected if resolved[k] != expected[k]}
    assert differ == {"data.root", "debug.enabled", "debug.live_rules", "debug.live_stop_on", "profile.enabled"}
    assert resolved["data.root"] == str(opt / "input" / "data" / "training")
    assert (resolved["debug.enabled"], resolved["debug.live_rules"], resolved["profile.enabled"]) == (True,) * 3
    assert resolved["debug.live_stop_on"] == [] and resolved["model.weights"] is None

    out = opt / "output" / "data"
    verdicts = json.loads((out / VERDICTS_FILE).read_text())
    assert "dogclf debug report" in (out / DEBUG_REPORT).read_text()
    assert "<html" in (out / PROFILER_REPORT).read_text().lower()
    final = {r["rule"]: r["status"] for r in verdicts["debug"] + verdicts["profiler"]}
    assert set(final) == set(rule_names()) and verdicts["stopped_by"] == []
    assert (out / "profile" / TRACE_FILE).is_file()  # torch.profiler ran
    log = proc.stdout + proc.stderr
    fired = {"IssuesFound": 1, "NoIssuesFound": 0}
    for rule, status in final.items():  # SageMaker's parse: the last value of each metric is the final verdict
        values = [float(m.group(1)) for m in re.finditer(definitions[f"rule:{rule}"], log)]
        assert values and values[-1] == fired.get(status, -1), rule
    assert not (opt / "output" / "failure").exists()
    _reports_back_on_the_laptop(conn, req["TrainingJobName"], out, verdicts, tmp_path)


def _upload_output(conn, job: str, add) -> None:  # noqa: F811
    """The job's output.tar.gz where SageMaker puts it, with the members `add(tar)` writes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        add(tar)
    conn.s3_client().put_object(Bucket=BUCKET, Key=f"dogclf/output/{job}/output/output.tar.gz", Body=buf.getvalue())


def _reports_back_on_the_laptop(conn, job: str, out: Path, verdicts: dict, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(sm.SageMakerError, match=f"no s3://{BUCKET}/dogclf/output/{job}/output/output.tar.gz yet"):
        sm.download_job_reports(conn, job, tmp_path / "early")
    _upload_output(conn, job, lambda tar: tar.add(out, arcname="."))  # SM_OUTPUT_DATA_DIR, as SageMaker packs it
    got = sm.download_job_reports(conn, job, tmp_path / "reports")
    written = sorted(p.relative_to(tmp_path / "reports").as_posix() for p in (tmp_path / "reports").rglob("*.*"))
    assert written == sorted(REPORT_FILES) and sorted(f.name for f in got.files) == sorted(
        Path(f).name for f in REPORT_FILES)  # fmt: skip
    assert [r.to_dict() for r in got.verdicts.debug] == verdicts["debug"]
    assert (tmp_path / "reports" / DEBUG_REPORT).read_bytes() == (out / DEBUG_REPORT).read_bytes()
    common = ["--bucket", BUCKET, "--endpoint-url", conn.endpoint_url]
    r = run_cli("sagemaker", "reports", job, "-o", str(tmp_path / "cli"), *common)
    assert r.returncode == 0, r.stderr
    for row in verdicts["debug"] + verdicts["profiler"]:
        assert re.search(rf"^{row['rule']} +{row['status']}", r.stdout, re.M), row["rule"]
    assert f"wrote {tmp_path / 'cli' / VERDICTS_FILE}" in r.stdout


def test_job_reports_refuse_unsafe_or_missing_members(conn, tmp_path):  # noqa: F811
    linked, service = (_request(conn, tiny_config(tmp_path))["TrainingJobName"] for _ in range(2))
    verdicts = tmp_path / VERDICTS_FILE
    verdicts.write_text(json.dumps({"debug": [], "profiler": [], "stopped_by": []}))

    def with_link(tar):
        tar.add(verdicts, arcname=VERDICTS_FILE)
        link = tarfile.TarInfo(DEBUG_REPORT)
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)

    _upload_output(conn, linked, with_link)
    with pytest.raises(ArtifactError, match=f"refusing link '{DEBUG_REPORT}' -> '/etc/passwd'"):
        sm.download_job_reports(conn, linked, tmp_path / "linked")
    assert not (tmp_path / "linked").exists()
    _upload_output(conn, service, lambda tar: tar.add(verdicts, arcname="metrics.jsonl"))
    with pytest.raises(sm.SageMakerError, match="holds no rule-verdicts.json.*profiler-report"):
        sm.download_job_reports(conn, service, tmp_path / "service")
    assert not (tmp_path / "service").exists()


def _stop_job(conn, tiny_data, tmp_path, lr: float):  # noqa: F811
    # 30 steps in all: LossNotDecreasing decides on 2-step windows (its default windows need more steps than that)
    cfg = tiny_config(tiny_data, **{"optim.epochs": 6, "optim.lr": lr, "optim.optimizer": "sgd",
                                    "optim.scheduler": "none", "debug.save_interval": 1,
                                    "debug.rule_parameters": {"LossNotDecreasing": {"num_steps": 2}}})  # fmt: skip
    req = _request(conn, cfg, profiler=False, stop_on_rules=("ExplodingTensor", "LossNotDecreasing"))
    return _replay(conn, req, tiny_data, tmp_path)


def test_stop_on_rule_ends_a_diverging_job_with_the_rule_named(conn, tiny_data, tmp_path):  # noqa: F811
    proc, opt = _stop_job(conn, tiny_data, tmp_path, lr=10.0)
    assert proc.returncode == 1, proc.stderr[-3000:]
    failure = (opt / "output" / "failure").read_text()
    rule = re.match(r"rule (\w+) fired at step \d+", failure).group(1)
    assert rule in ("ExplodingTensor", "LossNotDecreasing") and "training stopped" in failure
    epochs = [json.loads(line)["epoch"] for line in (opt / "output/data/metrics.jsonl").read_text().splitlines()]
    assert len(epochs) < 6  # stopped early, cleanly: the model and the reports are still written
    assert (opt / "model" / "model.pth").is_file() and (opt / "output/data" / DEBUG_REPORT).is_file()
    verdicts = json.loads((opt / "output/data" / VERDICTS_FILE).read_text())
    assert rule in [r["rule"] for r in verdicts["stopped_by"]]


def test_stop_on_rule_lets_a_healthy_job_finish(conn, tiny_data, tmp_path):  # noqa: F811
    proc, opt = _stop_job(conn, tiny_data, tmp_path, lr=0.01)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (opt / "output" / "failure").exists()
    assert len((opt / "output/data/metrics.jsonl").read_text().splitlines()) == 6


def test_cli_default_sends_no_service_config_and_opts_back_in(aws_env, conn, tiny_data):  # noqa: F811
    common = ["--data", DATA, "--role", ROLE, "--bucket", BUCKET, "--endpoint-url", aws_env]
    bucket, key = DATA[5:].split("/", 1)
    conn.s3_client().put_object(Bucket=bucket, Key=f"{key}/train/a/1.jpg", Body=b"x")  # --data must hold objects
    start_recording(aws_env)
    r = run_cli("sagemaker", "train", "--stop-on-rule", "Overfit,LossNotDecreasing", *common)
    assert r.returncode == 0, r.stderr
    r = run_cli("sagemaker", "train", "--sagemaker-debugger", "--rule", "overtraining", *common)
    assert r.returncode == 0, r.stderr
    default, service = recorded(aws_env, "CreateTrainingJob")
    assert [f for f in SERVICE_FIELDS if f in default] == []
    shipped = {k: json.loads(v) for k, v in default["HyperParameters"].items()}
    assert shipped["debug-rules"] == "true"
    assert {r["RuleConfigurationName"] for r in service["DebugRuleConfigurations"]} >= {"Overtraining"}
    assert [r["RuleConfigurationName"] for r in service["ProfilerRuleConfigurations"]] == ["ProfilerReport"]
    for flags, message in (
        (["--rule", "overtraining"], "--rule configures the SageMaker Debugger service: add --sagemaker-debugger"),
        (["--stop-on-rule", "Nope"], "--stop-on-rule: unknown rule(s) ['Nope']"),
        (["--stop-on-rule", "Overfit", "--sagemaker-debugger"], "--stop-on-rule needs the rules inside the job"),
    ):
        r = run_cli("sagemaker", "train", *flags, *common)
        assert r.returncode == 2 and message in r.stderr.strip().splitlines()[-1], r.stderr
