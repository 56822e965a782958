"""Evaluate the Debugger-style rules over a run's smdebug tensors: one row per rule."""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dogclf.debug.hook import CLASS_COUNTS_TENSOR, LABELS_TENSOR, PREDICTIONS_TENSOR
from dogclf.errors import ConfigError, DogclfError

# How dogclf's hook names things, on top of each rule's AWS defaults (also for SageMaker Rule.custom).
DOGCLF_PARAMETERS: dict[str, dict[str, Any]] = {
    "LossNotDecreasing": {"mode": "TRAIN"},
    "AllZero": {"collection_names": "relu_output,gradients"},
    "ClassImbalance": {
        "argmax": True,
        "labels_regex": re.escape(LABELS_TENSOR),
        "predictions_regex": re.escape(PREDICTIONS_TENSOR),
        "counts_regex": re.escape(CLASS_COUNTS_TENSOR),
    },  # fmt: skip
}


@dataclass
class RuleResult:
    """One rule's verdict on a trial."""

    rule: str
    status: str  # IssuesFound | NoIssuesFound | Error
    step: int | None
    finding: str
    explanation: str
    advice: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def triggered(self) -> bool:
        return self.status == "IssuesFound"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tensors_dir(run_dir: str | Path) -> Path:
    """The smdebug folder of a run (RUN_DIR/debug) or RUN_DIR itself when it holds the tensors."""
    root = Path(run_dir)
    for candidate in (root / "debug", root):
        if any((candidate / "collections").rglob("*_collections.json")):
            return candidate
    raise DogclfError(f"{root} holds no smdebug tensors (no debug/collections); train it with --debug")


def run_rule_parameters(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """debug.rule_parameters from the run's config.yaml ({} when absent)."""
    config = Path(run_dir) / "config.yaml"
    if not config.is_file():
        return {}
    data = yaml.safe_load(config.read_text()) or {}
    return dict((data.get("debug") or {}).get("rule_parameters") or {})


def rule_parameters(name: str, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """dogclf's parameters for rule `name` with `overrides` applied; unknown names are ConfigErrors."""
    from dogclf.debug.rules import RULES

    if name not in RULES:
        raise ConfigError(f"unknown rule {name!r}; valid: {', '.join(RULES)}")
    params = {**DOGCLF_PARAMETERS.get(name, {}), **(overrides or {}).get(name, {})}
    valid = [p for p in inspect.signature(RULES[name]).parameters if p != "base_trial"]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(f"rule {name}: unknown parameter(s) {unknown}; valid: {', '.join(valid)}")
    return params


def load_trial(path: Path):
    """An smdebug trial over a local tensors folder, with smdebug's INFO chatter silenced."""
    from dogclf.debug import compat

    compat.apply()
    from smdebug.trials import create_trial

    logging.getLogger("smdebug").setLevel(logging.ERROR)
    return create_trial(str(path))


def evaluate_rules(
    run_dir: str | Path, overrides: dict[str, dict[str, Any]] | None = None, names: list[str] | None = None
) -> list[RuleResult]:
    """Run every rule (or `names`) over the run's tensors; run-config overrides < `overrides`."""
    from smdebug.exceptions import RuleEvaluationConditionMet
    from smdebug.rules import invoke_rule

    from dogclf.debug.rules import RULES

    merged = run_rule_parameters(run_dir) if (Path(run_dir) / "config.yaml").is_file() else {}
    for rule, params in (overrides or {}).items():
        merged[rule] = {**merged.get(rule, {}), **params}
    selected = names or list(RULES)
    params = {name: rule_parameters(name, merged) for name in selected}  # validate before the slow part
    trial = load_trial(tensors_dir(run_dir))
    steps = trial.steps()
    if not steps:
        raise DogclfError(f"{tensors_dir(run_dir)}: no saved steps yet")
    results = []
    for name in selected:
        cls = RULES[name]
        row = RuleResult(name, "NoIssuesFound", None, "", cls.explanation, cls.advice, params[name])
        try:
            rule = cls(trial, **params[name])
            missing = rule.missing()
            if missing:
                row.status, row.finding = "Error", f"cannot evaluate: {missing}"
            else:
                invoke_rule(rule, start_step=steps[0], end_step=steps[-1] + 1, raise_eval_cond=True)
        except RuleEvaluationConditionMet as met:
            row.status, row.step, row.finding = "IssuesFound", met.step, rule.finding
        except Exception as exc:  # a rule's failure is its row's verdict, not the command's
            row.status, row.finding = "Error", f"{type(exc).__name__}: {exc}"
        results.append(row)
    return results
