"""`dogclf profile report|rules RUN_DIR`: the profiler report and bottleneck rules of a --profile run."""

from __future__ import annotations

import argparse
import json

from dogclf.cli.rule_options import add_fail_on_option, add_param_option, fail_on, rule_params, warn_deprecated
from dogclf.errors import ConfigError


def _number(flag: str, raw: str) -> float:
    """A rule parameter's value as a number; anything else is a ConfigError naming the flag."""
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{flag}: expected a number, got {raw!r}") from None


def _old_rule_flag(item: str) -> tuple[str, float]:
    """One deprecated --rule Rule_param=NUMBER pair."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--rule expects Rule_parameter=NUMBER (e.g. StepOutlier_stddev=4), got {item!r}")
    return key.strip(), _number(f"--rule {key.strip()}", raw)


def _overrides(args: argparse.Namespace) -> dict[str, float]:
    """--param Rule.param=NUMBER (and the deprecated --rule Rule_param=NUMBER) as {'Rule_param': number}."""
    from dogclf.profile.rules import check_parameters

    out = {
        f"{rule}_{param}": _number(f"--param {rule}.{param}", raw)
        for rule, params in rule_params(args.param).items()
        for param, raw in params.items()
    }
    if args.rule:
        warn_deprecated("--rule Rule_param=VALUE", "--param Rule.param=VALUE")
        out.update(_old_rule_flag(item) for item in args.rule)
    check_parameters(out)
    return out


def _report(args: argparse.Namespace) -> int:
    from dogclf.profile.report import write_report

    print(write_report(args.run_dir, args.output, overrides=_overrides(args)))
    return 0


def _failing(args: argparse.Namespace) -> set[str]:
    """The rules whose issues make `profile rules` exit 1 (--fail-on, or the deprecated --fail-on-issues)."""
    from dogclf.profile.rules import RULES

    if args.fail_on_issues:
        warn_deprecated("--fail-on-issues", "--fail-on any")
        return set(RULES)
    return fail_on(args.fail_on, RULES)


def _rules(args: argparse.Namespace) -> int:
    from dogclf.profile.data import load_profile
    from dogclf.profile.rules import evaluate_rules

    failing, overrides = _failing(args), _overrides(args)
    results = evaluate_rules(load_profile(args.run_dir), overrides)
    if args.json:
        print(json.dumps([r.to_dict() for r in results]))
    else:
        for r in results:
            print(f"{r.rule:<22} {r.status:<16} {r.finding}" + (f"\n{'':<39} -> {r.advice}" if r.triggered else ""))
    return 1 if any(r.triggered and r.rule in failing for r in results) else 0


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder trained with --profile (or its profile/ folder)")
    add_param_option(p, "StepOutlier.stddev=4", "SageMaker ProfilerReport rule parameter names")
    p.add_argument(
        "--rule", action="append", metavar="RULE_PARAM=VALUE", help="deprecated spelling of --param RULE.PARAM=VALUE"
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
    add_fail_on_option(rules)
    rules.add_argument("--fail-on-issues", action="store_true", help="deprecated spelling of --fail-on any")
    rules.set_defaults(func=_rules)
