"""The rule flags `dogclf debug` and `dogclf profile` share: --param RULE.PARAM=VALUE and --fail-on RULES|any."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from dogclf.errors import ConfigError


def add_param_option(parser: argparse.ArgumentParser, example: str, names: str) -> None:
    """Add the repeatable --param RULE.PARAM=VALUE that `rule_params` reads."""
    parser.add_argument(
        "--param",
        action="append",
        metavar="RULE.PARAM=VALUE",
        help=f"override a rule parameter, e.g. {example} ({names}); repeatable",
    )


def add_fail_on_option(parser: argparse.ArgumentParser) -> None:
    """Add --fail-on RULES|any that `fail_on` reads."""
    parser.add_argument(
        "--fail-on", metavar="RULES", help="exit 1 when any of these rules (comma list, or 'any') fires"
    )


def rule_params(values: list[str] | None) -> dict[str, dict[str, str]]:
    """--param Rule.parameter=value pairs by rule (values stay strings, as SageMaker passes them)."""
    out: dict[str, dict[str, str]] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        rule, dot, param = key.strip().partition(".")
        if not (sep and dot and rule and param):
            raise ConfigError(f"--param expects RULE.PARAM=VALUE (e.g. Overfit.ratio_threshold=0.2), got {item!r}")
        out.setdefault(rule, {})[param] = value.strip()
    return out


def fail_on(value: str | None, names: Iterable[str]) -> set[str]:
    """The rule names of --fail-on (a comma list, or 'any' for all of `names`); an unknown name is a ConfigError."""
    names = tuple(names)
    if not value:
        return set()
    given = {v.strip() for v in value.split(",") if v.strip()}
    if "any" in given:
        return set(names)
    unknown = sorted(given - set(names))
    if unknown:
        raise ConfigError(f"--fail-on: unknown rule(s) {unknown}; valid: any, {', '.join(names)}")
    return given


def warn_deprecated(old: str, new: str) -> None:
    """One line on stderr: `old` still works, `new` is the spelling to use."""
    print(f"dogclf: warning: {old} is deprecated; use {new}", file=sys.stderr)
