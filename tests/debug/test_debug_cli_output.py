"""`dogclf debug rules --json`: stdout carries the JSON alone, smdebug's logs go to stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import tiny_config
from dogclf.debug.config import RULE_NAMES
from dogclf.training import train


@pytest.fixture(scope="module")
def debug_run(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "debug"
    train(tiny_config(tiny_data, **{"optim.epochs": 1, "debug.enabled": True, "debug.save_interval": 2}), out)
    return out


def _cli(*args: str, log_level: str | None) -> subprocess.CompletedProcess:
    """The CLI in a fresh environment: no SMDEBUG_* variables inherited from this process, or `log_level`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMDEBUG_")}
    if log_level:
        env["SMDEBUG_LOG_LEVEL"] = log_level
    cmd = [sys.executable, "-m", "dogclf.cli.main", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize(("log_level", "extra"), [(None, []), ("info", ["--fail-on", "any"])], ids=["plain", "info"])
def test_rules_json_stdout_parses(debug_run, log_level, extra):
    r = _cli("debug", "rules", str(debug_run), "--json", *extra, log_level=log_level)
    assert r.returncode in (0, 1), r.stderr
    rows = json.loads(r.stdout)
    assert sorted(row["rule"] for row in rows) == sorted(RULE_NAMES)
    if log_level == "info":  # smdebug's own INFO lines still appear, on stderr
        assert "INFO" in r.stderr and "RULE_JOB_STOP_SIGNAL_FILENAME" in r.stderr


def test_rule_names_match_the_rules():
    from dogclf.debug.rules import RULES

    assert sorted(RULES) == sorted(RULE_NAMES)
