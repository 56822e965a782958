"""`dogclf profile report|rules RUN_DIR`: the profiler report and bottleneck rules of a --profile run."""

from __future__ import annotations

import argparse
import json

from dogclf.errors import ConfigError


def _overrides(values: list[str] | None) -> dict[str, float]:
    """--rule Rule_param=value pairs, validated against the rule table."""
    from dogclf.profile.rules import check_parameters

    out: dict[str, float] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        try:
            out[key.strip()] = float(raw)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--rule expects Rule_parameter=NUMBER (e.g. StepOutlier_stddev=4), got {item!r}")
    check_parameters(out)
    return out


def _report(args: argparse.Namespace) -> int:
    from dogclf.profile.report import write_report

    overrides = _overrides(args.rule)
    print(write_report(args.run_dir, args.output, overrides=overrides))
    return 0


def _rules(args: argparse.Namespace) -> int:
    from dogclf.profile.data import load_profile
    from dogclf.profile.rules import evaluate_rules

    overrides = _overrides(args.rule)
    results = evaluate_rules(load_profile(args.run_dir), overrides)
    if args.json:
        print(json.dumps([r.to_dict() for r in results]))
    else:
        for r in results:
            print(f"{r.rule:<22} {r.status:<16} {r.finding}" + (f"\n{'':<39} -> {r.advice}" if r.triggered else ""))
    return 1 if args.fail_on_issues and any(r.triggered for r in results) else 0


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder trained with --profile (or its profile/ folder)")
    p.add_argument(
        "--rule",
        action="append",
        metavar="RULE_PARAM=VALUE",
        help="override a rule threshold, e.g. StepOutlier_stddev=4 (SageMaker ProfilerReport names)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf profile report` and `dogclf profile rules`."""
    p = sub.add_parser("profile", help="profiler report and bottleneck rules of a run trained with --profile")
    actions = p.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    report = actions.add_parser("report", help="write the self-contained HTML profiler report")
    _add_common(report)
    report.add_argument("-o", "--output", help="HTML file to write (default RUN_DIR/profile/report.html)")
    report.set_defaults(func=_report)
    rules = actions.add_parser("rules", help="evaluate the bottleneck rules and print their verdicts")
    _add_common(rules)
    rules.add_argument("--json", action="store_true", help="print one JSON list of rule results")
    rules.add_argument("--fail-on-issues", action="store_true", help="exit 1 when any rule finds issues")
    rules.set_defaults(func=_rules)
