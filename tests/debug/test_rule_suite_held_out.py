"""The synthetic suite's held-out cases: healthy runs stay silent and every failure mode is caught.

Apart from tests/debug/test_rule_suite.py, so that the two suites' runs may go to two test workers.
"""

from __future__ import annotations

import pytest


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
