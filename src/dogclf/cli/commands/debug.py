"""`dogclf debug rules|report RUN_DIR`: Debugger-style rules over a --debug run's tensors; HTML report."""

from __future__ import annotations

import argparse
import json

from dogclf.cli.rule_options import add_fail_on_option, add_param_option, fail_on, rule_params


def _rules(args: argparse.Namespace) -> int:
    from dogclf.debug.config import RULE_NAMES
    from dogclf.debug.engine import evaluate_rules, format_rules

    failing = fail_on(args.fail_on, RULE_NAMES)
    results = evaluate_rules(args.run_dir, rule_params(args.param))
    print(json.dumps([r.to_dict() for r in results], indent=2) if args.json else format_rules(results))
    return 1 if any(r.triggered and r.rule in failing for r in results) else 0


def _report(args: argparse.Namespace) -> int:
    from dogclf.debug.report import write_report

    print(write_report(args.run_dir, args.output, rule_params(args.param)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf debug rules` and `dogclf debug report`."""
    p = sub.add_parser("debug", help="Debugger rules and HTML report of a run trained with --debug")
    actions = p.add_subparsers(dest="debug_command", metavar="ACTION", required=True)
    rules = actions.add_parser("rules", help="evaluate the rules on the run's saved tensors and print a table")
    report = actions.add_parser("report", help="write a self-contained HTML report (rules + plots)")
    for a in (rules, report):
        a.add_argument("run_dir", metavar="RUN_DIR", help="run folder trained with --debug (or its debug/ folder)")
        add_param_option(a, "Overfit.ratio_threshold=0.2", "AWS's Debugger rule parameter names")
    add_fail_on_option(rules)
    rules.add_argument("--json", action="store_true", help="print the results as JSON")
    rules.set_defaults(func=_rules)
    report.add_argument("-o", "--output", help="HTML file to write (default RUN_DIR/debug/report.html)")
    report.set_defaults(func=_report)
