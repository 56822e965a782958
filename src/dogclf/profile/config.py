"""Config section for the training profiler."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dogclf.errors import ConfigError
from dogclf.profile.rules import check_parameters


class ProfileConfig(BaseModel):
    """Profiler settings (saved with the run)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(False, description="Profile training into runs/<name>/profile/.")
    interval_ms: int = Field(
        500,
        ge=50,
        le=60_000,
        description="System sampling interval in ms (SageMaker's monitor default is 500).",
    )
    trace_start_step: int = Field(
        5, ge=2, description="Training step at which the torch.profiler window opens (after a warm-up step)."
    )
    trace_steps: int = Field(3, ge=0, le=100, description="Steps recorded by torch.profiler (0: no trace).")
    report: bool = Field(True, description="Write profile/report.html when training ends.")
    rules: dict[str, float] = Field(
        default_factory=dict,
        description="Rule parameters named as in SageMaker's ProfilerReport: {'StepOutlier_stddev': 4}.",
    )

    @field_validator("rules")
    @classmethod
    def _known_rule_parameters(cls, value: dict[str, float]) -> dict[str, float]:
        try:
            check_parameters(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None  # pydantic reports a ValueError as this field's error
        return value
