"""Config section for smdebug hooks and rules."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DebugConfig(BaseModel):
    """Debugger hook settings (saved with the run)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(False, description="Save tensors with an smdebug hook to runs/<name>/debug/.")
    live_rules: bool = Field(False, description="Evaluate rules during training; stop when one fires.")
