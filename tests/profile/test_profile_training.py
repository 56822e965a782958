"""Profiled training runs: a starved loader, an injected slow step, the files, the report and the CLI."""

from __future__ import annotations

import json
import time

import pytest
from torch.utils.data import Dataset

from browser import render
from conftest import run_cli, tiny_config
from dogclf.profile.data import load_profile
from dogclf.profile.report import write_report
from dogclf.training import Callback, TrainContext, Trainer, train
from dogclf.workflow import config_callbacks

PROFILE = {"profile.enabled": True, "profile.interval_ms": 100, "profile.trace_start_step": 3}


class _Delayed(Dataset):
    """The wrapped dataset, `delay` seconds slower per item."""

    def __init__(self, base: Dataset, delay: float) -> None:
        self.base, self.delay = base, delay

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        time.sleep(self.delay)
        return self.base[index]


class StarvedTrainer(Trainer):
    """A Trainer whose training set is 30 ms slower per item: the loop then waits for data."""

    def _build(self) -> None:
        super()._build()
        self.train_set = _Delayed(self.train_set, 0.03)


class SlowStep(Callback):
    """Sleep in the model's forward pass during the given training steps."""

    def __init__(self, steps: set[int], seconds: float) -> None:
        self.steps, self.seconds = steps, seconds

    def on_train_start(self, ctx: TrainContext) -> None:
        def hook(module, args):
            if module.training and ctx.global_step + 1 in self.steps:
                time.sleep(self.seconds)

        ctx.model.register_forward_pre_hook(hook)


def rules_of(run) -> dict[str, dict]:
    return {r["rule"]: r for r in json.loads((run / "profile" / "rules.json").read_text())}


RESNET = {**PROFILE, "model.arch": "resnet18", "optim.optimizer": "sgd"}


@pytest.fixture(scope="module")
def healthy_run(tiny_data, tmp_path_factory):
    """resnet18 at 32 px: compute (about 80 ms a step here) dominates, the loader keeps up (about 5 ms)."""
    out = tmp_path_factory.mktemp("prof") / "healthy"
    train(tiny_config(tiny_data, **RESNET), out)
    return out


@pytest.fixture(scope="module")
def starved_run(tiny_data, tmp_path_factory):
    """tiny_cnn (a few ms of compute a step) with every item 30 ms slower: 240 ms of data wait per batch."""
    out = tmp_path_factory.mktemp("prof") / "starved"
    cfg = tiny_config(tiny_data, **PROFILE)
    StarvedTrainer(cfg, out, callbacks=config_callbacks(cfg)).fit()
    return out


def test_starved_loader_fires_the_dataloader_rule_and_a_healthy_run_does_not(healthy_run, starved_run):
    healthy, starved = rules_of(healthy_run), rules_of(starved_run)
    assert healthy["Dataloader"]["status"] == "NoIssuesFound", healthy["Dataloader"]["finding"]
    assert starved["Dataloader"]["status"] == "IssuesFound", starved["Dataloader"]["finding"]
    assert "raise num_workers" in starved["Dataloader"]["advice"]
    share = load_profile(starved_run)
    assert share.steps["data"].sum() > 0.5 * share.step_total.sum()


def test_profile_files_hold_every_step_system_samples_and_a_trace(healthy_run):
    data = load_profile(healthy_run)
    assert list(data.steps["step"]) == list(range(1, 11))  # 2 epochs x 5 steps of 8 of 36 images
    assert (data.step_total > 0).all() and (data.steps["forward"] > 0).all()
    assert data.system["t"].size >= 3 and data.cpu_per_core.shape[1] == data.meta["cores"]
    assert data.meta["first_step_seconds"] > data.meta["setup_seconds"] >= 0
    trace = json.loads((healthy_run / "profile" / "trace.json").read_text())
    steps = {e["name"] for e in trace["traceEvents"] if e.get("name", "").startswith("ProfilerStep#")}
    assert len(steps) == 3  # trace_steps, the warm-up step is not kept
    assert any("conv" in op["name"] for op in data.ops[:10]), [op["name"] for op in data.ops[:10]]


def test_a_run_shorter_than_one_sampling_interval_still_loads_and_reports(starved_run, tmp_path):
    run = tmp_path / "short"
    (run / "profile").mkdir(parents=True)
    for name in ("meta.json", "steps.jsonl"):  # no system.jsonl: the sampler never ticked
        (run / "profile" / name).write_bytes((starved_run / "profile" / name).read_bytes())
    data = load_profile(run)
    assert data.system["t"].size == 0 and data.cpu_per_core.shape == (0, 0)
    assert "<img" in write_report(run).read_text()


def test_injected_slow_step_fires_step_outlier(tiny_data, tmp_path):
    cfg = tiny_config(
        tiny_data,
        **{
            **PROFILE,
            "optim.epochs": 3,
            "data.batch_size": 4,
            "profile.trace_steps": 0,
            "profile.report": False,
            "profile.rules": {"StepOutlier_n_outliers": 0},
        },
    )
    train(cfg, tmp_path / "run", callbacks=[SlowStep({14}, 0.5)])
    result = rules_of(tmp_path / "run")["StepOutlier"]
    assert result["status"] == "IssuesFound" and "slowest: step 14" in result["finding"], result["finding"]
    assert "forward" in result["finding"] and result["parameters"]["n_outliers"] == 0
    assert not (tmp_path / "run" / "profile" / "trace.json").exists()  # trace_steps=0


