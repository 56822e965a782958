"""Every SageMaker SDK call of dogclf: estimator, tuner, waiting, best parameters, reports, deploy, invoke.

The SDK (v2) is imported here only. Inside our calls its telemetry is opted out (through the session's SDK
config) and its v2 deprecation banner is silenced; the user's own SDK use is left alone. A `Connection`
carries the session, the bucket and an optional endpoint URL (an AWS emulator), which is applied to every
boto3 client the SDK creates during our calls.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import json
import logging
import os
import shutil
import tarfile
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dogclf.config import RunConfig, build_config, config_to_yaml
from dogclf.debug.config import DebugConfig, merged_rule_parameters, rule_inputs
from dogclf.errors import ConfigError, DatasetError, DogclfError
from dogclf.fsutil import atomic_write_text
from dogclf.hyperparameters import HYPERPARAMETERS, config_field, to_hyperparameters
from dogclf.s3 import parse_s3_uri
from dogclf.sagemaker.bundle import job_extras
from dogclf.sagemaker.training import CONFIG_FILE
from dogclf.training.metrics import metric_definitions

FRAMEWORK_VERSION = "2.6.0"  # newest PyTorch DLC with both training and inference images in SDK 2.257
PY_VERSION = "py312"
# AWS-maintained rules run as built-ins; the rest of dogclf.debug.rules runs as custom rules, so each
# check runs once. Custom rule names get a "dogclf-" prefix so both kinds can coexist.
BUILTIN_RULES = ("vanishing_gradient", "exploding_tensor", "loss_not_decreasing", "overtraining")
_BUILTIN_CLASSES = {"VanishingGradient", "ExplodingTensor", "LossNotDecreasing", "Overtraining"}
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
ENTRY_SCRIPTS = {"train": "train.py", "hpo": "hpo.py", "inference": "inference.py"}
CODE_DIR = "/opt/ml/model/code"  # where the serving container finds code/ of model.tar.gz


log = logging.getLogger("dogclf")


class SageMakerError(DogclfError):
    """A SageMaker request failed or a job is not in the state asked for."""


@contextlib.contextmanager
def _sdk_env(endpoint_url: str | None = None) -> Iterator[None]:
    """Silence the SDK's v2 banner and point new boto3 clients at `endpoint_url`, for our calls only."""
    changes = {"SAGEMAKER_SUPPRESS_V2_WARNING": "1"}
    if endpoint_url:
        changes["AWS_ENDPOINT_URL"] = endpoint_url
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _aws_errors(action: str) -> Iterator[None]:
    """Turn botocore / SDK request failures into one-line SageMakerError messages naming the action."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise SageMakerError(f"{action} failed: {err.get('Code', 'Error')}: {err.get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise SageMakerError(f"{action} failed: {exc}") from None


@dataclass
class Connection:
    """A SageMaker session plus where dogclf keeps things in S3."""

    session: Any
    bucket: str
    prefix: str = "dogclf"
    endpoint_url: str | None = None

    def s3_uri(self, *parts: str) -> str:
        """s3://bucket/prefix/parts..."""
        return "s3://" + "/".join([self.bucket, self.prefix, *[p.strip("/") for p in parts if p]])

    @property
    def region(self) -> str:
        """The AWS region the session talks to."""
        return self.session.boto_region_name


def connect(
    bucket: str, region: str | None = None, endpoint_url: str | None = None, prefix: str = "dogclf"
) -> Connection:
    """A session with an explicit default bucket (no STS lookup) and telemetry opted out."""
    import boto3

    if not bucket:
        raise ConfigError("an S3 bucket is required (pass --bucket); dogclf never guesses bucket names")
    with _sdk_env(endpoint_url):
        from sagemaker.config import load_sagemaker_config

        import sagemaker

        boto_session = boto3.session.Session(region_name=region)
        if boto_session.region_name is None:
            raise ConfigError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
        sdk_config = load_sagemaker_config()
        sdk_config.setdefault("SchemaVersion", "1.0")
        modules = sdk_config.setdefault("SageMaker", {}).setdefault("PythonSDK", {}).setdefault("Modules", {})
        modules["TelemetryOptOut"] = True
        session = sagemaker.Session(
            boto_session=boto_session,
            sagemaker_client=boto_session.client("sagemaker", endpoint_url=endpoint_url),
            sagemaker_runtime_client=boto_session.client("sagemaker-runtime", endpoint_url=endpoint_url),
            default_bucket=bucket,
            sagemaker_config=sdk_config,
        )
    return Connection(session, bucket, prefix.strip("/"), endpoint_url)


