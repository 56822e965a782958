"""The `dogclf debug rules` table: a rule that found nothing says so, a rule that fired shows its finding."""

from __future__ import annotations

from dogclf.debug.engine import format_rules
from dogclf.debug.rules import RULES
from dogclf.verdicts import ISSUES, OK, RuleResult


def test_rows_say_what_was_found():
    loss = RULES["LossNotDecreasing"]
    quiet = RuleResult("LossNotDecreasing", OK, "", loss.advice, loss.explanation)
    fired = RuleResult("LossNotDecreasing", ISSUES, "loss rose 3x", loss.advice, loss.explanation, step=7)
    quiet_row, fired_row, advice = format_rules([quiet, fired]).splitlines()[1:]
    assert quiet_row.endswith("no issue found") and loss.explanation not in quiet_row
    assert fired_row.endswith("7  loss rose 3x") and advice.strip() == f"-> {loss.advice}"