def test_report_renders_in_chromium_with_every_plot(healthy_run, tmp_path):
    path = write_report(healthy_run, tmp_path / "report.html")
    page = render(path, tmp_path / "report.png")
    assert page["title"] == f"Profiler report: {healthy_run.name}"
    assert len(page["images"]) == 3
    for image in page["images"]:
        assert image["complete"] and image["w"] > 0 and image["h"] > 0, image
    for text in ("Training time split", "Dataloader", "StepOutlier", "NotApplicable", "aten::"):
        assert text in page["text"], text


def test_cli_train_profile_then_report_and_rules(tiny_data, tmp_path):
    run = tmp_path / "cli-run"
    done = run_cli(
        "train",
        "--data",
        str(tiny_data),
        "-o",
        str(run),
        "--arch",
        "tiny_cnn",
        "--weights",
        "none",
        "--freeze",
        "full",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--batch-size",
        "8",
        "--workers",
        "0",
        "--profile",
        "--profile-interval-ms",
        "100",
        "--set",
        "runtime.threads=1",
        "--set",
        "profile.report=false",
    )
    assert done.returncode == 0, done.stderr
    assert not (run / "profile" / "report.html").exists()
    out = tmp_path / "custom.html"
    report = run_cli("profile", "report", str(run), "-o", str(out), "--param", "StepOutlier.stddev=4")
    assert report.returncode == 0, report.stderr
    assert report.stdout.strip() == str(out) and "StepOutlier" in out.read_text()
    low = ["--param", "Dataloader.threshold=0", "--param", "Dataloader.wait_threshold=0"]
    rules = run_cli("profile", "rules", str(run), "--json", *low)
    verdicts = {r["rule"]: r for r in json.loads(rules.stdout)}
    assert verdicts["Dataloader"]["status"] == "IssuesFound"  # every step waits for some data
    assert verdicts["Dataloader"]["parameters"]["threshold"] == 0
    failing = run_cli("profile", "rules", str(run), "--fail-on", "any", *low)
    assert failing.returncode == 1 and "raise num_workers" in failing.stdout
    assert failing.stderr == ""
    # --fail-on names the rules that count: Dataloader's issues do not fail a watch on a quiet rule alone
    quiet = next(name for name, r in verdicts.items() if r["status"] != "IssuesFound")
    assert run_cli("profile", "rules", str(run), "--fail-on", quiet, *low).returncode == 0
    assert run_cli("profile", "rules", str(run), "--fail-on", f"Dataloader,{quiet}", *low).returncode == 1
    # the old spelling still works, with one warning line per old flag
    old = ["--rule", "Dataloader_threshold=0", "--rule", "Dataloader_wait_threshold=0"]
    legacy = run_cli("profile", "rules", str(run), "--fail-on-issues", *old)
    assert legacy.returncode == 1 and legacy.stdout == failing.stdout
    assert legacy.stderr.splitlines() == [
        "dogclf: warning: --fail-on-issues is deprecated; use --fail-on any",
        "dogclf: warning: --rule Rule_param=VALUE is deprecated; use --param Rule.param=VALUE",
    ]


def test_cli_errors_name_the_problem(tmp_path):
    missing = run_cli("profile", "report", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "holds no profile data (the folder does not exist)" in missing.stderr
    bad = run_cli("profile", "rules", str(tmp_path), "--param", "StepOutlier.sigma=2")
    assert bad.returncode == 2 and "unknown rule parameter(s) StepOutlier_sigma" in bad.stderr
    bad = run_cli("profile", "rules", str(tmp_path), "--param", "StepOutlier_stddev=4")
    assert bad.returncode == 2 and "--param expects RULE.PARAM=VALUE" in bad.stderr
    bad = run_cli("profile", "rules", str(tmp_path), "--param", "StepOutlier.stddev=many")
    assert bad.returncode == 2 and "--param StepOutlier.stddev: expected a number, got 'many'" in bad.stderr
    bad = run_cli("profile", "rules", str(tmp_path), "--fail-on", "StepOutlyer")
    assert bad.returncode == 2 and "--fail-on: unknown rule(s) ['StepOutlyer']" in bad.stderr
    bad = run_cli("profile", "rules", str(tmp_path), "--rule", "StepOutlier_stddev")
    assert bad.returncode == 2 and "--rule expects Rule_parameter=NUMBER" in bad.stderr


@pytest.mark.parametrize(("start", "traced"), [(9, False), (2, True)])
def test_a_run_too_short_for_the_trace_window_says_so(tiny_data, tmp_path, caplog, start, traced):
    cfg = tiny_config(tiny_data, **{**PROFILE, "profile.trace_start_step": start, "profile.trace_steps": 1,
                                    "profile.report": False, "optim.epochs": 1})  # fmt: skip
    with caplog.at_level("WARNING", logger="dogclf"):
        train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "profile" / "trace.json").exists() == traced
    warned = [r.getMessage() for r in caplog.records if "no torch.profiler trace" in r.getMessage()]
    if traced:
        assert warned == []
    else:
        assert len(warned) == 1 and f"window opens at step {start}" in warned[0], warned