# --------------------------------------------------------------------------------------------- source dir
def stage_source_dir(
    scripts: Sequence[str],
    cfg: RunConfig | None = None,
    entry_dir: str | Path | None = None,
    extras: Sequence[str] = (),
) -> Path:
    """A temp folder with the entry scripts, a copy of the dogclf package, requirements.txt and the config.

    requirements.txt (installed by the training toolkit before the script runs) adds the dependencies of
    `extras`; serving-requirements.txt, without them, becomes code/requirements.txt of the job's model.
    """
    from dogclf.sagemaker.bundle import SERVING_REQUIREMENTS_FILE, requirements, write_code

    staged = Path(tempfile.mkdtemp(prefix="dogclf-source-"))
    try:
        write_code(staged, scripts, entry_dir, extras=extras)
        (staged / SERVING_REQUIREMENTS_FILE).write_text(requirements(), encoding="utf-8")
    except ConfigError:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    if cfg is not None:
        shipped = cfg.model_copy(deep=True)
        shipped.data.root = None  # the channels decide where the data is
        (staged / CONFIG_FILE).write_text(config_to_yaml(shipped), encoding="utf-8")
    return staged


# --------------------------------------------------------------------------------------------- estimator
def estimator_hyperparameters(cfg: RunConfig) -> dict[str, str]:
    """Every hyperparameter of the table with a value, as the strings SageMaker passes to the script."""
    values = cfg.model_dump(mode="json")
    dotted = {}
    for field_name in HYPERPARAMETERS.values():
        node: Any = values
        for part in field_name.split("."):
            node = node[part]
        if node is not None:
            dotted[field_name] = node
    return to_hyperparameters(dotted)


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
    """The file of dogclf.debug.rules, uploaded as the custom rules' source."""
    spec = importlib.util.find_spec("dogclf.debug.rules")
    if spec is None or spec.origin is None:
        raise ConfigError("dogclf.debug.rules is missing: custom Debugger rules need it (or pass custom_rules=())")
    return Path(spec.origin)


def _rule_image(region: str, rule_image_uri: str | None) -> str:
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
class _DebuggerPlan:
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


def _add_builtin_rules(plan: _DebuggerPlan, names: Sequence[str]) -> None:
    """AWS's rules, with the parameters of dogclf's rule of the same name and their collections at our interval."""
    from sagemaker.debugger import Rule, rule_configs

    signatures = rule_signatures(rules_source())
    for name in names:
        factory = getattr(rule_configs, name, None)
        base = factory() if callable(factory) and not name.startswith("_") else None
        if not isinstance(base, dict) or "DebugRuleConfiguration" not in base:
            raise ConfigError(f"unknown built-in Debugger rule {name!r}; e.g. {', '.join(BUILTIN_RULES)}")
        rule = base["DebugRuleConfiguration"]["RuleConfigurationName"]
        params = _rule_parameters(rule, plan.debug, signatures) if rule in signatures else {}
        # Our CollectionConfigs replace the rule's own (save_interval 500), so each collection is sent once.
        needed = [plan.collection(c["CollectionName"]) for c in base.get("CollectionConfigurations", [])]
        plan.rules.append(
            Rule.sagemaker(base, rule_parameters=rule_parameter_strings(params) or None, collections_to_save=needed)
        )


def _custom_rule_inputs(plan: _DebuggerPlan, name: str, params: Mapping[str, Any], explicit: bool) -> list[Any] | None:
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


def _add_custom_rules(plan: _DebuggerPlan, conn: Connection, o: EstimatorOptions) -> None:
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
    image = _rule_image(conn.region, o.rule_image_uri) if submitted else None
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


def _debugger(conn: Connection, debug: DebugConfig, o: EstimatorOptions) -> tuple[Any, list[Any]]:
    """DebuggerHookConfig saving what dogclf's hook saves locally, and the built-in + custom rules that read it.

    A custom rule whose collections the job does not save is left out (logged), so no rule instance is paid for
    that can never fire; naming it in custom_rules makes that an error instead.
    """
    from sagemaker.debugger import DebuggerHookConfig

    plan = _DebuggerPlan(debug)
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


