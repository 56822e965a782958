"""The default bucket is the caller's own: expected owner on every request, another account's bucket refused.

moto does not check ExpectedBucketOwner, so the header is checked on the requests moto recorded (from every
client: dogclf's and the SDK's), and the other account's bucket answers 403 as on AWS (the moto server runs
with cross-account S3 access off; its x-moto-account-id header creates a bucket as account 111111111111).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sm_moto import ROLE, aws_env, moto_url, recording, start_recording  # noqa: F401

import dogclf.sagemaker as sm
from conftest import run_cli, tiny_config

ACCOUNT = "123456789012"  # moto's account for the dummy credentials
OTHER = "111111111111"
OWNER_HEADER = "x-amz-expected-bucket-owner"


def _bucket_requests(url: str, bucket: str) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path?query, lower-case headers) of each recorded request to `bucket` (path-style addressing)."""
    found = []
    for entry in recording(url):
        parts = urlsplit(entry["url"])
        if parts.path.split("/")[1:2] == [bucket]:
            headers = {k.lower(): v for k, v in entry["headers"].items()}
            found.append((entry["method"], f"{parts.path}?{parts.query}", headers))
    return found


def _is_create_bucket(method: str, target: str, bucket: str) -> bool:
    """CreateBucket (PUT /bucket, no sub-resource): the one call whose API has no ExpectedBucketOwner."""
    return method == "PUT" and target.rstrip("?").rstrip("/") == f"/{bucket}"


def test_every_request_to_the_default_bucket_carries_the_expected_owner(aws_env, tiny_data, tmp_path):  # noqa: F811
    region = "eu-west-1"  # a default bucket of its own: other tests use us-west-2's
    bucket = f"sagemaker-{region}-{ACCOUNT}"
    start_recording(aws_env)
    conn = sm.connect(None, region, aws_env)
    assert (conn.bucket, conn.expected_owner) == (bucket, ACCOUNT)
    data = conn.s3_uri("data", "dogs")
    sm.upload_folder(tiny_data, data, client=conn.s3_client())  # dogclf's own client
    cfg = tiny_config(tiny_data)
    options = sm.EstimatorOptions(role=ROLE, instance_type="ml.m5.large")
    job = sm.submit(conn, sm.make_estimator(cfg, conn, options), data)  # the SDK uploads the source tarball
    sm.best_params(conn, job, tmp_path / "best.yaml")  # reads the tarball back
    requests = _bucket_requests(aws_env, bucket)
    created = [r for r in requests if _is_create_bucket(r[0], r[1], bucket)]
    checked = [r for r in requests if r not in created]
    assert len(created) == 1 and len(checked) > 10
    assert [(m, t) for m, t, h in checked if h.get(OWNER_HEADER) != ACCOUNT] == []
    targets = " ".join(f"{m} {t}" for m, t, _ in checked)
    for call in ("HEAD /" + bucket + "?", "publicAccessBlock", "encryption", "list-type=2", "sourcedir.tar.gz"):
        assert call in targets, call

    s3 = conn.s3_client()
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    start_recording(aws_env)
    assert sm.connect(None, region, aws_env).bucket == bucket  # existing and ours: used, not created again
    again = _bucket_requests(aws_env, bucket)
    assert [m for m, t, _ in again] == ["HEAD"] and again[0][2][OWNER_HEADER] == ACCOUNT


def test_an_explicit_bucket_gets_no_owner_header(aws_env):  # noqa: F811
    s3 = sm.make_client(aws_env, "eu-west-1")
    s3.create_bucket(Bucket="dogclf-explicit-owner", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    start_recording(aws_env)
    conn = sm.connect("dogclf-explicit-owner", "eu-west-1", aws_env)
    conn.s3_client().list_objects_v2(Bucket="dogclf-explicit-owner")
    ((method, _, headers),) = _bucket_requests(aws_env, "dogclf-explicit-owner")
    assert conn.expected_owner is None and method == "GET" and OWNER_HEADER not in headers


def _other_accounts_bucket(url: str, bucket: str, region: str) -> object:
    other = sm.make_client(url, region)
    other.meta.events.register("before-sign.s3", lambda request, **_: request.headers.add_header(
        "x-moto-account-id", OTHER))  # fmt: skip
    other.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    return other


def test_a_default_bucket_owned_by_another_account_is_refused(aws_env, tiny_data):  # noqa: F811
    region = "eu-central-1"
    bucket = f"sagemaker-{region}-{ACCOUNT}"
    other = _other_accounts_bucket(aws_env, bucket, region)
    with pytest.raises(sm.SageMakerError) as refused:
        sm.connect(None, region, aws_env)
    message = str(refused.value)
    assert "\n" not in message and bucket in message and ACCOUNT in message and "--bucket" in message
    common = ["--region", region, "--endpoint-url", aws_env]
    r = run_cli("sagemaker", "train", "--data", str(tiny_data), "--role", ROLE, "--arch", "tiny_cnn", *common,
                env={"DOGCLF_S3_BUCKET": ""})  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("dogclf: error: the default bucket " + bucket)
    assert other.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # nothing of ours landed there
