"""Rule and profiler reports of a training job, downloaded from where its rules write them in S3."""

from __future__ import annotations

from pathlib import Path

from dogclf.sagemaker.s3 import parse_s3_uri
from dogclf.sagemaker.session import Connection, SageMakerError, aws_errors
from dogclf.sagemaker.waiting import describe, rule_statuses


def _rule_output(conn: Connection, job_name: str) -> tuple[str, dict[str, str]]:
    """s3://.../<job>/rule-output, where every rule of a training job writes, and the rules' statuses."""
    job = describe(conn, "training", job_name)
    output = job.get("OutputDataConfig", {}).get("S3OutputPath", "").rstrip("/")
    if not output:
        raise SageMakerError(f"training job {job_name} has no output path")
    return f"{output}/{job_name}/rule-output", rule_statuses(job)


def download_profiler_report(conn: Connection, job_name: str, dest: str | Path) -> list[Path]:
    """Download the ProfilerReport rule output of a training job (HTML, notebook, JSON) into `dest`."""
    from dogclf.sagemaker.s3 import download_folder

    rule_output, statuses = _rule_output(conn, job_name)
    s3 = conn.s3_client()
    bucket, prefix = parse_s3_uri(rule_output)
    with aws_errors(f"listing {rule_output}"):
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
    from dogclf.sagemaker.s3 import NoObjectsError, download_folder

    rule_output, statuses = _rule_output(conn, job_name)
    try:
        result = download_folder(rule_output, dest, client=conn.s3_client())
    except NoObjectsError:
        raise SageMakerError(
            f"no rule output under {rule_output}/ yet (rule statuses: {statuses or 'none reported'}); "
            "rules write it after the training job ends"
        ) from None
    return [Path(dest) / rel for rel in result.transferred + result.skipped]