def _profiler(interval_ms: int) -> tuple[Any, list[Any]]:
    """System monitoring (framework profiling is unsupported for PyTorch >= 2) and the ProfilerReport rule."""
    from sagemaker.debugger import ProfilerConfig, ProfilerRule, rule_configs

    return ProfilerConfig(system_monitor_interval_millis=interval_ms), [
        ProfilerRule.sagemaker(rule_configs.ProfilerReport())
    ]


@dataclass
class EstimatorOptions:
    """Job settings for make_estimator (all but role have safe defaults)."""

    role: str
    mode: str = "train"  # "train" (hooks, rules, checkpoints) or "hpo" (a lean tuning trial)
    instance_type: str = "ml.g4dn.xlarge"
    instance_count: int = 1
    distributed: bool | None = None  # torch_distributed; default on for instance_count > 1
    spot: bool = False
    max_run_s: int = 24 * 3600
    max_wait_s: int | None = None  # spot only: the spot wait plus the run, >= max_run_s (default max_run_s)
    checkpoint_s3_uri: str | None = None  # default s3://bucket/prefix/checkpoints/<run name>
    debugger: bool = True  # tensors saved every cfg.debug.save_interval steps, the collections of cfg.debug
    builtin_rules: Sequence[str] = BUILTIN_RULES
    custom_rules: Sequence[str] | None = None  # None: the classes of dogclf.debug.rules not run as built-ins
    rule_image_uri: str | None = None
    rules_file: str | Path | None = None  # default: the file of dogclf.debug.rules
    rule_instance_type: str = "ml.t3.medium"
    profiler: bool = True
    system_monitor_interval_ms: int = 500
    tags: Mapping[str, str] = field(default_factory=dict)
    framework_version: str = FRAMEWORK_VERSION
    py_version: str = PY_VERSION
    entry_dir: str | Path | None = None
    base_job_name: str = "dogclf"


def _max_wait(o: EstimatorOptions) -> int | None:
    """MaxWaitTimeInSeconds: spot only, at least max_run_s (it counts the spot wait plus the run itself)."""
    if not o.spot:
        if o.max_wait_s is not None:
            raise ConfigError("--max-wait applies to spot training only: add --spot, or drop --max-wait")
        return None
    if o.max_wait_s is None:
        return o.max_run_s
    if o.max_wait_s < o.max_run_s:
        raise ConfigError(
            f"--max-wait ({o.max_wait_s} s) must be at least --max-run ({o.max_run_s} s): it bounds the wait for "
            f"spot capacity plus the run itself; e.g. --max-wait {2 * o.max_run_s}"
        )
    return o.max_wait_s


def make_estimator(cfg: RunConfig, conn: Connection, options: EstimatorOptions) -> Any:
    """A PyTorch estimator running dogclf/entrypoints/{train,hpo}.py on the config, with Debugger and profiler."""
    o = options
    if o.mode not in ("train", "hpo"):
        raise ConfigError(f"mode must be 'train' or 'hpo', got {o.mode!r}")
    hpo = o.mode == "hpo"
    run = cfg.model_copy(deep=True)
    if o.debugger and not hpo:
        run.debug.enabled = True  # the script then saves tensors through SageMaker's debughookconfig.json
    with _sdk_env(conn.endpoint_url):
        from sagemaker.pytorch import PyTorch
        from sagemaker.utils import name_from_base

        hook, rules = _debugger(conn, run.debug, o) if o.debugger and not hpo else (False, [])
        profiler_config, profiler_rules = (
            _profiler(o.system_monitor_interval_ms) if o.profiler and not hpo else (None, [])
        )
        # Jobs of one run name share checkpoints (a resubmission resumes); tuning trials never do.
        run_name = cfg.name or name_from_base(o.base_job_name)
        checkpoint = None if hpo else o.checkpoint_s3_uri or conn.s3_uri("checkpoints", run_name)
        distributed = o.instance_count > 1 if o.distributed is None else o.distributed
        source_dir = stage_source_dir([ENTRY_SCRIPTS[o.mode]], run, o.entry_dir, job_extras(run, o.mode))
        tags = [{"Key": k, "Value": v} for k, v in {"dogclf:mode": o.mode, **o.tags}.items()]
        try:
            estimator = PyTorch(
                entry_point=ENTRY_SCRIPTS[o.mode],
                source_dir=str(source_dir),
                role=o.role,
                framework_version=o.framework_version,
                py_version=o.py_version,
                instance_type=o.instance_type,
                instance_count=o.instance_count,
                hyperparameters=estimator_hyperparameters(run),
                metric_definitions=metric_definitions(),
                debugger_hook_config=hook,
                rules=rules + profiler_rules or None,
                profiler_config=profiler_config,
                disable_profiler=profiler_config is None,
                checkpoint_s3_uri=checkpoint,
                use_spot_instances=o.spot,
                max_run=o.max_run_s,
                max_wait=_max_wait(o),
                distribution={"torch_distributed": {"enabled": True}} if distributed else None,
                output_path=conn.s3_uri("output"),
                code_location=conn.s3_uri("code"),
                base_job_name=o.base_job_name,
                tags=tags,
                sagemaker_session=conn.session,
            )
        except ValueError as exc:
            shutil.rmtree(source_dir, ignore_errors=True)
            raise ConfigError(f"SageMaker SDK rejected the estimator: {exc}") from None
    weakref.finalize(estimator, shutil.rmtree, str(source_dir), True)
    return estimator


