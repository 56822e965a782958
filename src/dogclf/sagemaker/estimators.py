"""Training jobs: the PyTorch estimator running dogclf's entry script, and submitting it (or a tuner).

By default a training job asks no SageMaker Debugger or Profiler service for anything (Debugger is closed to new
customers since 2026-07-30; the Profiler is discontinued on 2027-06-30): the job saves tensors with dogclf's own
hook, runs dogclf's rules live and at the end, profiles itself, and writes the verdicts and both HTML reports into
its output (dogclf.sagemaker.insight), each verdict also a `rule:<name>` metric. `sagemaker_debugger=True` sends
today's service configuration instead (hook, built-in and custom rules, ProfilerReport) for existing customers.
"""

from __future__ import annotations

import contextlib
import shutil
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from dogclf.config import RunConfig
from dogclf.debug.config import RULE_NAMES
from dogclf.errors import ConfigError
from dogclf.hyperparameters import HYPERPARAMETERS, to_hyperparameters
from dogclf.sagemaker.bundle import job_extras
from dogclf.sagemaker.debugger import BUILTIN_RULES, debugger_config, profiler_config
from dogclf.sagemaker.environment import TENSORBOARD_DIR
from dogclf.sagemaker.s3 import parse_s3_uri
from dogclf.sagemaker.sdk_line import SdkLine, sdk_line
from dogclf.sagemaker.session import (
    FRAMEWORK_VERSION,
    PY_VERSION,
    Connection,
    Options,
    SageMakerError,
    aws_errors,
    sdk_env,
)
from dogclf.sagemaker.specs import TrainingSpec, remember_spec
from dogclf.sagemaker.staging import ENTRY_SCRIPTS, stage_source_dir

Mode = Literal["train", "hpo"]
KEEP_ALIVE_MAX_S = 21600  # ResourceConfig.KeepAlivePeriodInSeconds: 0..21600 in SageMaker's API model


