"""The `sagemaker` actions' flags come from their option models: help, defaults and parsed values."""

from __future__ import annotations

import argparse

import pytest

from conftest import run_cli
from dogclf.cli.commands import sagemaker as sm_cli
from dogclf.cli.main import build_parser
from dogclf.cli.options import model_values
from dogclf.cli.sagemaker_registry import REGISTER_FLAGS
from dogclf.sagemaker import DeployOptions, EstimatorOptions, RegisterOptions, TransformOptions
from dogclf.tune.space import SearchSpace

ROLE = "arn:aws:iam::123456789012:role/dogclf"
TRAIN = ["sagemaker", "train", "--data", "s3://b/d", "--role", ROLE]
DEPLOY = ["sagemaker", "deploy", "s3://b/m.tar.gz", "--role", ROLE]
BATCH = [
    "sagemaker",
    "batch-predict",
    "s3://b/m.tar.gz",
    "--input",
    "s3://b/i/",
    "--output",
    "s3://b/o/",
    "--role",
    ROLE,
]
REGISTER = ["sagemaker", "register", "s3://b/m.tar.gz", "--group", "dogs", "--evaluation", "eval.json"]
TUNE = ["sagemaker", "tune", "--data", "s3://b/d", "--role", ROLE]


def _actions(*path: str) -> dict[str, argparse.Action]:
    """The actions of the parser of `dogclf PATH...`, by destination."""
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return {a.dest: a for a in parser._actions}


CASES = [
    (("sagemaker", "train"), EstimatorOptions, {**sm_cli.JOB_FLAGS, **sm_cli.TRAIN_FLAGS}),
    (("sagemaker", "tune"), EstimatorOptions, sm_cli.JOB_FLAGS),
    (("sagemaker", "tune"), SearchSpace, sm_cli.SPACE_FLAGS),
    (("sagemaker", "deploy"), DeployOptions, sm_cli.DEPLOY_FLAGS),
    (("sagemaker", "batch-predict"), TransformOptions, sm_cli.BATCH_FLAGS),
    (("sagemaker", "register"), RegisterOptions, REGISTER_FLAGS),
]


@pytest.mark.parametrize(("path", "model", "fields"), CASES, ids=lambda c: c if isinstance(c, str) else None)
def test_every_flag_takes_help_and_default_from_its_model_field(path, model, fields):
    actions = _actions(*path)
    for name in fields:
        info, action = model.model_fields[name], actions[name]
        assert info.description, f"{model.__name__}.{name} has no description"
        description = info.description.rstrip(".")
        if action.option_strings[0].startswith("--no-"):
            assert description[1:] in action.help, (name, action.help)
        else:
            assert action.help.startswith(description), (name, action.help)
        default = info.get_default(call_default_factory=True)
        if isinstance(default, (int, float, str)) and not isinstance(default, bool):
            assert f"(default {default})" in action.help, (name, action.help)
        assert action.default is None  # an unset flag leaves the model's default in charge
        assert action.required == info.is_required(), name


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_unset_flags_give_the_models_own_defaults():
    assert sm_cli._estimator_options(_parse(*TRAIN), "train") == EstimatorOptions(role=ROLE, mode="train")
    assert sm_cli._estimator_options(_parse(*TUNE), "hpo") == EstimatorOptions(role=ROLE, mode="hpo")
    assert DeployOptions(**model_values(_parse(*DEPLOY), DeployOptions, sm_cli.DEPLOY_FLAGS)) == DeployOptions(
        role=ROLE
    )
    batch = TransformOptions(**model_values(_parse(*BATCH), TransformOptions, sm_cli.BATCH_FLAGS))
    assert batch == TransformOptions(role=ROLE)
    register = RegisterOptions(**model_values(_parse(*REGISTER), RegisterOptions, REGISTER_FLAGS))
    assert register == RegisterOptions(group="dogs", evaluation="eval.json")
    assert model_values(_parse(*TUNE), SearchSpace, sm_cli.SPACE_FLAGS) == {}


def test_given_flags_reach_their_fields_under_the_documented_names():
    args = _parse(
        *TRAIN, "--instance-count", "2", "--keep-alive", "600", "--spot", "--max-run", "3600", "--max-wait", "7200",
        "--no-debugger", "--no-profiler", "--system-monitor-ms", "200", "--tag", "team=dogs", "--tag", "k=a=b",
        "--stop-on-rule", "Overfit,LossNotDecreasing", "--stop-on-rule", "ExplodingTensor", "--sagemaker-debugger",
        "--rule", "overtraining", "--custom-rule", "Overfit", "--checkpoint-s3-uri", "s3://b/ck",
    )  # fmt: skip
    expected = EstimatorOptions(
        role=ROLE, instance_count=2, keep_alive_s=600, spot=True, max_run_s=3600, max_wait_s=7200, debugger=False,
        profiler=False, system_monitor_interval_ms=200, tags={"team": "dogs", "k": "a=b"},
        stop_on_rules=("Overfit", "LossNotDecreasing", "ExplodingTensor"), sagemaker_debugger=True,
        builtin_rules=("overtraining",), custom_rules=("Overfit",), checkpoint_s3_uri="s3://b/ck",
    )  # fmt: skip
    assert sm_cli._estimator_options(args, "train") == expected
    args = _parse(*DEPLOY, "--serverless-memory", "2048", "--serverless-concurrency", "3", "--autoscale-max", "4",
                  "--image", "123.dkr.ecr/x:1", "--export", "onnx-int8", "--code-in-model")  # fmt: skip
    assert DeployOptions(**model_values(args, DeployOptions, sm_cli.DEPLOY_FLAGS)) == DeployOptions(
        role=ROLE, serverless_memory_mb=2048, serverless_max_concurrency=3, autoscale_max_instances=4,
        image_uri="123.dkr.ecr/x:1", export="onnx-int8", code_in_model=True,
    )  # fmt: skip
    args = _parse(*TUNE, "--max-trials", "4", "--strategy", "random")
    assert model_values(args, SearchSpace, sm_cli.SPACE_FLAGS) == {"max_trials": 4, "strategy": "random"}


def test_a_tag_without_equals_is_one_line_naming_the_flag():
    r = run_cli(*TRAIN, "--tag", "team")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "argument --tag: expected KEY=VALUE, got 'team'" in r.stderr.splitlines()[-1]
