"""Reading and waiting on jobs and endpoints: Describe*, polling to a final state, rule statuses, outputs."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from dogclf.errors import ConfigError
from dogclf.sagemaker.session import Connection, SageMakerError, aws_errors, sdk_env

Kind = Literal["training", "tuning", "endpoint", "transform"]
# kind -> (describe call, name parameter, status field, final states)
_WAITABLE = {
    "training": ("describe_training_job", "TrainingJobName", "TrainingJobStatus", ("Completed", "Failed", "Stopped")),
    "tuning": (
        "describe_hyper_parameter_tuning_job",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
        ("Completed", "Failed", "Stopped"),
    ),
    "transform": (
        "describe_transform_job",
        "TransformJobName",
        "TransformJobStatus",
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


def _kind(kind: str) -> Kind:
    """`kind` checked against Kind; the error lists the valid ones."""
    if kind not in get_args(Kind):
        raise ConfigError(f"kind must be one of {', '.join(get_args(Kind))}, got {kind!r}")
    return kind  # type: ignore[return-value]


def describe(conn: Connection, kind: Kind, name: str) -> dict[str, Any]:
    """The Describe* answer for a training, tuning or transform job, or an endpoint."""
    call, param, _, _ = _WAITABLE[_kind(kind)]
    client = conn.session.sagemaker_client
    with sdk_env(conn.endpoint_url), aws_errors(f"reading {kind} {name}"):
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
    kind: Kind,
    name: str,
    poll_s: float = 30.0,
    timeout_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Poll a training, tuning or transform job or an endpoint until it is final; returns its description.

    `progress` is called with each new status. A final state may be a failure: check the returned status.
    """
    _, _, status_field, final = _WAITABLE[_kind(kind)]
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
    from dogclf.sagemaker.s3 import object_exists

    desc = describe(conn, "training", job_name)
    model_data = (desc.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    exists = False
    if model_data:
        with aws_errors(f"checking {model_data}"):
            exists = object_exists(model_data, client=conn.s3_client())
    return TrainingOutputs(
        job_name=job_name,
        status=desc.get("TrainingJobStatus", "Unknown"),
        failure_reason=desc.get("FailureReason"),
        model_data=model_data,
        model_data_exists=exists,
        rules=rule_statuses(desc),
    )
