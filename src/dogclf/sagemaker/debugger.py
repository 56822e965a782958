"""Debugger and profiler plans of a training job: hook collections, built-in and custom rules, their images.

dogclf's own rules (dogclf.debug.rules, joined into one file) run as custom rules, read with ast on the
submitting machine (which needs no smdebug); AWS-maintained rules run as built-ins. The SDK loads inside functions only.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dogclf.debug.config import DebugConfig, merged_rule_parameters, rule_inputs
from dogclf.errors import ConfigError

if TYPE_CHECKING:
    from dogclf.sagemaker.session import Connection

# AWS-maintained rules run as built-ins where dogclf's rule checks the same thing; the rest of dogclf.debug.rules
# (its loss rules decide on windowed means and the run's own noise, unlike AWS's) runs as custom rules, so each
# check runs once. Custom rule names get a "dogclf-" prefix so both kinds can coexist.
BUILTIN_RULES = ("vanishing_gradient", "exploding_tensor")
_BUILTIN_CLASSES = {"VanishingGradient", "ExplodingTensor"}
# Per-region account of the custom-rule evaluator image `sagemaker-debugger-rule-evaluator:latest`. The SDK has
# no lookup for it: image_uris.retrieve("debugger", region) is the built-in rules image (sagemaker-debugger-rules),
# which cannot run a rule file. Source: AWS docs "Amazon SageMaker Debugger Registry URLs for Custom Rule
# Evaluators" (the 18 commercial regions), and the SDK's tests/integ/test_debugger.py for the two China regions.
# Other regions need rule_image_uri.
RULE_EVALUATOR_ACCOUNTS = {
    "ap-east-1": "645844755771",
    "ap-northeast-1": "670969264625",
    "ap-northeast-2": "326368420253",
    "ap-south-1": "552407032007",
    "ap-southeast-1": "631532610101",
    "ap-southeast-2": "445670767460",
    "ca-central-1": "105842248657",
    "eu-central-1": "691764027602",
    "eu-north-1": "091235270104",
    "eu-west-1": "606966180310",
    "eu-west-2": "074613877050",
    "eu-west-3": "224335253976",
    "me-south-1": "050406412588",
    "sa-east-1": "466516958431",
    "us-east-1": "864354269164",
    "us-east-2": "840043622174",
    "us-west-1": "952348334681",
    "us-west-2": "759209512951",
    "cn-north-1": "617202126805",
    "cn-northwest-1": "658559488188",
}

log = logging.getLogger("dogclf")


class RuleOptions(Protocol):
    """The rule settings of a job (EstimatorOptions has them)."""

    builtin_rules: Sequence[str]
    custom_rules: Sequence[str] | None
    rule_image_uri: str | None
    rules_file: str | Path | None
    rule_instance_type: str


def custom_rule_classes(source: Path) -> list[str]:
    """Concrete smdebug Rule subclasses of a rules file: leaves of the Rule class tree, read with ast."""
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    bases = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases[node.name] = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
    rules, changed = {"Rule"}, True
    while changed:
        found = {name for name, parents in bases.items() if parents & rules} - rules
        rules |= found
        changed = bool(found)
    used_as_base = set().union(*bases.values()) if bases else set()
    return [n for n in bases if n in rules and n not in used_as_base and not n.startswith("_")]


def rule_signatures(source: Path) -> dict[str, list[str]]:
    """Each class's rule parameters (its `__init__` arguments after base_trial, else its bases'), read with ast.

    The submitting machine needs no smdebug: the rules file is uploaded, never imported here.
    """
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    def params(name: str, seen: frozenset[str] = frozenset()) -> list[str] | None:
        node = classes.get(name)
        if node is None or name in seen:
            return None
        init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
        if init is not None:
            names = [a.arg for a in (*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs)]
            return [n for n in names if n not in ("self", "base_trial")]
        inherited = (params(getattr(b, "id", getattr(b, "attr", "")), seen | {name}) for b in node.bases)
        return next((p for p in inherited if p is not None), None)

    return {name: found for name in classes if (found := params(name)) is not None}


def rules_source() -> Path:
    """The dogclf.debug.rules package joined into one file, uploaded as the custom rules' source."""
    from dogclf.debug.rules_bundle import bundle_file

    return bundle_file()


def rule_image(region: str, rule_image_uri: str | None) -> str:
    """The custom-rule evaluator image: rule_image_uri when given, else AWS's for the region."""
    if rule_image_uri:
        return rule_image_uri
    from sagemaker.utils import get_domain_for_region

    account = RULE_EVALUATOR_ACCOUNTS.get(region)
    if account is None:
        known = ", ".join(sorted(RULE_EVALUATOR_ACCOUNTS))
        raise ConfigError(
            f"no known custom-rule evaluator image for region {region} (known: {known}); pass rule_image_uri "
            f"(AWS docs 'Debugger Registry URLs for Custom Rule Evaluators'), or custom_rules=()"
        )
    return f"{account}.dkr.ecr.{region}.{get_domain_for_region(region)}/sagemaker-debugger-rule-evaluator:latest"


def rule_parameter_strings(params: Mapping[str, Any]) -> dict[str, str]:
    """Rule parameters as SageMaker carries them: text, lists comma-joined, None left out (the rule's default)."""
    out = {}
    for key, value in params.items():
        if value is not None:
            out[key] = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return out


def _rule_parameters(name: str, debug: DebugConfig, signatures: Mapping[str, list[str]]) -> dict[str, Any]:
    """The parameters the local engine gives rule `name` (dogclf's + debug.rule_parameters), checked by name."""
    params = merged_rule_parameters(name, debug.rule_parameters)
    valid = signatures.get(name)
    unknown = sorted(set(params) - set(valid)) if valid is not None else []
    if unknown:
        raise ConfigError(f"rule {name}: unknown parameter(s) {unknown}; valid: {', '.join(valid or [])}")
    return params


