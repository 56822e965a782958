"""Rules, reports and profiling inside a training job: what the SageMaker Debugger and Profiler services did.

SDK-free (it runs in the training container). The job's own debug hook saves tensors to RUN/debug and its
profiler (a torch.profiler window and a system sampler) writes RUN/profile, RUN being SM_OUTPUT_DATA_DIR, which
SageMaker uploads as output.tar.gz. Live rules run at each validation; a fired rule listed in debug.live_stop_on
stops training. When training ends, `finish` evaluates the rules on the final tensors, writes the debug report
next to the profiler report, collects every verdict in RUN/rule-verdicts.json and prints each as a metric line
(the job's `rule:<name>` metrics).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.errors import DogclfError
from dogclf.fsutil import atomic_write_text
from dogclf.training.metrics import format_rule_line
from dogclf.training.rundir import RunPaths
from dogclf.verdicts import RuleResult

if TYPE_CHECKING:
    from dogclf.config import RunConfig

log = logging.getLogger("dogclf")

VERDICTS_FILE = "rule-verdicts.json"
DEBUG_REPORT = "debug/report.html"
PROFILER_REPORT = "profile/report.html"
REPORT_FILES = (VERDICTS_FILE, DEBUG_REPORT, PROFILER_REPORT)  # relative to SM_OUTPUT_DATA_DIR


def rule_names() -> list[str]:
    """Every rule whose verdict a job reports: dogclf's Debugger-style rules, then its profiler rules."""
    from dogclf.debug.config import RULE_NAMES
    from dogclf.profile.rules import RULES

    return [*RULE_NAMES, *RULES]


@dataclass
class JobVerdicts:
    """The rule verdicts of a job: tensor rules, profiler rules, and the live-stop rules that ended training."""

    debug: list[RuleResult]
    profiler: list[RuleResult]
    stopped_by: list[RuleResult]

    def to_dict(self) -> dict[str, Any]:
        """The rule-verdicts.json document."""
        return {
            "debug": [r.to_dict() for r in self.debug],
            "profiler": [r.to_dict() for r in self.profiler],
            "stopped_by": [r.to_dict() for r in self.stopped_by],
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> JobVerdicts:
        """Read a rule-verdicts.json document."""
        rows = {key: [RuleResult(**row) for row in doc.get(key, [])] for key in ("debug", "profiler", "stopped_by")}
        return cls(rows["debug"], rows["profiler"], rows["stopped_by"])

    def stop_reason(self) -> str | None:
        """The failure reason when a stop-on rule ended training, else None."""
        if not self.stopped_by:
            return None
        first = self.stopped_by[0]
        names = ", ".join(r.rule for r in self.stopped_by)
        return f"rule {first.rule} fired at step {first.step}: {first.finding}; training stopped (stop on {names})"


def _saved(path: Path) -> list[RuleResult]:
    """The verdicts of a rules JSON file ([] when absent)."""
    if not path.is_file():
        return []
    return [RuleResult(**row) for row in json.loads(path.read_text(encoding="utf-8"))]


def _debug_verdicts(cfg: RunConfig, run_root: Path) -> list[RuleResult]:
    """Every tensor rule on the final tensors, and the debug report (RUN/debug/report.html) showing them."""
    from dogclf.debug.engine import evaluate_rules
    from dogclf.debug.report import write_report

    try:
        results = evaluate_rules(run_root, cfg.debug.rule_parameters)
        write_report(run_root, run_root / DEBUG_REPORT, results=results)
    except DogclfError as exc:
        log.warning("debug rules not evaluated: %s", exc)
        return []
    return results


def finish(cfg: RunConfig, run_root: Path) -> JobVerdicts:
    """Final rules and reports of a job's run folder; writes rule-verdicts.json and prints the metric lines."""
    from dogclf.debug.callbacks import LIVE_RULES_FILE
    from dogclf.profile.data import RULES_FILE

    debug = _debug_verdicts(cfg, run_root) if cfg.debug.enabled else []
    run = RunPaths(run_root)
    profiler = _saved(run.profile / RULES_FILE) if cfg.profile.enabled else []
    live = _saved(run.debug / LIVE_RULES_FILE)
    stopped = [r for r in live if r.triggered and r.rule in cfg.debug.live_stop_on]
    verdicts = JobVerdicts(debug, profiler, stopped)
    atomic_write_text(run_root / VERDICTS_FILE, json.dumps(verdicts.to_dict(), indent=1))
    for r in [*debug, *profiler]:
        print(format_rule_line(r.rule, r.status, r.step), flush=True)
    return verdicts
