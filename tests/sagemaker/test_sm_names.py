"""Job names: every job kind gets a unique name by default, and --job-name is checked before anything is sent."""

from __future__ import annotations

import pytest
from sm_moto import BUCKET, REGION, ROLE, aws_env, conn, moto_url  # noqa: F401

from conftest import run_cli
from dogclf.errors import ConfigError
from dogclf.sagemaker.names import MAX_LENGTH, NAME_PATTERN, checked_name, job_name, unique_name


@pytest.mark.parametrize("kind", sorted(MAX_LENGTH))
def test_default_names_are_unique_and_valid(kind):
    names = {unique_name("dogclf-a-rather-long-base-name-for-jobs", kind) for _ in range(50)}
    assert len(names) == 50
    assert all(len(n) <= MAX_LENGTH[kind] and NAME_PATTERN.match(n) for n in names), names


def test_given_names_are_checked():
    assert job_name("my-tune-1", "dogclf-tune", "tuning") == "my-tune-1"
    for bad in ("bad_name", "-lead", "trail-", "x" * 33):
        with pytest.raises(ConfigError, match="a tuning job name has 1-32 letters"):
            checked_name(bad, "tuning")
    assert checked_name("x" * 63) == "x" * 63


def _tune(aws_env, *extra):  # noqa: F811
    common = ["--bucket", BUCKET, "--region", REGION, "--endpoint-url", aws_env]
    return run_cli("sagemaker", "tune", "--data", f"s3://{BUCKET}/data/dogs", "--role", ROLE, "--arch", "tiny_cnn",
                   "--no-debugger", "--no-profiler", "--max-trials", "2", *common, *extra)  # fmt: skip


def test_two_tunes_in_one_minute_get_two_names_and_job_name_is_used(aws_env, conn):  # noqa: F811
    s3 = conn.session.boto_session.client("s3", endpoint_url=aws_env)
    s3.put_object(Bucket=BUCKET, Key="data/dogs/train/a/1.jpg", Body=b"x")
    names = []
    for extra in ([], [], ["--job-name", "my-tune-1"]):
        r = _tune(aws_env, *extra)
        assert r.returncode == 0, r.stderr
        names.append(r.stdout.strip().splitlines()[-1].removeprefix("tuning job: "))
    assert names[0] != names[1] and names[2] == "my-tune-1"
    client = conn.session.sagemaker_client
    for name in names:
        desc = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        assert desc["HyperParameterTuningJobName"] == name
    r = _tune(aws_env, "--job-name", "my_tune")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("dogclf: error: --job-name 'my_tune'")
