"""`dogclf debug rules|report RUN_DIR`: Debugger-style rules over a --debug run's tensors; HTML report."""

from __future__ import annotations

import argparse
import json

from dogclf.errors import ConfigError


def _overrides(values: list[str] | None) -> dict[str, dict[str, str]]:
    """--param Rule.parameter=value pairs (values stay strings, as SageMaker passes them)."""
    out: dict[str, dict[str, str]] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        rule, dot, param = key.strip().partition(".")
        if not (sep and dot and rule and param):
            raise ConfigError(f"--param expects Rule.parameter=VALUE (e.g. Overfit.ratio_threshold=0.2), got {item!r}")
        out.setdefault(rule, {})[param] = value.strip()
    return out


def _fail_on(value: str | None) -> set[str]:
    from dogclf.debug.config import RULE_NAMES

    if not value:
        return set()
    names = {v.strip() for v in value.split(",") if v.strip()}
    if "any" in names:
        return set(RULE_NAMES)
    unknown = sorted(names - set(RULE_NAMES))
    if unknown:
        raise ConfigError(f"--fail-on: unknown rule(s) {unknown}; valid: any, {', '.join(RULE_NAMES)}")
    return names


def _rules(args: argparse.Namespace) -> int:
    from dogclf.debug.engine import evaluate_rules, format_rules

    fail_on = _fail_on(args.fail_on)
    results = evaluate_rules(args.run_dir, _overrides(args.param))
    print(json.dumps([r.to_dict() for r in results], indent=2) if args.json else format_rules(results))
    return 1 if any(r.triggered and r.rule in fail_on for r in results) else 0


def _report(args: argparse.Namespace) -> int:
    from dogclf.debug.report import write_report

    print(write_report(args.run_dir, args.output, _overrides(args.param)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf debug rules` and `dogclf debug report`."""
    p = sub.add_parser("debug", help="Debugger rules and HTML report of a run trained with --debug")
    actions = p.add_subparsers(dest="debug_command", metavar="ACTION", required=True)
    rules = actions.add_parser("rules", help="evaluate the rules on the run's saved tensors and print a table")
    report = actions.add_parser("report", help="write a self-contained HTML report (rules + plots)")
    for a in (rules, report):
        a.add_argument("run_dir", metavar="RUN_DIR", help="run folder trained with --debug (or its debug/ folder)")
        a.add_argument(
            "--param",
            action="append",
            metavar="RULE.PARAM=VALUE",
            help="override a rule parameter, e.g. Overfit.ratio_threshold=0.2 (AWS names)",
        )
    rules.add_argument("--fail-on", metavar="RULES", help="exit 1 when any of these rules (comma list, or 'any') fires")
    rules.add_argument("--json", action="store_true", help="print the results as JSON")
    rules.set_defaults(func=_rules)
    report.add_argument("-o", "--output", help="HTML file to write (default RUN_DIR/debug/report.html)")
    report.set_defaults(func=_report)
