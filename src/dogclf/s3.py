"""Sync an ImageFolder to and from S3: parallel multipart transfers that skip unchanged files.

A file is unchanged when the object has the same size and the same SHA-256, which uploads store as object
metadata (`x-amz-meta-sha256`); objects without it are re-sent once. Works with any boto3 endpoint
(`endpoint_url`, or AWS_ENDPOINT_URL), e.g. a local S3 emulator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from dogclf.errors import ConfigError, DatasetError

CHECKSUM_KEY = "sha256"
MiB = 1024 * 1024


@dataclass
class SyncResult:
    """What a sync moved: object keys (upload) or relative paths (download)."""

    transferred: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes_transferred: int = 0


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' -> ('bucket', 'some/prefix'); anything else is an error naming it."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ConfigError(f"not an S3 URI: {uri!r} (expected s3://BUCKET/PREFIX)")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key.strip("/")


def make_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A boto3 S3 client (adaptive retries) for AWS or any S3-compatible endpoint."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 8, "mode": "adaptive"}, max_pool_connections=32)
    return boto3.session.Session(region_name=region).client("s3", endpoint_url=endpoint_url, config=config)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def _transfer_config(workers: int, multipart_threshold: int, chunk_size: int) -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=multipart_threshold,
        multipart_chunksize=chunk_size,
        max_concurrency=max(1, workers // 2),
        use_threads=True,
    )


def _local_files(root: Path) -> list[Path]:
    """Regular files under root, hidden files and folders excluded, in sorted order."""
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            files.append(path)
    return files


def _remote_objects(client: Any, bucket: str, prefix: str) -> dict[str, int]:
    """Size of every object under prefix/, by key."""
    from botocore.exceptions import ClientError

    paginator = client.get_paginator("list_objects_v2")
    found = {}
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""):
            for obj in page.get("Contents", []):
                found[obj["Key"]] = int(obj["Size"])
    except ClientError as exc:
        err = exc.response.get("Error", {})
        if err.get("Code") == "NoSuchBucket":
            raise DatasetError(
                f"S3 bucket {bucket!r} does not exist; create it first (aws s3 mb s3://{bucket}) or pass another"
            ) from None
        raise DatasetError(f"cannot list s3://{bucket}/{prefix}: {err.get('Code')}: {err.get('Message')}") from None
    return found


def object_exists(s3_uri: str, *, client: Any = None, endpoint_url: str | None = None) -> bool:
    """True when s3://bucket/key is an object; False when it (or its bucket) does not exist."""
    from botocore.exceptions import ClientError

    bucket, key = parse_s3_uri(s3_uri)
    client = client or make_client(endpoint_url)
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


def _remote_checksum(client: Any, bucket: str, key: str) -> str | None:
    return client.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get(CHECKSUM_KEY)


def _run(workers: int, jobs: Iterable[Callable[[], Any]]) -> list[Any]:
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return [f.result() for f in [pool.submit(job) for job in jobs]]


def upload_folder(
    local: str | Path,
    s3_uri: str,
    *,
    client: Any = None,
    endpoint_url: str | None = None,
    workers: int = 16,
    multipart_threshold: int = 16 * MiB,
    chunk_size: int = 16 * MiB,
) -> SyncResult:
    """Upload every file under `local` to s3_uri/<relative path>, skipping unchanged objects."""
    root = Path(local)
    if not root.is_dir():
        raise DatasetError(f"folder to upload not found: {root}")
    bucket, prefix = parse_s3_uri(s3_uri)
    client = client or make_client(endpoint_url)
    remote = _remote_objects(client, bucket, prefix)
    transfer = _transfer_config(workers, multipart_threshold, chunk_size)
    result = SyncResult()

    def one(path: Path) -> tuple[str, bool, int]:
        rel = path.relative_to(root).as_posix()
        key = f"{prefix}/{rel}" if prefix else rel
        size, digest = path.stat().st_size, file_sha256(path)
        if remote.get(key) == size and _remote_checksum(client, bucket, key) == digest:
            return key, False, 0
        client.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {CHECKSUM_KEY: digest}}, Config=transfer)
        return key, True, size

    for key, sent, size in _run(workers, [lambda p=p: one(p) for p in _local_files(root)]):
        (result.transferred if sent else result.skipped).append(key)
        result.bytes_transferred += size
    return result


def _safe_target(root: Path, rel: str) -> Path:
    """root/rel, refusing keys that would escape root (absolute, '..', empty parts)."""
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or any(p in ("..", "") for p in parts):
        raise DatasetError(f"refusing to download object {rel!r}: it would land outside {root}")
    return root.joinpath(*parts)


def download_folder(
    s3_uri: str,
    local: str | Path,
    *,
    client: Any = None,
    endpoint_url: str | None = None,
    workers: int = 16,
    multipart_threshold: int = 16 * MiB,
    chunk_size: int = 16 * MiB,
) -> SyncResult:
    """Download every object under s3_uri into `local`, skipping files whose size and SHA-256 match."""
    root = Path(local)
    bucket, prefix = parse_s3_uri(s3_uri)
    client = client or make_client(endpoint_url)
    remote = {k: s for k, s in _remote_objects(client, bucket, prefix).items() if not k.endswith("/")}
    if not remote:
        raise DatasetError(f"no objects under {s3_uri}")
    transfer = _transfer_config(workers, multipart_threshold, chunk_size)
    result = SyncResult()

    def one(key: str, size: int) -> tuple[str, bool, int]:
        rel = key[len(prefix) + 1 :] if prefix else key
        target = _safe_target(root, rel)
        if target.is_file() and target.stat().st_size == size:
            if _remote_checksum(client, bucket, key) == file_sha256(target):
                return rel, False, 0
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        client.download_file(bucket, key, str(tmp), Config=transfer)
        tmp.replace(target)
        return rel, True, size

    for rel, got, size in _run(workers, [lambda k=k, s=s: one(k, s) for k, s in sorted(remote.items())]):
        (result.transferred if got else result.skipped).append(rel)
        result.bytes_transferred += size
    return result