def _channels(inputs: str | Mapping[str, str]) -> dict[str, str]:
    """One S3 URI (a folder with train/ valid/ [test/]) as the 'training' channel, or channel -> URI."""
    channels = {"training": inputs} if isinstance(inputs, str) else dict(inputs)
    for name, uri in channels.items():
        parse_s3_uri(uri)
        if not name.replace("-", "").isalnum():
            raise ConfigError(f"channel name {name!r} must be letters, digits and '-'")
    return channels


def submit(
    conn: Connection,
    job: Any,
    inputs: str | Mapping[str, str],
    wait: bool = False,
    job_name: str | None = None,
) -> str:
    """Start a training job (estimator) or tuning job (tuner); with wait, stream logs until it ends."""
    from sagemaker.tuner import HyperparameterTuner

    with _sdk_env(conn.endpoint_url), _aws_errors("submitting the job"):
        if isinstance(job, HyperparameterTuner):
            job.fit(_channels(inputs), job_name=job_name, wait=False)
            if wait:
                job.wait()
            return job.latest_tuning_job.name
        job.fit(_channels(inputs), job_name=job_name, wait=wait, logs="All" if wait else "None")
        return job.latest_training_job.name


# ------------------------------------------------------------------------------------------------ waiting
# kind -> (describe call, name parameter, status field, final states)
_WAITABLE = {
    "training": ("describe_training_job", "TrainingJobName", "TrainingJobStatus", ("Completed", "Failed", "Stopped")),
    "tuning": (
        "describe_hyper_parameter_tuning_job",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
        ("Completed", "Failed", "Stopped"),
    ),
    "endpoint": (
        "describe_endpoint",
        "EndpointName",
        "EndpointStatus",
        ("InService", "Failed", "OutOfService", "UpdateRollbackFailed"),
    ),
}
RULE_FINAL = ("NoIssuesFound", "IssuesFound", "Error", "Stopped")


def describe(conn: Connection, kind: str, name: str) -> dict[str, Any]:
    """The Describe* answer for a training job, tuning job or endpoint."""
    if kind not in _WAITABLE:
        raise ConfigError(f"kind must be one of {', '.join(_WAITABLE)}, got {kind!r}")
    call, param, _, _ = _WAITABLE[kind]
    client = conn.session.sagemaker_client
    with _sdk_env(conn.endpoint_url), _aws_errors(f"reading {kind} {name}"):
        return getattr(client, call)(**{param: name})


def _poll(
    read: Callable[[], Any],
    done: Callable[[Any], bool],
    what: str,
    poll_s: float,
    timeout_s: float | None,
    show: Callable[[Any], Any] = str,
) -> Any:
    """Call read() every poll_s seconds until done(value); SageMakerError (naming show(value)) after timeout_s."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        value = read()
        if done(value):
            return value
        if deadline is not None and time.monotonic() > deadline:
            raise SageMakerError(f"gave up waiting for {what} after {timeout_s:.0f} s (last seen: {show(value)})")
        time.sleep(poll_s)


def wait_for(
    conn: Connection,
    kind: str,
    name: str,
    poll_s: float = 30.0,
    timeout_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Poll a training job, tuning job or endpoint until it reaches a final state; returns its description.

    `progress` is called with each new status. A final state may be a failure: check the returned status.
    """
    if kind not in _WAITABLE:
        raise ConfigError(f"kind must be one of {', '.join(_WAITABLE)}, got {kind!r}")
    _, _, status_field, final = _WAITABLE[kind]
    seen: list[str] = []

    def status_of(desc: Mapping[str, Any]) -> str:
        return desc.get(status_field, "Unknown")

    def read() -> dict[str, Any]:
        desc = describe(conn, kind, name)
        if progress is not None and (not seen or seen[-1] != status_of(desc)):
            progress(status_of(desc))
        seen.append(status_of(desc))
        return desc

    return _poll(read, lambda d: status_of(d) in final, f"{kind} {name}", poll_s, timeout_s, show=status_of)


