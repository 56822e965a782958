"""dogclf.sagemaker.s3 against a real moto S3 server: multipart upload, skip unchanged, byte-for-byte download."""

from __future__ import annotations

import os

import pytest
from sm_moto import BUCKET, REGION, aws_env, moto_url  # noqa: F401

from dogclf.errors import ConfigError, DatasetError
from dogclf.sagemaker import SageMakerError
from dogclf.sagemaker.s3 import MiB, download_folder, make_client, parse_s3_uri, upload_folder


@pytest.fixture
def s3(aws_env):  # noqa: F811
    client = make_client(aws_env, REGION)
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_upload_sync_download_round_trip(s3, tiny_data, tmp_path):
    local = tmp_path / "dogs"
    local.mkdir()
    for rel, data in _tree(tiny_data).items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
    (local / "big.bin").write_bytes(os.urandom(6 * MiB + 123))  # above the threshold: multipart
    (local / ".hidden").write_text("not uploaded")
    uri = f"s3://{BUCKET}/sync-test/dogs"
    kw = {"client": s3, "multipart_threshold": 5 * MiB, "chunk_size": 5 * MiB, "workers": 4}

    first = upload_folder(local, uri, **kw)
    expected = {k for k in _tree(local) if not k.startswith(".")}
    assert sorted(first.transferred) == sorted(f"sync-test/dogs/{k}" for k in expected)
    assert first.skipped == []
    assert s3.head_object(Bucket=BUCKET, Key="sync-test/dogs/big.bin")["ETag"].strip('"').endswith("-2")

    second = upload_folder(local, uri, **kw)
    assert second.transferred == [] and len(second.skipped) == len(expected)

    changed = sorted(local.rglob("*.jpg"))[0]
    changed.write_bytes(changed.read_bytes()[:-1] + b"\x00")  # same size, new content: checksum decides
    third = upload_folder(local, uri, **kw)
    assert third.transferred == [f"sync-test/dogs/{changed.relative_to(local).as_posix()}"]

    out = tmp_path / "back"
    got = download_folder(uri, out, **kw)
    assert len(got.transferred) == len(expected)
    assert _tree(out) == {k: v for k, v in _tree(local).items() if k in expected}
    again = download_folder(uri, out, **kw)
    assert again.transferred == [] and len(again.skipped) == len(expected)


def test_bad_uris_and_traversal_are_refused(s3, tmp_path):
    with pytest.raises(ConfigError, match="not an S3 URI"):
        parse_s3_uri("/local/path")
    s3.put_object(Bucket=BUCKET, Key="evil/../../escape.txt", Body=b"x")
    with pytest.raises(DatasetError, match="outside"):
        download_folder(f"s3://{BUCKET}/evil", tmp_path / "safe", client=s3)
    assert not (tmp_path / "escape.txt").exists()
    with pytest.raises(DatasetError, match="no objects"):
        download_folder(f"s3://{BUCKET}/nothing-here", tmp_path / "x", client=s3)


def _fail_on(client, operation: str, key: str) -> None:
    """Make `operation` on `key` fail as S3 answers a forbidden object (AccessDenied), the rest untouched."""
    from botocore.exceptions import ClientError

    def deny(params, **_):
        if params.get("Key") == key:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, operation)

    client.meta.events.register(f"before-parameter-build.s3.{operation}", deny)


def _one_line_error(exc_info, *parts: str) -> None:
    message = str(exc_info.value)
    assert "\n" not in message and all(p in message for p in parts), message


def test_a_key_that_is_also_a_folder_is_one_line_error_and_writes_nothing(s3, tmp_path):
    for key in ("clash/q/a", "clash/q/a/b", "clash/z.txt"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    with pytest.raises(DatasetError) as exc_info:
        download_folder(f"s3://{BUCKET}/clash", tmp_path / "out", client=s3)
    _one_line_error(exc_info, "'clash/q/a'", "'clash/q/a/b'", "both a file and a folder")
    assert list(tmp_path.iterdir()) == []
    s3.put_object(Bucket=BUCKET, Key="fine/q/a.txt", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="fine/q/a/b", Body=b"y")  # a.txt next to a/: no clash
    assert sorted(download_folder(f"s3://{BUCKET}/fine", tmp_path / "fine", client=s3).transferred) == [
        "q/a.txt",
        "q/a/b",
    ]


def test_a_failed_download_names_the_object_and_leaves_no_partial_files(s3, tmp_path):
    for name in ("a.txt", "b.txt", "c.txt"):
        s3.put_object(Bucket=BUCKET, Key=f"partial/{name}", Body=name.encode())
    client = make_client(s3.meta.endpoint_url, REGION)
    _fail_on(client, "HeadObject", "partial/c.txt")
    _fail_on(client, "GetObject", "partial/c.txt")
    dest = tmp_path / "dest"
    with pytest.raises(SageMakerError) as exc_info:
        download_folder(f"s3://{BUCKET}/partial", dest, client=client, workers=1)
    _one_line_error(exc_info, f"s3://{BUCKET}/partial/c.txt", "AccessDenied")
    assert list(tmp_path.iterdir()) == []  # neither a.txt nor b.txt, nor a staging folder


def test_a_failed_upload_names_the_object(s3, tmp_path):
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "one.txt").write_text("1")
    client = make_client(s3.meta.endpoint_url, REGION)
    _fail_on(client, "PutObject", "up-test/one.txt")
    with pytest.raises(SageMakerError) as exc_info:
        upload_folder(tmp_path / "up", f"s3://{BUCKET}/up-test", client=client)
    _one_line_error(exc_info, "one.txt", f"s3://{BUCKET}/up-test/one.txt", "AccessDenied")
    assert upload_folder(tmp_path / "up", f"s3://{BUCKET}/up-test", client=s3).transferred == ["up-test/one.txt"]
