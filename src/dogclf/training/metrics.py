"""The one metric line format printed by training, and the SageMaker metric_definitions that parse it."""

from __future__ import annotations

import re

PREFIX = "[metrics]"
PHASES = ("train", "valid", "test")
FIELDS = ("loss", "top1", "top5")
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"


def format_metric_line(epoch: int, phase: str, values: dict[str, float | None]) -> str:
    """'[metrics] epoch=3 phase=valid loss=0.412300 top1=0.912000 top5=0.990000 n=120' (fixed field order).

    A None value (e.g. top5 with 5 classes or fewer) is not applicable and left out of the line.
    """
    values = {k: v for k, v in values.items() if v is not None}
    parts = [PREFIX, f"epoch={epoch}", f"phase={phase}"]
    parts += [f"{k}={values[k]:.6f}" for k in FIELDS if k in values]
    extra = [k for k in values if k not in FIELDS]
    parts += [f"{k}={values[k]}" if isinstance(values[k], int) else f"{k}={values[k]:.6g}" for k in extra]
    return " ".join(parts)


def metric_regex(phase: str, field: str) -> str:
    """Regex whose first group captures `field` from `phase` metric lines."""
    return rf"{re.escape(PREFIX)} epoch=\d+ phase={phase} .*?\b{field}={_NUMBER}"


def metric_definitions() -> list[dict[str, str]]:
    """SageMaker estimator/tuner metric_definitions, e.g. {'Name': 'valid:loss', 'Regex': ...}."""
    return [{"Name": f"{phase}:{field}", "Regex": metric_regex(phase, field)} for phase in PHASES for field in FIELDS]


def parse_metric_lines(text: str) -> dict[str, list[float]]:
    """Apply metric_definitions to a log the way SageMaker does (first group, as float)."""
    found: dict[str, list[float]] = {}
    for definition in metric_definitions():
        pattern = re.compile(definition["Regex"])
        found[definition["Name"]] = [float(m.group(1)) for m in pattern.finditer(text)]
    return found


RULE_PREFIX = "[rule]"
# fired: 1 when the rule found issues, 0 when it found none, -1 without a verdict (no data, not evaluated, error).
_FIRED = {"IssuesFound": 1, "NoIssuesFound": 0}


def format_rule_line(rule: str, status: str, step: int | None = None) -> str:
    """'[rule] rule=Overfit status=IssuesFound fired=1 step=12': one rule verdict as a metric line."""
    line = f"{RULE_PREFIX} rule={rule} status={status} fired={_FIRED.get(status, -1)}"
    return line if step is None else f"{line} step={step}"


def rule_metric_definitions(rules: list[str]) -> list[dict[str, str]]:
    """One metric per rule, 'rule:Overfit', whose value is the `fired` of its verdict lines."""
    return [
        {"Name": f"rule:{rule}", "Regex": rf"{re.escape(RULE_PREFIX)} rule={re.escape(rule)} status=\w+ fired=(-?\d)"}
        for rule in rules
    ]
