"""Phase marks for whole-process measurements: with DOGCLF_TIMINGS=1, each mark prints the wall clock to stderr.

A parent process (benchmarks/bench_run.py) compares the printed times with the time it spawned the command, so
it sees where a run's seconds go without a profiler; unset, a mark costs one environment lookup.
"""

from __future__ import annotations

import os
import sys
import time

ENV = "DOGCLF_TIMINGS"
PREFIX = "[timing]"


def enabled() -> bool:
    """Whether DOGCLF_TIMINGS=1 asks for phase marks."""
    return os.environ.get(ENV) == "1"


def mark(phase: str) -> None:
    """Print `[timing] PHASE UNIX_SECONDS` to stderr when timings are enabled."""
    if enabled():
        print(f"{PREFIX} {phase} {time.time():.6f}", file=sys.stderr, flush=True)


def parse_mark(line: str) -> tuple[str, float] | None:
    """(phase, unix seconds) of a mark line, or None for any other line."""
    parts = line.split()
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    try:
        return parts[1], float(parts[2])
    except ValueError:
        return None