class EstimatorOptions(Options):
    """Job settings for make_estimator (all but role have safe defaults)."""

    role: str = Field(description="IAM role ARN the job runs as.")
    mode: Mode = Field("train", description='"train" (hooks, rules, checkpoints) or "hpo" (a lean tuning trial).')
    sagemaker_debugger: bool = Field(
        False,
        description="Use the SageMaker Debugger and Profiler services instead of the rules and reports inside the "
        "job (for existing Debugger customers: closed to new customers since 2026-07-30; Profiler discontinued "
        "2027-06-30).",
    )
    instance_type: str = Field("ml.g4dn.xlarge", description="Training instance.")
    instance_count: int = Field(
        1,
        ge=1,
        description="> 1 runs data parallel with torchrun on every instance, NCCL on GPU and gloo on CPU.",
    )
    distributed: bool | None = Field(
        None, description="torch_distributed (torchrun; gloo on CPU); default on for instance_count > 1."
    )
    keep_alive_s: int | None = Field(
        None,
        ge=0,
        le=KEEP_ALIVE_MAX_S,
        description=f"Warm pool: keep the instances this long (0-{KEEP_ALIVE_MAX_S}) after the job, so the next job "
        "with the same instance settings starts on them without provisioning; the instances are billed meanwhile.",
    )
    spot: bool = Field(False, description="Managed spot training (resumes from checkpoints).")
    max_run_s: int = Field(24 * 3600, ge=1, description="Seconds before the job is stopped.")
    max_wait_s: int | None = Field(
        None,
        description="With spot: seconds to wait for spot capacity plus the run, at least the max run "
        "(default: the max run).",
    )
    checkpoint_s3_uri: str | None = Field(
        None,
        description="Default: s3://BUCKET/PREFIX/checkpoints/<run name>, so a resubmission with the same "
        "--set name=... resumes.",
    )
    debugger: bool = Field(
        True, description="Tensors saved every cfg.debug.save_interval steps, the collections of cfg.debug, and rules."
    )
    stop_on_rules: tuple[str, ...] = Field(
        (),
        description="End the job when one of these in-job rules fires (the job fails, the rule named as its "
        "failure reason); e.g. LossNotDecreasing,ExplodingTensor.",
    )
    builtin_rules: tuple[str, ...] = Field(
        BUILTIN_RULES, description="With --sagemaker-debugger: built-in Debugger rules (rule_configs names)."
    )
    custom_rules: tuple[str, ...] | None = Field(
        None,
        description="With --sagemaker-debugger: dogclf.debug.rules classes run as custom rules (default: those not "
        "run as built-ins).",
    )
    rule_image_uri: str | None = Field(None, description="With --sagemaker-debugger: custom-rule evaluator image.")
    rules_file: Path | None = Field(None, description="Default: the file of dogclf.debug.rules.")
    rule_instance_type: str = "ml.t3.medium"
    profiler: bool = Field(True, description="Profiling (in the job, or the service's).")
    system_monitor_interval_ms: int = Field(
        500, ge=100, description="With --sagemaker-debugger: system monitor interval in milliseconds."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Job tags.")
    framework_version: str = FRAMEWORK_VERSION
    py_version: str = PY_VERSION
    entry_dir: Path | None = None
    base_job_name: str = "dogclf"


def estimator_hyperparameters(cfg: RunConfig) -> dict[str, str]:
    """Every hyperparameter of the table, as the strings SageMaker passes to the script (None as 'null')."""
    values = cfg.model_dump(mode="json")
    dotted = {}
    for field_name in HYPERPARAMETERS.values():
        node: Any = values
        for part in field_name.split("."):
            node = node[part]
        dotted[field_name] = node
    return to_hyperparameters(dotted)


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


def _monitoring(conn: Connection, run: RunConfig, o: EstimatorOptions) -> dict[str, Any]:
    """The estimator's Debugger hook, rules and profiler arguments: none but with sagemaker_debugger (training)."""
    train = o.mode == "train" and o.sagemaker_debugger
    hook, rules = debugger_config(conn, run.debug, o) if o.debugger and train else (False, [])
    profiler, profiler_rules = profiler_config(o.system_monitor_interval_ms) if o.profiler and train else (None, [])
    return {
        "debugger_hook_config": hook,
        "rules": rules + profiler_rules or None,
        "profiler_config": profiler,
        "disable_profiler": profiler is None,
    }


def training_image(conn: Connection, o: EstimatorOptions) -> str:
    """The SageMaker PyTorch training image for the instance type (CPU or GPU), as the SDK itself would pick it."""
    try:
        return sdk_line().image_uri(conn.region, o.framework_version, o.py_version, o.instance_type, "training")
    except ValueError as exc:
        raise ConfigError(f"no SageMaker PyTorch training image for {o.instance_type}: {exc}") from None


def training_spec(
    conn: Connection, cfg: RunConfig, run: RunConfig, o: EstimatorOptions, source_dir: Path
) -> TrainingSpec:
    """The job as dogclf resolves it: image, instances, spot, warm pool, checkpoints, TensorBoard, metrics, tags.

    Distribution is torch_distributed (torchrun on every instance), on CPU instances as on GPU: the training
    image is always named, and dogclf's trainer uses gloo on CPU.
    """
    from dogclf.sagemaker.names import unique_name

    # Jobs of one run name share checkpoints (a resubmission resumes); tuning trials never do.
    run_name = cfg.name or unique_name(o.base_job_name)
    tensorboard = o.mode == "train" and cfg.tracking.tensorboard
    return TrainingSpec(
        role=o.role,
        image=training_image(conn, o),
        framework_version=o.framework_version,
        py_version=o.py_version,
        instance_type=o.instance_type,
        instance_count=o.instance_count,
        entry_script=ENTRY_SCRIPTS[o.mode],
        source_dir=source_dir,
        hyperparameters=estimator_hyperparameters(run),
        metric_definitions=_metric_definitions(run, o),
        output_path=conn.s3_uri("output"),
        code_location=conn.s3_uri("code"),
        base_job_name=o.base_job_name,
        checkpoint_s3_uri=None if o.mode == "hpo" else o.checkpoint_s3_uri or conn.s3_uri("checkpoints", run_name),
        tensorboard_s3_uri=conn.s3_uri("tensorboard") + "/" if tensorboard else None,
        tensorboard_local_path=str(TENSORBOARD_DIR) if tensorboard else None,
        spot=o.spot,
        max_run_s=o.max_run_s,
        max_wait_s=_max_wait(o),
        keep_alive_s=o.keep_alive_s,
        distributed=o.instance_count > 1 if o.distributed is None else o.distributed,
        tags={"dogclf:mode": o.mode, **o.tags},
        service_monitoring=_monitoring(conn, run, o) if o.sagemaker_debugger else {},
    )


def job_config(cfg: RunConfig, o: EstimatorOptions) -> RunConfig:
    """The config a training job runs: `cfg` with the job's debug hook, live rules and profiler switched on."""
    run = cfg.model_copy(deep=True)
    unknown = sorted(set(o.stop_on_rules) - set(RULE_NAMES))
    if unknown:
        raise ConfigError(f"--stop-on-rule: unknown rule(s) {unknown}; valid: {', '.join(RULE_NAMES)}")
    if o.stop_on_rules and (o.sagemaker_debugger or not o.debugger or o.mode != "train"):
        raise ConfigError("--stop-on-rule needs the rules inside the job: drop --sagemaker-debugger / --no-debugger")
    if o.mode != "train":
        return run
    if o.debugger:
        run.debug.enabled = True  # with the service: saved through SageMaker's debughookconfig.json
    if not o.sagemaker_debugger:
        run.debug.live_rules = o.debugger
        run.debug.live_stop_on = list(o.stop_on_rules)
        run.profile.enabled = run.profile.enabled or o.profiler
    return run


def _metric_definitions(run: RunConfig, o: EstimatorOptions) -> list[dict[str, str]]:
    """The training metrics, and with the rules inside the job one `rule:<name>` metric per rule."""
    from dogclf.sagemaker.insight import rule_names
    from dogclf.training.metrics import metric_definitions, rule_metric_definitions

    in_job = o.mode == "train" and not o.sagemaker_debugger and (run.debug.enabled or run.profile.enabled)
    return metric_definitions() + (rule_metric_definitions(rule_names()) if in_job else [])


def make_estimator(cfg: RunConfig, conn: Connection, options: EstimatorOptions) -> Any:
    """The installed SDK line's training object running dogclf/entrypoints/{train,hpo}.py (see the docstring)."""
    o = options
    line = sdk_line()
    if o.sagemaker_debugger and line.major >= 3:
        raise ConfigError(
            "--sagemaker-debugger needs SageMaker SDK 2.x (3.x has no Debugger or Profiler options); drop it: "
            "the job runs dogclf's rules and profiler inside itself"
        )
    run = job_config(cfg, o)
    with sdk_env(conn.endpoint_url):
        source_dir = stage_source_dir([ENTRY_SCRIPTS[o.mode]], run, o.entry_dir, job_extras(run, o.mode))
        try:
            spec = training_spec(conn, cfg, run, o, source_dir)
            trainer = line.trainer(spec, conn.session)
        except BaseException:
            shutil.rmtree(source_dir, ignore_errors=True)
            raise
    remember_spec(trainer, spec)
    weakref.finalize(trainer, shutil.rmtree, str(source_dir), True)
    return trainer


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
    from dogclf.sagemaker.names import unique_name
    from dogclf.sagemaker.tuners import Tuner

    line = sdk_line()
    with sdk_env(conn.endpoint_url), aws_errors("submitting the job"):
        if isinstance(job, Tuner):
            name = job_name or unique_name(job.spec.base_name, "tuning")
            with job_outcome(line, f"tuning job {name}"):
                return line.tune(job.sdk, _channels(inputs), name, wait)
        name = job_name or unique_name(job.base_job_name)
        with job_outcome(line, f"training job {name}"):
            return line.train(job, _channels(inputs), name, wait)


@contextlib.contextmanager
def job_outcome(line: SdkLine, job: str) -> Iterator[None]:
    """A waited job that ended Failed or Stopped (the SDK line's own exception) as one line naming the job."""
    try:
        yield
    except line.job_failures() as exc:
        raise SageMakerError(f"{job} did not complete: {' '.join(str(exc).split())}") from None