def rule_statuses(description: Mapping[str, Any]) -> dict[str, str]:
    """Rule name -> evaluation status (Debugger and profiler rules) from a DescribeTrainingJob answer."""
    found = {}
    for key in ("DebugRuleEvaluationStatuses", "ProfilerRuleEvaluationStatuses"):
        for s in description.get(key) or []:
            found[s.get("RuleConfigurationName", "?")] = s.get("RuleEvaluationStatus", "Unknown")
    return found


def wait_for_rules(
    conn: Connection, job_name: str, poll_s: float = 30.0, timeout_s: float | None = None
) -> dict[str, str]:
    """Wait until every rule of a finished training job has a final status (rules run on after the job)."""

    def read() -> dict[str, str]:
        return rule_statuses(describe(conn, "training", job_name))

    return _poll(read, lambda r: all(v in RULE_FINAL for v in r.values()), f"rules of {job_name}", poll_s, timeout_s)


@dataclass
class TrainingOutputs:
    """What a finished training job left behind: status, model.tar.gz (and whether it exists), rule statuses."""

    job_name: str
    status: str
    failure_reason: str | None
    model_data: str | None
    model_data_exists: bool
    rules: dict[str, str]

    @property
    def ran(self) -> bool:
        """True when the job completed and its model.tar.gz is really in S3 (an emulator leaves none)."""
        return self.status == "Completed" and self.model_data_exists


