"""Checks the sagemaker commands make before creating anything: flags tune would drop, missing data, bad sizes."""

from __future__ import annotations

import shutil

import pytest
from sm_moto import BUCKET, REGION, ROLE, aws_env, conn, moto_url  # noqa: F401

from conftest import run_cli


def _common(url: str) -> list[str]:
    return ["--bucket", BUCKET, "--region", REGION, "--endpoint-url", url]


def _one_line_error(r) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    return r.stderr.strip().splitlines()[-1]


def _tunes(conn) -> int:  # noqa: F811
    return len(conn.session.sagemaker_client.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"])


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--debug"], "--debug"),
        (["--profile", "--checkpoint-s3-uri", f"s3://{BUCKET}/ck"], "--checkpoint-s3-uri, --profile"),
    ],
)
def test_tune_refuses_flags_its_trials_would_drop(aws_env, conn, flags, named):  # noqa: F811
    s3 = conn.session.boto_session.client("s3", endpoint_url=aws_env)
    s3.put_object(Bucket=BUCKET, Key="data/dogs/train/a/1.jpg", Body=b"x")
    before = _tunes(conn)
    r = run_cli("sagemaker", "tune", "--data", f"s3://{BUCKET}/data/dogs", "--role", ROLE, *flags, *_common(aws_env))
    assert f"dogclf: error: sagemaker tune: {named} would be ignored" in _one_line_error(r)
    assert _tunes(conn) == before


def test_s3_data_must_hold_objects(aws_env, conn):  # noqa: F811
    missing = f"s3://{BUCKET}/no/such/prefix"
    r = run_cli("sagemaker", "train", "--data", missing, "--role", ROLE, "--no-debugger", *_common(aws_env))
    expected = f"dogclf: error: --data {missing}: no objects under this S3 prefix (upload the dataset first)"
    assert _one_line_error(r) == expected


def test_symlinked_data_is_uploaded_under_the_links_name(aws_env, conn, tiny_data, tmp_path):  # noqa: F811
    target = tmp_path / "some-other-name"
    shutil.copytree(tiny_data, target)
    link = tmp_path / "dogImages"
    link.symlink_to(target, target_is_directory=True)
    r = run_cli("sagemaker", "train", "--data", str(link), "--role", ROLE, "--no-debugger", "--no-profiler",
                *_common(aws_env))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"data: s3://{BUCKET}/dogclf/data/dogImages (" in r.stdout
    # dogclf's own lines only: no SDK or botocore INFO chatter (endpoint resolution, credentials, SDK config)
    assert [line.split(": ")[0] for line in r.stdout.splitlines()] == ["data", "training job"], r.stdout
    for noise in ("Found endpoint for", "Found credentials", "sagemaker.config INFO"):
        assert noise not in r.stderr, r.stderr


def test_serverless_memory_is_checked_before_anything_is_created(aws_env, conn):  # noqa: F811
    client = conn.session.sagemaker_client
    before = client.list_models()["Models"]
    r = run_cli("sagemaker", "deploy", f"s3://{BUCKET}/m/model.tar.gz", "--role", ROLE, "--serverless-memory", "3000",
                *_common(aws_env))  # fmt: skip
    assert "serverless_memory_mb" in _one_line_error(r) and "multiple of 1024" in r.stderr
    assert client.list_models()["Models"] == before


@pytest.mark.parametrize(("action", "defaults"), [("train", ["ml.g4dn.xlarge", "86400"]), ("deploy", ["ml.m5.large"])])
def test_help_shows_the_defaults(action, defaults):
    out = " ".join(run_cli("sagemaker", action, "--help").stdout.split())
    for value in defaults:
        assert f"default {value}" in out, value
