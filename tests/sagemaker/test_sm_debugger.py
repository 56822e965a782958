"""Debugger on SageMaker: the hook saves what the rules read, and the rules get the local engine's parameters.

The CreateTrainingJob request is captured from the real SDK against moto; then the tensors a job would save
(a hook built from the request's DebugHookConfig, as the container builds it) are fed to the custom rules
with the request's RuleParameters, as the rule evaluator would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sm_moto import BUCKET, ROLE, aws_env, capture, conn, moto_url  # noqa: F401

import dogclf.sagemaker as sm
from conftest import tiny_config
from dogclf.debug.config import CLASS_COUNTS_TENSOR, RULE_INPUTS, VALID_CONFUSION_TENSOR
from dogclf.errors import ConfigError

DATA = f"s3://{BUCKET}/data/dogs"
DEFAULT_COLLECTIONS = {"losses", "weights", "biases", "gradients", "labels", "predictions", "dataset"}
SDK_ADDED = {"rule_to_invoke", "source_s3_uri"}  # what Rule.custom adds to a custom rule's parameters


def _request(conn, tmp_path, options=None, **overrides):  # noqa: F811
    """The CreateTrainingJob parameters for a tiny config with `overrides`, and the config."""
    seen = capture(conn, "CreateTrainingJob")
    cfg = tiny_config(tmp_path, **{"name": "dbg", **overrides})
    estimator = sm.make_estimator(
        cfg, conn, sm.EstimatorOptions(role=ROLE, **{"sagemaker_debugger": True, **(options or {})})
    )
    sm.submit(conn, estimator, DATA)
    return seen[-1], cfg


def _rules(req) -> dict[str, dict[str, str]]:
    return {r["RuleConfigurationName"]: r["RuleParameters"] for r in req["DebugRuleConfigurations"]}


def test_rules_get_the_local_parameters_and_collections_the_run_s_interval(conn, tmp_path):  # noqa: F811
    from dogclf.debug.engine import rule_parameters

    overrides = {"Overfit": {"ratio_threshold": 0.2, "patience": 3}, "VanishingGradient": {"threshold": 1e-5},
                 "ClassImbalance": {"threshold_imbalance": 4}}  # fmt: skip
    req, cfg = _request(conn, tmp_path, **{"debug.save_interval": 50, "debug.rule_parameters": overrides})

    hook = req["DebugHookConfig"]
    names = [c["CollectionName"] for c in hook["CollectionConfigurations"]]
    assert sorted(names) == sorted(DEFAULT_COLLECTIONS)  # each once: the built-in rules' own configs replaced
    assert all(c["CollectionParameters"] == {"save_interval": "50"} for c in hook["CollectionConfigurations"])
    assert hook["HookParameters"] == {"save_interval": "50"}

    rules = _rules(req)
    assert set(rules) == {"VanishingGradient", "ExplodingTensor", "dogclf-LossNotDecreasing", "dogclf-Overtraining",
                          "dogclf-Overfit", "dogclf-PoorWeightInitialization", "dogclf-AllZero",
                          "dogclf-ClassImbalance"}  # fmt: skip
    # DeadRelu reads relu_output, which the default collections leave out: no instance paid for nothing
    assert rules["dogclf-Overfit"]["ratio_threshold"] == "0.2" and rules["dogclf-Overfit"]["patience"] == "3"
    imbalance = rules["dogclf-ClassImbalance"]
    assert imbalance["threshold_imbalance"] == "4"
    assert imbalance["confusion_regex"] == re.escape(VALID_CONFUSION_TENSOR) + "_output_0"
    assert imbalance["counts_regex"] == re.escape(CLASS_COUNTS_TENSOR)
    assert rules["dogclf-AllZero"]["collection_names"] == "relu_output,gradients"
    assert rules["VanishingGradient"] == {"rule_to_invoke": "VanishingGradient", "threshold": "1e-05"}
    assert rules["dogclf-LossNotDecreasing"]["mode"] == "TRAIN"
    # one implementation: the custom rules' uploaded source is the dogclf.debug.rules package joined into one file
    bucket, key = rules["dogclf-Overfit"]["source_s3_uri"][5:].split("/", 1)
    s3 = conn.session.boto_session.client("s3", endpoint_url=conn.endpoint_url)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == sm.rules_source().read_bytes()
    # exactly what the local engine gives each rule, as text
    for name, sent in rules.items():
        local = rule_parameters(name.removeprefix("dogclf-"), cfg.debug.rule_parameters)
        expected = {k: str(v) for k, v in local.items()}
        assert {k: v for k, v in sent.items() if k not in SDK_ADDED} == expected, name


def test_activation_rules_are_submitted_once_their_collections_are_saved(conn, tmp_path):  # noqa: F811
    collections = [*DEFAULT_COLLECTIONS, "relu_input", "relu_output"]
    req, _ = _request(conn, tmp_path, **{"debug.collections": collections})
    assert "dogclf-DeadRelu" in _rules(req)
    saved = {c["CollectionName"] for c in req["DebugHookConfig"]["CollectionConfigurations"]}
    assert {"relu_input", "relu_output"} <= saved

    with pytest.raises(ConfigError, match=r"DeadRelu: it reads relu_output.*--set debug.collections=\[.*relu_output"):
        _request(conn, tmp_path, options={"custom_rules": ["DeadRelu"]})
    with pytest.raises(ConfigError, match=r"rule Overfit: unknown parameter\(s\) \['ratio'\]; valid: tensor_regex"):
        _request(conn, tmp_path, **{"debug.rule_parameters": {"Overfit": {"ratio": 0.2}}})


def test_debug_extra_is_installed_when_the_job_saves_tensors(conn, tmp_path):  # noqa: F811
    from dogclf.sagemaker.bundle import SERVING_REQUIREMENTS_FILE, requirements

    cfg = tiny_config(tmp_path)
    for options, smdebug in (({}, True), ({"debugger": False}, False), ({"mode": "hpo"}, False)):
        est = sm.make_estimator(cfg, conn, sm.EstimatorOptions(role=ROLE, **options))
        staged = Path(est.source_dir)
        lines = (staged / "requirements.txt").read_text().splitlines()
        assert ("smdebug==1.0.34" in lines and any(r.startswith("protobuf<4") for r in lines)) is smdebug, options
        assert "psutil>=5.9" in lines and not any(r.startswith(("torch", "optuna", "dogclf")) for r in lines)
        assert (staged / SERVING_REQUIREMENTS_FILE).read_text() == requirements()  # what the job's model gets
    assert "smdebug" not in requirements()
    with pytest.raises(ConfigError, match=r"unknown dogclf extra\(s\) \['debgu'\]; valid: all, debug, dev"):
        requirements(["debgu"])
    debug_only = sm.make_estimator(tiny_config(tmp_path, **{"debug.enabled": True}), conn,
                                     sm.EstimatorOptions(role=ROLE, debugger=False))  # fmt: skip
    assert "smdebug==1.0.34" in (Path(debug_only.source_dir) / "requirements.txt").read_text()


def test_saved_collections_feed_every_submitted_custom_rule(conn, tiny_data, tmp_path):  # noqa: F811
    """Train with a hook made from the request's DebugHookConfig; each custom rule runs on what it saved."""
    from smdebug.exceptions import RuleEvaluationConditionMet
    from smdebug.rules import invoke_rule

    from dogclf.debug.callbacks import DebugHookCallback
    from dogclf.debug.engine import load_trial
    from dogclf.debug.rules import RULES
    from dogclf.training.loop import Trainer

    collections = [*DEFAULT_COLLECTIONS, "relu_input", "relu_output"]
    req, _ = _request(conn, tmp_path, **{"debug.collections": collections, "debug.save_interval": 1})
    out = tmp_path / "opt_ml_tensors"
    hook_json = tmp_path / "debughookconfig.json"  # what SageMaker writes to /opt/ml/input/config
    hook_json.write_text(json.dumps({"LocalPath": str(out), **req["DebugHookConfig"]}))
    cfg = tiny_config(tiny_data, **{"debug.enabled": True, "debug.collections": collections, "optim.epochs": 2})
    Trainer(cfg, tmp_path / "run", callbacks=[DebugHookCallback(cfg.debug, hook_json)]).fit()

    trial = load_trial(out)
    steps = trial.steps()
    custom = {k.removeprefix("dogclf-"): v for k, v in _rules(req).items() if k.startswith("dogclf-")}
    assert set(custom) == set(RULES) - {"VanishingGradient", "ExplodingTensor"}
    for name, sent in custom.items():
        rule = RULES[name](trial, **{k: v for k, v in sent.items() if k not in SDK_ADDED})
        assert rule.missing() == "", f"{name}: {rule.missing()}"
        assert set(RULE_INPUTS[name]) & set(trial.collections()), name
        try:
            invoke_rule(rule, start_step=steps[0], end_step=steps[-1] + 1, raise_eval_cond=True)
        except RuleEvaluationConditionMet:
            pass  # fired: it evaluated
