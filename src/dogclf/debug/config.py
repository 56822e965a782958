"""Config section for smdebug hooks and Debugger-style rules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Rule names known to dogclf.debug.rules (kept here so validating a config never imports smdebug).
RULE_NAMES = (
    "VanishingGradient", "ExplodingTensor", "LossNotDecreasing", "Overfit", "Overtraining",
    "PoorWeightInitialization", "DeadRelu", "AllZero", "ClassImbalance",
)  # fmt: skip

# smdebug built-ins plus the collections dogclf's hook fills (relu_* from the model's ReLU modules).
COLLECTIONS = (
    "losses", "weights", "biases", "gradients", "labels", "predictions", "dataset",
    "relu_input", "relu_output", "inputs", "outputs", "all",
)  # fmt: skip


class DebugConfig(BaseModel):
    """Debugger hook settings (saved with the run)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(False, description="Save tensors with an smdebug hook to runs/<name>/debug/.")
    live_rules: bool = Field(False, description="Evaluate rules during training; stop when one fires.")
    save_interval: int = Field(
        500,
        ge=1,
        description="Save weights, gradients and activations every N training steps (AWS default 500).",
    )
    collections: list[str] = Field(
        ["losses", "weights", "biases", "gradients", "labels", "predictions", "dataset"],
        description="smdebug collections to save; add relu_input/relu_output for the activation rules.",
    )
    include_regex: list[str] = Field([], description="Extra tensor-name regexes saved as the 'custom' collection.")
    rule_parameters: dict[str, dict[str, Any]] = Field(
        {}, description="Per-rule parameter overrides, e.g. {Overfit: {ratio_threshold: 0.2}}."
    )
    live_stop_on: list[str] = Field(
        ["ExplodingTensor", "LossNotDecreasing", "VanishingGradient"],
        description="live_rules: rules whose IssuesFound stops training (checked after each epoch).",
    )

    @field_validator("collections")
    @classmethod
    def _known_collections(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(COLLECTIONS))
        if unknown:
            raise ValueError(f"unknown collection(s) {unknown}; valid: {', '.join(COLLECTIONS)}")
        return value

    @field_validator("rule_parameters", "live_stop_on")
    @classmethod
    def _known_rules(cls, value):
        unknown = sorted(set(value) - set(RULE_NAMES))
        if unknown:
            raise ValueError(f"unknown rule(s) {unknown}; valid: {', '.join(RULE_NAMES)}")
        return value
