"""Rule and profiler reports of a training job, from its output.tar.gz or from the services' rule output.

The rules inside the job (the default) leave their verdicts and reports in output.tar.gz; jobs run with
--sagemaker-debugger have the Debugger and Profiler services' rules write under `<job>/rule-output/` in S3.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dogclf.sagemaker.insight import REPORT_FILES, VERDICTS_FILE, JobVerdicts
from dogclf.sagemaker.s3 import NoObjectsError, _move_into, download_folder, object_exists, parse_s3_uri
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
    rule_output, statuses = _rule_output(conn, job_name)
    try:
        result = download_folder(rule_output, dest, client=conn.s3_client())
    except NoObjectsError:
        raise SageMakerError(
            f"no rule output under {rule_output}/ yet (rule statuses: {statuses or 'none reported'}); "
            "rules write it after the training job ends"
        ) from None
    return [Path(dest) / rel for rel in result.transferred + result.skipped]


@dataclass
class JobReports:
    """What `download_job_reports` fetched: the files written and the job's rule verdicts."""

    job_name: str
    files: list[Path]
    verdicts: JobVerdicts


def _output_archive(conn: Connection, job_name: str) -> tuple[str, str]:
    """(s3://.../<job>/output/output.tar.gz, the job's status): where SageMaker puts SM_OUTPUT_DATA_DIR."""
    job = describe(conn, "training", job_name)
    output = job.get("OutputDataConfig", {}).get("S3OutputPath", "").rstrip("/")
    if not output:
        raise SageMakerError(f"training job {job_name} has no output path")
    return f"{output}/{job_name}/output/output.tar.gz", job.get("TrainingJobStatus", "unknown")


def download_job_reports(conn: Connection, job_name: str, dest: str | Path) -> JobReports:
    """Fetch the job's rule verdicts and debug and profiler reports (only those files) from its output.tar.gz."""
    from dogclf.serve.package import extract_files

    uri, status = _output_archive(conn, job_name)
    s3 = conn.s3_client()
    if not object_exists(uri, client=s3):
        raise SageMakerError(f"no {uri} yet (job status {status}): SageMaker uploads it when the job ends")
    root = Path(dest)
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{root.name}.", dir=root.parent) as tmp:
        archive = Path(tmp) / "output.tar.gz"
        bucket, key = parse_s3_uri(uri)
        with aws_errors(f"downloading {uri}"):
            s3.download_file(bucket, key, str(archive))
        staged = Path(tmp) / "reports"
        found = extract_files(archive, staged, lambda p: p.as_posix() in REPORT_FILES, what=uri)
        if not (staged / VERDICTS_FILE).is_file():
            raise SageMakerError(
                f"{uri} holds no {VERDICTS_FILE}: the job ran without rules inside it (--sagemaker-debugger: "
                "see `dogclf sagemaker profiler-report`; or --no-debugger --no-profiler)"
            )
        rels = [f.relative_to(staged).as_posix() for f in found]
        _move_into(staged, root, rels)
    verdicts = JobVerdicts.from_dict(json.loads((root / VERDICTS_FILE).read_text(encoding="utf-8")))
    return JobReports(job_name, [root / rel for rel in rels], verdicts)
