"""The rules on real data (scikit-learn's digits, tiny_cnn from scratch): the runs they once got wrong."""

from __future__ import annotations

import pytest
from real_runs import RUNS, digits_folder, run_one

from dogclf.debug import compat

ONCE_WRONG = ("slow lr 1e-4", "diverging AdamW lr 10")  # ClassImbalance fired on the first; the second was missed


@pytest.mark.slow
@pytest.mark.parametrize("name", ONCE_WRONG)
def test_real_run_fires_its_rules_and_nothing_else(tmp_path, name):
    compat.load()
    run = next(r for r in RUNS if r.name == name)
    statuses = run_one(run, digits_folder(tmp_path / "digits"), tmp_path / "run")
    fired = {rule for rule, status in statuses.items() if status == "IssuesFound"}
    assert "Error" not in statuses.values(), statuses
    assert run.expected <= fired and not fired - run.expected - run.also, statuses
