"""One verdict type for every rule dogclf runs: Debugger rules on tensors and profiler rules on timings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ISSUES, OK, ERROR = "IssuesFound", "NoIssuesFound", "Error"
NO_DATA, NOT_APPLICABLE = "InsufficientData", "NotApplicable"
NOT_EVALUATED = "NotEvaluated"  # a tensor rule whose input collections were not saved


@dataclass
class RuleResult:
    """One rule's verdict on a run: what it found and, when it fired, what to do."""

    rule: str
    status: str  # IssuesFound | NoIssuesFound | InsufficientData | NotApplicable | NotEvaluated | Error
    finding: str  # what was measured or found, one line
    advice: str = ""  # what to change when the rule fired
    explanation: str = ""  # what the rule checks
    step: int | None = None  # first step at which it fired (tensor rules)
    parameters: dict[str, Any] = field(default_factory=dict)
    datapoints: int = 0  # samples the verdict rests on (profiler rules)

    @property
    def triggered(self) -> bool:
        """The rule found issues (as opposed to none, too little data, not applicable, not evaluated, or an error)."""
        return self.status == ISSUES

    def to_dict(self) -> dict[str, Any]:
        """All fields, for the rules JSON files and `--json` output."""
        return asdict(self)