def training_outputs(conn: Connection, job_name: str) -> TrainingOutputs:
    """Describe a training job and check in S3 that the model artifact it names exists."""
    from dogclf.s3 import make_client, object_exists

    desc = describe(conn, "training", job_name)
    model_data = (desc.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    exists = False
    if model_data:
        with _aws_errors(f"checking {model_data}"):
            exists = object_exists(model_data, client=make_client(conn.endpoint_url, conn.region))
    return TrainingOutputs(
        job_name=job_name,
        status=desc.get("TrainingJobStatus", "Unknown"),
        failure_reason=desc.get("FailureReason"),
        model_data=model_data,
        model_data_exists=exists,
        rules=rule_statuses(desc),
    )


# ------------------------------------------------------------------------------------------------- tuning
STRATEGIES = {"bayesian": "Bayesian", "random": "Random", "hyperband": "Hyperband", "grid": "Grid"}


def make_tuner(
    estimator: Any,
    space: Any,
    warm_start_from: Sequence[str] = (),
    max_runtime_s: int | None = None,
    base_tuning_job_name: str = "dogclf-tune",
) -> Any:
    """HyperparameterTuner from a dogclf SearchSpace: ranges, objective, strategy, budget, early stopping."""
    from sagemaker.tuner import (
        HyperbandStrategyConfig,
        HyperparameterTuner,
        StrategyConfig,
        WarmStartConfig,
        WarmStartTypes,
    )

    strategy = STRATEGIES[space.strategy]
    strategy_config, early = None, "Auto" if space.early_stopping else "Off"
    if strategy == "Hyperband":  # Hyperband stops trials itself, on the per-epoch objective lines
        epochs = int(estimator.hyperparameters().get("epochs", "10").strip('"'))
        strategy_config = StrategyConfig(HyperbandStrategyConfig(min_resource=1, max_resource=max(epochs, 2)))
        early = "Off"
    warm = None
    if warm_start_from:
        warm = WarmStartConfig(WarmStartTypes.IDENTICAL_DATA_AND_ALGORITHM, parents=set(warm_start_from))
    try:
        with _sdk_env():
            return HyperparameterTuner(
                estimator,
                space.objective,
                space.to_sagemaker(),
                metric_definitions=metric_definitions(),
                strategy=strategy,
                objective_type=space.direction.capitalize(),
                max_jobs=None if strategy == "Grid" else space.max_trials,
                max_parallel_jobs=space.parallel_trials,
                max_runtime_in_seconds=max_runtime_s,
                early_stopping_type=early,
                strategy_config=strategy_config,
                warm_start_config=warm,
                base_tuning_job_name=base_tuning_job_name,
            )
    except ValueError as exc:
        raise ConfigError(f"SageMaker SDK rejected the tuner: {exc}") from None


@dataclass
class BestParams:
    """The best (or named) training job and the dogclf config that reproduces it."""

    training_job: str
    tuning_job: str | None
    objective: dict[str, Any] | None
    hyperparameters: dict[str, str]
    config: RunConfig


def _shipped_config(conn: Connection, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """The full config shipped in the job's source tarball (dogclf-config.yaml), {} when absent."""
    import yaml

    uri = hyperparameters.get("sagemaker_submit_directory")
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return {}
    bucket, key = parse_s3_uri(uri)
    body = conn.session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        member = next((m for m in tar.getmembers() if m.name.lstrip("./") == CONFIG_FILE and m.isfile()), None)
        if member is None:
            return {}
        return yaml.safe_load(tar.extractfile(member).read()) or {}  # type: ignore[union-attr]


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value


def best_params(conn: Connection, job_name: str, output: str | Path | None = None) -> BestParams:
    """Best training job of a tuning job (or a named training job) -> its hyperparameters as a config."""
    client = conn.session.sagemaker_client
    tuning, objective = None, None
    with _sdk_env(conn.endpoint_url):
        try:
            desc = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=job_name)
        except client.exceptions.ResourceNotFound:
            desc = None
        if desc is not None:
            best = desc.get("BestTrainingJob")
            if not best:
                raise SageMakerError(
                    f"tuning job {job_name} has no best training job yet ({desc.get('HyperParameterTuningJobStatus')})"
                )
            tuning, training, objective = (
                job_name,
                best["TrainingJobName"],
                best.get("FinalHyperParameterTuningJobObjectiveMetric"),
            )
        else:
            training = job_name
        with _aws_errors(f"reading training job {training}" + (f" (best of tuning job {tuning})" if tuning else "")):
            job = client.describe_training_job(TrainingJobName=training)
            raw = {k: _decode(v) for k, v in job.get("HyperParameters", {}).items()}
            base = _shipped_config(conn, raw)
    hps = {k: v for k, v in raw.items() if not k.startswith("sagemaker_")}
    if isinstance(base.get("data"), dict):
        base["data"].pop("root", None)  # the job's channel path means nothing locally
    overrides = {config_field(k): v for k, v in hps.items()}
    cfg = build_config(overrides=overrides, base=base)
    if output is not None:
        atomic_write_text(output, config_to_yaml(cfg))
    return BestParams(training, tuning, objective, {k: str(v) for k, v in hps.items()}, cfg)


# ------------------------------------------------------------------------------------------------- deploy
@dataclass
class DeployOptions:
    """Endpoint settings: instance-backed (with optional autoscaling) or serverless."""

    role: str
    endpoint_name: str | None = None
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    serverless_memory_mb: int | None = None  # set to deploy serverless (1024-6144, steps of 1024)
    serverless_max_concurrency: int = 5
    autoscale_max_instances: int | None = None  # target tracking on invocations per instance
    autoscale_target_invocations: float = 70.0
    framework_version: str = FRAMEWORK_VERSION
    py_version: str = PY_VERSION
    entry_dir: str | Path | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    # True when model_data already holds code/inference.py, a dogclf copy and requirements.txt (the model of a
    # dogclf training job does): it is served as is. False: the SDK repacks it with the code (downloads it).
    code_in_model: bool = False


def _client_codecs() -> tuple[Any, Any]:
    """The predictor's serializer (image bytes) and deserializer (JSON), from dogclf.serve.serializers."""
    from dogclf.serve import serializers

    return serializers.ImageSerializer(), serializers.TopKDeserializer()


def deploy(conn: Connection, model_data: str, options: DeployOptions) -> Any:
    """Create model, endpoint config and endpoint (no wait) for a model.tar.gz in S3; returns a Predictor."""
    o = options
    parse_s3_uri(model_data)
    if o.serverless_memory_mb is not None and o.autoscale_max_instances:
        raise ConfigError("autoscaling applies to instance endpoints; serverless endpoints scale by themselves")
    serializer, deserializer = _client_codecs()
    with _sdk_env(conn.endpoint_url), _aws_errors("deploying the endpoint"):
        from sagemaker.pytorch import PyTorchModel
        from sagemaker.serverless import ServerlessInferenceConfig
        from sagemaker.utils import name_from_base

        name = o.endpoint_name or name_from_base("dogclf")
        source_dir = None if o.code_in_model else stage_source_dir([ENTRY_SCRIPTS["inference"]], None, o.entry_dir)
        # With the code inside model_data, no entry_point: the SDK then neither downloads nor repacks the model.
        code = {"entry_point": ENTRY_SCRIPTS["inference"], "source_dir": str(source_dir)} if source_dir else {}
        env = (
            {}
            if source_dir
            else {"SAGEMAKER_PROGRAM": ENTRY_SCRIPTS["inference"], "SAGEMAKER_SUBMIT_DIRECTORY": CODE_DIR}
        )
        try:
            model = PyTorchModel(
                model_data=model_data,
                role=o.role,
                framework_version=o.framework_version,
                py_version=o.py_version,
                sagemaker_session=conn.session,
                code_location=conn.s3_uri("code"),
                name=name,
                env=env,
                **code,
            )
            serverless = None
            if o.serverless_memory_mb is not None:
                serverless = ServerlessInferenceConfig(
                    memory_size_in_mb=o.serverless_memory_mb, max_concurrency=o.serverless_max_concurrency
                )
            predictor = model.deploy(
                initial_instance_count=None if serverless else o.instance_count,
                instance_type=None if serverless else o.instance_type,
                serverless_inference_config=serverless,
                serializer=serializer,
                deserializer=deserializer,
                endpoint_name=name,
                wait=False,
                tags=[{"Key": k, "Value": v} for k, v in o.tags.items()] or None,
            )
        finally:
            if source_dir is not None:
                shutil.rmtree(source_dir, ignore_errors=True)
        if o.autoscale_max_instances:
            _autoscale(conn, name, o.instance_count, o.autoscale_max_instances, o.autoscale_target_invocations)
    return predictor


def _autoscale(conn: Connection, endpoint: str, low: int, high: int, target: float) -> None:
    """Target tracking on SageMakerVariantInvocationsPerInstance for the endpoint's AllTraffic variant."""
    if high < low:
        raise ConfigError(f"autoscale max instances ({high}) is below the instance count ({low})")
    client = conn.session.boto_session.client("application-autoscaling", endpoint_url=conn.endpoint_url)
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    dimension = "sagemaker:variant:DesiredInstanceCount"
    client.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=dimension,
        MinCapacity=low,
        MaxCapacity=high,
    )
    client.put_scaling_policy(
        PolicyName=f"{endpoint}-invocations",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=dimension,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": target,
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 60,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
    )


