"""Phase marks: printed only when DOGCLF_TIMINGS=1 asks for them, and read back by the benchmark."""

from __future__ import annotations

import time

from dogclf import timings


def test_marks_print_only_when_asked(monkeypatch, capsys):
    monkeypatch.delenv(timings.ENV, raising=False)
    timings.mark("quiet")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv(timings.ENV, "1")
    before = time.time()
    timings.mark("loud")
    phase, at = timings.parse_mark(capsys.readouterr().err)
    assert phase == "loud" and before <= at <= time.time()


def test_only_mark_lines_parse():
    assert timings.parse_mark("[timing] first_step 1796051759.214\n") == ("first_step", 1796051759.214)
    assert timings.parse_mark("[metrics] epoch=1 phase=train loss=1.0") is None
    assert timings.parse_mark("[timing] first_step soon") is None
