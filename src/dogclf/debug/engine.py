"""Evaluate the Debugger-style rules over a run's smdebug tensors: one row per rule."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

from dogclf.config import read_config_file
from dogclf.debug.config import DebugConfig, merged_rule_parameters, rule_inputs
from dogclf.errors import ConfigError, DogclfError
from dogclf.training.rundir import RunPaths
from dogclf.verdicts import ERROR, ISSUES, NOT_EVALUATED, OK, RuleResult


def tensors_dir(run_dir: str | Path) -> Path:
    """The smdebug folder of a run (RUN_DIR/debug) or RUN_DIR itself when it holds the tensors."""
    root = Path(run_dir)
    for candidate in (RunPaths(root).debug, root):
        if any((candidate / "collections").rglob("*_collections.json")):
            return candidate
    raise DogclfError(f"{root} holds no smdebug tensors (no debug/collections); train it with --debug")


def _run_debug_section(run_dir: str | Path) -> dict[str, Any]:
    """The debug section of the run's config.yaml ({} when absent)."""
    config = RunPaths(Path(run_dir)).config
    if not config.is_file():
        return {}
    return dict(read_config_file(config, follow_links=False).get("debug") or {})


def run_rule_parameters(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """debug.rule_parameters from the run's config.yaml ({} when absent)."""
    return dict(_run_debug_section(run_dir).get("rule_parameters") or {})


def not_evaluated_finding(name: str, params: dict[str, Any], missing: str, saved: list[str]) -> str:
    """Why rule `name` could not run and which collection to add, as the command that adds it."""
    needed = [c for c in rule_inputs(name, params) if c not in saved]
    if not needed:
        return f"not evaluated: {missing}"
    wanted = ",".join([*saved, needed[0]])
    return f"not evaluated: needs collection '{needed[0]}' ({missing}); train with --set debug.collections=[{wanted}]"


def rule_parameters(name: str, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The parameters dogclf gives rule `name`, with `overrides` applied; unknown names are ConfigErrors."""
    from dogclf.debug.rules import RULES

    if name not in RULES:
        raise ConfigError(f"unknown rule {name!r}; valid: {', '.join(RULES)}")
    params = merged_rule_parameters(name, overrides)
    valid = [p for p in inspect.signature(RULES[name]).parameters if p != "base_trial"]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(f"rule {name}: unknown parameter(s) {unknown}; valid: {', '.join(valid)}")
    return params


def load_trial(path: Path):
    """An smdebug trial over a local tensors folder, with smdebug's INFO chatter silenced."""
    from dogclf.debug import compat

    compat.load()
    from smdebug.trials import create_trial

    logging.getLogger("smdebug").setLevel(logging.ERROR)
    return create_trial(str(path))


def evaluate_rules(
    run_dir: str | Path, overrides: dict[str, dict[str, Any]] | None = None, names: list[str] | None = None
) -> list[RuleResult]:
    """Run every rule (or `names`) over the run's tensors; run-config overrides < `overrides`."""
    from dogclf.debug import compat

    compat.load()
    from dogclf.debug.rules import RULES

    merged = run_rule_parameters(run_dir)
    for rule, params in (overrides or {}).items():
        merged[rule] = {**merged.get(rule, {}), **params}
    selected = names or list(RULES)
    params = {name: rule_parameters(name, merged) for name in selected}  # validate before the slow part
    trial = load_trial(tensors_dir(run_dir))
    steps = trial.steps()
    if not steps:
        raise DogclfError(f"{tensors_dir(run_dir)}: no saved steps yet")
    saved = list(_run_debug_section(run_dir).get("collections") or DebugConfig().collections)
    return [_evaluate(name, params[name], trial, steps, saved) for name in selected]


def _evaluate(name: str, params: dict[str, Any], trial, steps: list[int], saved: list[str]) -> RuleResult:
    """One rule's row: IssuesFound/NoIssuesFound, NotEvaluated when its inputs or data fall short, Error on a crash."""
    from smdebug.exceptions import RuleEvaluationConditionMet
    from smdebug.rules import invoke_rule

    from dogclf.debug.rules import RULES

    cls = RULES[name]
    row = RuleResult(name, OK, "", cls.advice, cls.explanation, parameters=params)
    try:
        rule = cls(trial, **params)
        missing = rule.missing()
        if missing:
            row.status, row.finding = NOT_EVALUATED, not_evaluated_finding(name, params, missing, saved)
        else:
            invoke_rule(rule, start_step=steps[0], end_step=steps[-1] + 1, raise_eval_cond=True)
            too_little = rule.insufficient()
            if too_little:
                row.status, row.finding = NOT_EVALUATED, f"not evaluated: too little data: {too_little}"
    except RuleEvaluationConditionMet as met:
        row.status, row.step, row.finding = ISSUES, met.step, rule.finding
    except Exception as exc:  # a rule's failure is its row's verdict, not the command's
        row.status, row.finding = ERROR, f"{type(exc).__name__}: {exc}"
    return row


def format_rules(results: list[RuleResult]) -> str:
    """The verdicts as a terminal table (what `dogclf debug rules` prints): advice under each rule that fired."""
    lines = [f"{'rule':<26}{'status':<15}{'step':>6}  finding / advice"]
    for r in results:
        step = "" if r.step is None else str(r.step)
        finding = r.finding or ("no issue found" if r.status == OK else r.explanation)
        lines.append(f"{r.rule:<26}{r.status:<15}{step:>6}  {finding}")
        if r.triggered:
            lines.append(f"{'':<49}-> {r.advice}")
    return "\n".join(lines)