def _deregister_autoscaling(conn: Connection, endpoint: str, variants: Sequence[str]) -> list[str]:
    """Delete the scaling policies and deregister the scalable targets of the endpoint's variants.

    Application Auto Scaling keeps them after the endpoint is gone; `deploy --autoscale-max` registers them.
    """
    client = conn.session.boto_session.client("application-autoscaling", endpoint_url=conn.endpoint_url)
    resources = [f"endpoint/{endpoint}/variant/{v}" for v in variants]
    if not resources:
        return []
    common = {"ServiceNamespace": "sagemaker"}
    try:
        targets = client.describe_scalable_targets(**common, ResourceIds=resources)["ScalableTargets"]
    except client.exceptions.ClientError as exc:
        if "AccessDenied" not in exc.response.get("Error", {}).get("Code", ""):
            raise
        # Without autoscaling permissions the endpoint still goes; say what may be left behind.
        log.warning("cannot check autoscaling of %s (%s); if it had any, deregister its scalable target", endpoint, exc)
        return []
    removed = []
    for target in targets:
        which = {**common, "ResourceId": target["ResourceId"], "ScalableDimension": target["ScalableDimension"]}
        policies = client.describe_scaling_policies(**common, ResourceId=target["ResourceId"])["ScalingPolicies"]
        for policy in policies:
            if policy["ScalableDimension"] == target["ScalableDimension"]:
                client.delete_scaling_policy(PolicyName=policy["PolicyName"], **which)
                removed.append(f"scaling policy {policy['PolicyName']}")
        client.deregister_scalable_target(**which)
        removed.append(f"scalable target {target['ResourceId']}")
    return removed


