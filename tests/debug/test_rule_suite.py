"""The labelled rule suite: each rule fires on the scenarios labelled with it and stays silent on the rest.

The table in docs/rules.md comes from the same runs (`python tests/debug/rule_suite.py`).
"""

from __future__ import annotations

import pytest
from rule_suite import SCENARIOS, markdown_table, run_suite, scores

EXPECTED = {s.name: s for s in SCENARIOS}
# Measured (docs/rules.md) and not fixed: (scenario, rule) cells where the rules are wrong on these tiny runs.
KNOWN_MISSES = {
    ("lr-zero", "LossNotDecreasing"),  # 150 steps too few for the stall test at this noise: NotEvaluated
}
KNOWN_FALSE_ALARMS: set[tuple[str, str]] = set()


@pytest.fixture(scope="session")
def suite(tmp_path_factory) -> dict[tuple[str, int], dict[str, str]]:
    """Every scenario x seed trained once: {(scenario, seed): {rule: status}}."""
    return run_suite(tmp_path_factory.mktemp("rule_suite"))


def test_no_rule_errors(suite):
    for key, statuses in suite.items():
        assert set(statuses.values()) <= {"IssuesFound", "NoIssuesFound", "NotEvaluated"}, (key, statuses)


@pytest.mark.parametrize("scenario", [s.name for s in SCENARIOS if not s.expected])
def test_healthy_runs_raise_nothing(suite, scenario):
    allowed = EXPECTED[scenario].also  # true consequences, e.g. ReLUs killed by a high lr from scratch
    fired = {
        k: [
            r
            for r, st in v.items()
            if st == "IssuesFound" and r not in allowed and (scenario, r) not in KNOWN_FALSE_ALARMS
        ]
        for k, v in suite.items()
        if k[0] == scenario
    }
    assert all(not rules for rules in fired.values()), fired


@pytest.mark.parametrize("scenario", [s.name for s in SCENARIOS if s.expected])
def test_broken_runs_fire_their_rules_and_nothing_else(suite, scenario):
    s = EXPECTED[scenario]
    for (name, seed), statuses in suite.items():
        if name == scenario:
            missed = [r for r in s.expected if statuses[r] != "IssuesFound" and (name, r) not in KNOWN_MISSES]
            extra = [r for r, st in statuses.items() if st == "IssuesFound" and r not in s.expected | s.also
                     and (name, r) not in KNOWN_FALSE_ALARMS]  # fmt: skip
            assert not missed and not extra, (name, seed, statuses)


def test_the_known_failures_are_still_measured(suite):
    """The documented misses and false alarms are real: when one goes away, docs/rules.md must be updated."""
    for scenario, rule in KNOWN_MISSES:
        assert any(st[rule] != "IssuesFound" for (n, _), st in suite.items() if n == scenario), (scenario, rule)
    for scenario, rule in KNOWN_FALSE_ALARMS:
        assert any(st[rule] == "IssuesFound" for (n, _), st in suite.items() if n == scenario), (scenario, rule)
    table = markdown_table(suite)
    assert table.count("\n") == 2 + len(scores(suite)) - 1 and "| precision | recall |" in table


@pytest.fixture(scope="session")
def held_out(tmp_path_factory) -> dict[tuple[str, int, int], dict[str, str]]:
    """The synthetic suite's held-out cases (variants and seeds no threshold was chosen on), first seed."""
    import synthetic_suite

    from dogclf.debug import compat

    compat.load()
    seeds, synthetic_suite.HELD_OUT_SEEDS = synthetic_suite.HELD_OUT_SEEDS, synthetic_suite.HELD_OUT_SEEDS[:1]
    try:
        return synthetic_suite.run_split("held-out", tmp_path_factory.mktemp("held_out"))
    finally:
        synthetic_suite.HELD_OUT_SEEDS = seeds


# Held-out recall measured (docs/rules.md): LossNotDecreasing 32/33 over 3 seeds, 10/11 at the first seed, which
# this test runs (a low-noise 5-class partial stall whose fall straddles the threshold: NotEvaluated); others 1.0.
MIN_HELD_OUT_RECALL = {"LossNotDecreasing": 0.9}


@pytest.mark.slow
def test_held_out_synthetic_runs_healthy_silent_and_every_failure_caught(held_out):
    import synthetic_suite

    families = {f.name: f for f in synthetic_suite.FAMILIES}
    for (family, variant, seed), statuses in held_out.items():
        f = families[family]
        wrong = [r for r, st in statuses.items() if st == "IssuesFound" and r not in f.expected | f.also]
        assert not wrong and "Error" not in statuses.values(), (family, variant, seed, statuses)
        silent = [r for r in f.expected if statuses[r] == "NoIssuesFound"]  # a miss must say it could not decide
        assert not silent, (family, variant, seed, statuses)
    for f in families.values():  # each failure mode caught (in at least one held-out variant)
        for rule in f.expected:
            assert any(st[rule] == "IssuesFound" for (name, _, _), st in held_out.items() if name == f.name), (f, rule)
    for rule, (tp, fp, fn) in synthetic_suite.scores(held_out).items():
        assert fp == 0, rule
        assert tp / max(tp + fn, 1) >= MIN_HELD_OUT_RECALL.get(rule, 1.0), (rule, tp, fn)
    assert {f for f, _, _ in held_out} == set(families)