@dataclass
class DebuggerPlan:
    """What a job's hook saves (as CollectionConfigs, one per name) and the rules that read it."""

    debug: DebugConfig
    collections: dict[str, Any] = field(default_factory=dict)
    rules: list[Any] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # custom rule -> why it was not submitted

    def collection(self, name: str) -> Any:
        """The job's CollectionConfig of `name` (saved every debug.save_interval steps), added when new."""
        from sagemaker.debugger import CollectionConfig

        if name not in self.collections:
            params = {"save_interval": str(self.debug.save_interval)}
            self.collections[name] = CollectionConfig(name, parameters=params)
        return self.collections[name]


def _add_builtin_rules(plan: DebuggerPlan, names: Sequence[str]) -> None:
    """AWS's rules, with the parameters of dogclf's rule of the same name and their collections at our interval."""
    from sagemaker.debugger import Rule, rule_configs

    signatures = rule_signatures(rules_source())
    for name in names:
        factory = getattr(rule_configs, name, None)
        base = factory() if callable(factory) and not name.startswith("_") else None
        if not isinstance(base, dict) or "DebugRuleConfiguration" not in base:
            raise ConfigError(f"unknown built-in Debugger rule {name!r}; e.g. {', '.join(BUILTIN_RULES)}")
        rule = base["DebugRuleConfiguration"]["RuleConfigurationName"]
        # dogclf's rule of that name takes parameters of its own where it decides differently: AWS's defaults then.
        params = _rule_parameters(rule, plan.debug, signatures) if rule in _BUILTIN_CLASSES else {}
        # Our CollectionConfigs replace the rule's own (save_interval 500), so each collection is sent once.
        needed = [plan.collection(c["CollectionName"]) for c in base.get("CollectionConfigurations", [])]
        plan.rules.append(
            Rule.sagemaker(base, rule_parameters=rule_parameter_strings(params) or None, collections_to_save=needed)
        )


def _custom_rule_inputs(plan: DebuggerPlan, name: str, params: Mapping[str, Any], explicit: bool) -> list[Any] | None:
    """The CollectionConfigs a custom rule reads, or None when the job saves none of them (error when explicit)."""
    inputs = rule_inputs(name, params)
    saved = set(plan.debug.saved_collections())
    if not inputs or set(inputs) & saved:
        return [plan.collection(c) for c in inputs if c in saved]
    why = f"it reads {' or '.join(inputs)}, which this job does not save (debug.collections)"
    if explicit:
        wanted = [*plan.debug.collections, inputs[0]]
        raise ConfigError(f"custom rule {name}: {why}; add it: --set debug.collections=[{','.join(wanted)}]")
    plan.skipped[name] = why
    return None


def _add_custom_rules(plan: DebuggerPlan, conn: Connection, o: RuleOptions) -> None:
    """The rules of dogclf.debug.rules (or of `o.rules_file`) as Rule.custom, with the local engine's parameters."""
    from sagemaker.debugger import Rule

    if o.custom_rules is not None and not o.custom_rules:
        return
    source = Path(o.rules_file) if o.rules_file else rules_source()
    available = custom_rule_classes(source)
    explicit = o.custom_rules is not None
    chosen = list(o.custom_rules) if explicit else [n for n in available if n not in _BUILTIN_CLASSES]
    unknown = [n for n in chosen if n not in available]
    if unknown:
        raise ConfigError(f"unknown custom rule(s) {unknown}; {source} defines {available}")
    signatures = rule_signatures(source)
    submitted = []
    for name in chosen:
        params = _rule_parameters(name, plan.debug, signatures)
        inputs = _custom_rule_inputs(plan, name, params, explicit)
        if inputs is not None:
            submitted.append((name, params, inputs))
    image = rule_image(conn.region, o.rule_image_uri) if submitted else None
    for name, params, inputs in submitted:
        plan.rules.append(
            Rule.custom(
                name=f"dogclf-{name}",
                image_uri=image,
                instance_type=o.rule_instance_type,
                volume_size_in_gb=30,
                source=str(source),
                rule_to_invoke=name,
                rule_parameters=rule_parameter_strings(params),
                collections_to_save=inputs,
            )
        )


def debugger_config(conn: Connection, debug: DebugConfig, o: RuleOptions) -> tuple[Any, list[Any]]:
    """DebuggerHookConfig saving what dogclf's hook saves locally, and the built-in + custom rules that read it.

    A custom rule whose collections the job does not save is left out (logged), so no rule instance is paid for
    that can never fire; naming it in custom_rules makes that an error instead.
    """
    from sagemaker.debugger import DebuggerHookConfig

    plan = DebuggerPlan(debug)
    for name in debug.saved_collections():
        plan.collection(name)
    _add_builtin_rules(plan, o.builtin_rules)
    _add_custom_rules(plan, conn, o)
    for name, why in plan.skipped.items():
        log.info("custom rule %s not submitted: %s", name, why)
    hook = DebuggerHookConfig(
        s3_output_path=conn.s3_uri("debug"),
        hook_parameters={"save_interval": str(debug.save_interval)},
        collection_configs=list(plan.collections.values()),
    )
    return hook, plan.rules


def profiler_config(interval_ms: int) -> tuple[Any, list[Any]]:
    """System monitoring (framework profiling is unsupported for PyTorch >= 2) and the ProfilerReport rule."""
    from sagemaker.debugger import ProfilerConfig, ProfilerRule, rule_configs

    return ProfilerConfig(system_monitor_interval_millis=interval_ms), [
        ProfilerRule.sagemaker(rule_configs.ProfilerReport())
    ]
