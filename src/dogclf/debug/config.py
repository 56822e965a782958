"""Config section for smdebug hooks and Debugger-style rules, and what the rules read.

Free of torch and smdebug, so validating a config and building a SageMaker job (which submits the rules as
`Rule.custom` without importing them) need neither.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Rule names known to dogclf.debug.rules (kept here so validating a config never imports smdebug).
RULE_NAMES = (
    "VanishingGradient",
    "ExplodingTensor",
    "LossNotDecreasing",
    "Overfit",
    "Overtraining",
    "PoorWeightInitialization",
    "DeadRelu",
    "AllZero",
    "ClassImbalance",
)

# smdebug built-ins plus the collections dogclf's hook fills (relu_* from the model's ReLU modules).
COLLECTIONS = (
    "losses",
    "weights",
    "biases",
    "gradients",
    "labels",
    "predictions",
    "dataset",
    "relu_input",
    "relu_output",
    "inputs",
    "outputs",
    "all",
)

# What dogclf's hook names the tensors the rules read (the loss module's inputs, and a custom tensor).
LABELS_TENSOR = "CrossEntropyLoss_input_1"
PREDICTIONS_TENSOR = "CrossEntropyLoss_input_0"
CLASS_COUNTS_TENSOR = "dataset/class_counts"
VALID_CONFUSION_TENSOR = "valid_confusion"  # saved as valid_confusion_output_0 with each validation
TRAIN_LOSS_TENSOR = "train_loss"  # the epoch's plain-CE train loss, saved next to the valid loss (EVAL mode)

# Parameters dogclf gives a rule on top of AWS's defaults, pointing it at dogclf's tensors; the same locally
# (dogclf.debug.engine) and on SageMaker (built-in and custom rules).
DOGCLF_PARAMETERS: dict[str, dict[str, Any]] = {
    # AWS's increase_threshold_percent (default 5) bounds the rise over the early loss: 100 = "doubled".
    # diff_percent: the least drop per 10 steps that counts as progress, chosen on the tuning cases of
    # tests/debug/synthetic_suite.py (benchmarks/bench_rules.py --tune) with z at its default 3.
    "LossNotDecreasing": {"mode": "TRAIN", "increase_threshold_percent": 100, "diff_percent": 0.3},
    # Two validations in a row, an absolute gap and gap growth, so a flat gap or one noisy validation never decide.
    "Overfit": {"patience": 2, "min_gap": 0.1, "min_growth": 0.05},
    # A fine-tuned pretrained network has small gradients (spread ~1e-4); zero-initialized layers have none.
    "PoorWeightInitialization": {"distribution_range": 1e-6},
    "AllZero": {"collection_names": "relu_output,gradients"},
    "ClassImbalance": {
        "counts_regex": re.escape(CLASS_COUNTS_TENSOR),
        "confusion_regex": re.escape(VALID_CONFUSION_TENSOR) + "_output_0",
    },
}

# The collections each rule reads with dogclf's parameters; it can evaluate once any one of them is saved.
# ExplodingTensor reads whatever was saved. Kept in step with each rule's `missing()` by the tests.
RULE_INPUTS: dict[str, tuple[str, ...]] = {
    "VanishingGradient": ("gradients",),
    "ExplodingTensor": (),
    "LossNotDecreasing": ("losses",),
    "Overfit": ("losses",),
    "Overtraining": ("losses",),
    "PoorWeightInitialization": ("relu_input", "gradients"),  # the activation check needs relu_input
    "DeadRelu": ("relu_output",),
    "AllZero": ("relu_output", "gradients"),
    "ClassImbalance": ("dataset",),
}


def merged_rule_parameters(name: str, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The parameters dogclf gives rule `name`, with `overrides` (debug.rule_parameters) applied; not validated."""
    return {**DOGCLF_PARAMETERS.get(name, {}), **(overrides or {}).get(name, {})}


def rule_inputs(name: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """Collections rule `name` reads with `params`, one of which must be saved; () when any tensor will do."""
    if params.get("tensor_regex"):
        return ()  # a regex picks its own tensors: nothing to check up front
    names = params.get("collection_names")
    if names:
        items = names.split(",") if isinstance(names, str) else list(names)
        return tuple(n.strip() for n in items if n.strip())
    return RULE_INPUTS.get(name, ())


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

    def saved_collections(self) -> list[str]:
        """Collections the hook saves: `collections`, plus 'custom' when `include_regex` is set."""
        return [*self.collections, *(["custom"] if self.include_regex and "custom" not in self.collections else [])]

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