def delete_endpoint(conn: Connection, endpoint_name: str, delete_model: bool = True) -> list[str]:
    """Delete an endpoint's autoscaling, the endpoint, its endpoint config and (by default) its models.

    Returns what was deleted, in order.
    """
    client = conn.session.sagemaker_client
    deleted = []
    with _sdk_env(conn.endpoint_url), _aws_errors(f"deleting endpoint {endpoint_name}"):
        config_name = client.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
        variants = client.describe_endpoint_config(EndpointConfigName=config_name).get("ProductionVariants", [])
        names = [v["VariantName"] for v in variants if v.get("VariantName")]
        deleted += _deregister_autoscaling(conn, endpoint_name, names)  # before the endpoint, as AWS advises
        client.delete_endpoint(EndpointName=endpoint_name)
        deleted.append(f"endpoint {endpoint_name}")
        client.delete_endpoint_config(EndpointConfigName=config_name)
        deleted.append(f"endpoint config {config_name}")
        for model in sorted({v["ModelName"] for v in variants if v.get("ModelName")}) if delete_model else []:
            client.delete_model(ModelName=model)
            deleted.append(f"model {model}")
    return deleted


def invoke_endpoint(conn: Connection, endpoint_name: str, image: bytes | str | Path, topk: int = 3) -> dict[str, Any]:
    """Send one image to a deployed dogclf endpoint (InvokeEndpoint); returns its JSON answer (top-k breeds)."""
    serializer, deserializer = _client_codecs()
    client = conn.session.sagemaker_runtime_client
    with _sdk_env(conn.endpoint_url), _aws_errors(f"invoking endpoint {endpoint_name}"):
        answer = client.invoke_endpoint(
            EndpointName=endpoint_name,
            Body=serializer.serialize(image),
            ContentType=serializer.CONTENT_TYPE,
            Accept=deserializer.ACCEPT[0],
            CustomAttributes=f"topk={topk}",
        )
    content_type = answer.get("ContentType", "")
    try:
        return deserializer.deserialize(answer["Body"], content_type)
    except ValueError:
        raise SageMakerError(
            f"endpoint {endpoint_name} answered {content_type!r}, not dogclf's JSON; is a dogclf model deployed there?"
        ) from None


# ---------------------------------------------------------------------------------------------- profiling
def _rule_output(conn: Connection, job_name: str) -> tuple[str, dict[str, str]]:
    """s3://.../<job>/rule-output, where every rule of a training job writes, and the rules' statuses."""
    job = describe(conn, "training", job_name)
    output = job.get("OutputDataConfig", {}).get("S3OutputPath", "").rstrip("/")
    if not output:
        raise SageMakerError(f"training job {job_name} has no output path")
    return f"{output}/{job_name}/rule-output", rule_statuses(job)


def download_profiler_report(conn: Connection, job_name: str, dest: str | Path) -> list[Path]:
    """Download the ProfilerReport rule output of a training job (HTML, notebook, JSON) into `dest`."""
    from dogclf.s3 import download_folder, make_client

    rule_output, statuses = _rule_output(conn, job_name)
    s3 = make_client(conn.endpoint_url, conn.region)
    bucket, prefix = parse_s3_uri(rule_output)
    with _aws_errors(f"listing {rule_output}"):
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/", Delimiter="/")
    folders = sorted(p["Prefix"].rstrip("/").rsplit("/", 1)[-1] for p in listing.get("CommonPrefixes", []))
    reports = [f for f in folders if f.startswith("ProfilerReport")]
    if not reports:
        state = {k: v for k, v in statuses.items() if k.startswith("ProfilerReport")} or "unknown"
        raise SageMakerError(
            f"no ProfilerReport output under {rule_output}/ yet (rule status: {state}); it appears after the job ends"
        )
    result = download_folder(f"{rule_output}/{reports[-1]}", dest, client=s3)
    return [Path(dest) / rel for rel in result.transferred + result.skipped]


def download_rule_reports(conn: Connection, job_name: str, dest: str | Path) -> list[Path]:
    """Download the output of every rule of a training job (profiler report, Debugger rule reports) into `dest`.

    Each rule writes under `<output path>/<job>/rule-output/<rule name>/`, kept as `dest/<rule name>/`.
    """
    from dogclf.s3 import download_folder, make_client

    rule_output, statuses = _rule_output(conn, job_name)
    try:
        with _aws_errors(f"downloading {rule_output}"):
            result = download_folder(rule_output, dest, client=make_client(conn.endpoint_url, conn.region))
    except DatasetError:
        raise SageMakerError(
            f"no rule output under {rule_output}/ yet (rule statuses: {statuses or 'none reported'}); "
            "rules write it after the training job ends"
        ) from None
    return [Path(dest) / rel for rel in result.transferred + result.skipped]
