"""dogclf.s3 against a real moto S3 server: multipart upload, skip unchanged, byte-for-byte download."""

from __future__ import annotations

import os

import pytest
from sm_moto import BUCKET, REGION, aws_env, moto_url  # noqa: F401

from dogclf.errors import ConfigError, DatasetError
from dogclf.s3 import MiB, download_folder, make_client, parse_s3_uri, upload_folder


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
