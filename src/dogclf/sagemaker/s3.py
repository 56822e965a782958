"""Sync an ImageFolder to and from S3: parallel multipart transfers that skip unchanged files.

A file is unchanged when the object has the same size and the same SHA-256, which uploads store as object
metadata (`x-amz-meta-sha256`); objects without it are re-sent once. Works with any boto3 endpoint
(`endpoint_url`, or AWS_ENDPOINT_URL), e.g. a local S3 emulator. A failed request is a one-line SageMakerError
naming the object; a download lands in a temporary folder first, so a failure leaves no partial files.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from dogclf.errors import ConfigError, DatasetError
from dogclf.fsutil import file_sha256
from dogclf.sagemaker.session import aws_errors, make_client

CHECKSUM_KEY = "sha256"
MiB = 1024 * 1024


class NoObjectsError(DatasetError):
    """Nothing to download: no object under the S3 prefix."""


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
    with aws_errors(f"listing s3://{bucket}/{prefix}"):
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""):
                for obj in page.get("Contents", []):
                    found[obj["Key"]] = int(obj["Size"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise
            raise DatasetError(
                f"S3 bucket {bucket!r} does not exist; create it first (aws s3 mb s3://{bucket}) or pass another"
            ) from None
    return found


def list_keys(s3_uri: str, client: Any) -> list[str]:
    """Keys of the objects under an S3 prefix, relative to it, sorted."""
    bucket, prefix = parse_s3_uri(s3_uri)
    base = f"{prefix}/" if prefix else ""
    return sorted(key[len(base) :] for key in _remote_objects(client, bucket, prefix))


def prefix_exists(s3_uri: str, client: Any) -> bool:
    """True when at least one object lies under the S3 prefix (a missing bucket is a DatasetError)."""
    from botocore.exceptions import ClientError

    bucket, prefix = parse_s3_uri(s3_uri)
    with aws_errors(f"listing {s3_uri}"):
        try:
            answer = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix.rstrip('/')}/" if prefix else "", MaxKeys=1)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise
            raise DatasetError(f"S3 bucket {bucket!r} of {s3_uri} does not exist") from None
    return bool(answer.get("KeyCount") or answer.get("Contents"))


def object_exists(s3_uri: str, *, client: Any = None, endpoint_url: str | None = None) -> bool:
    """True when s3://bucket/key is an object; False when it (or its bucket) does not exist."""
    from botocore.exceptions import ClientError

    bucket, key = parse_s3_uri(s3_uri)
    client = client or make_client(endpoint_url)
    with aws_errors(f"checking {s3_uri}"):
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
        with aws_errors(f"uploading {path} to s3://{bucket}/{key}"):
            if remote.get(key) == size and _remote_checksum(client, bucket, key) == digest:
                return key, False, 0
            meta = {"Metadata": {CHECKSUM_KEY: digest}}
            client.upload_file(str(path), bucket, key, ExtraArgs=meta, Config=transfer)
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


def _relative_keys(remote: dict[str, int], prefix: str, root: Path, s3_uri: str) -> dict[str, tuple[str, int]]:
    """Relative path -> (key, size), refusing keys that escape root or that need a path to be file and folder."""
    rels = {(k[len(prefix) + 1 :] if prefix else k): (k, size) for k, size in remote.items()}
    for rel in rels:
        _safe_target(root, rel)
    folders = {"/".join(PurePosixPath(rel).parts[:n]) for rel in rels for n in range(1, len(PurePosixPath(rel).parts))}
    clash = sorted(folders & set(rels))
    if clash:
        inner = next(r for r in sorted(rels) if r.startswith(f"{clash[0]}/"))
        raise DatasetError(
            f"cannot download {s3_uri}: object {rels[clash[0]][0]!r} and object {rels[inner][0]!r} need "
            f"{clash[0]!r} to be both a file and a folder; delete or rename one of them"
        )
    return rels


def _move_into(staged: Path, root: Path, rels: Iterable[str]) -> None:
    """Move downloaded files from the staging folder to their place under root."""
    for rel in rels:
        target = _safe_target(root, rel)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _safe_target(staged, rel).replace(target)
        except OSError as exc:
            raise DatasetError(
                f"cannot write {target}: {exc.strerror or exc}; move the file or folder in the way"
            ) from None


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
    """Download every object under s3_uri into `local`, skipping files whose size and SHA-256 match.

    Objects land in a temporary folder beside `local` and move into place once all arrived: a failure leaves
    `local` as it was.
    """
    root = Path(local)
    bucket, prefix = parse_s3_uri(s3_uri)
    client = client or make_client(endpoint_url)
    remote = {k: s for k, s in _remote_objects(client, bucket, prefix).items() if not k.endswith("/")}
    if not remote:
        raise NoObjectsError(f"no objects under {s3_uri}")
    rels = _relative_keys(remote, prefix, root, s3_uri)
    transfer = _transfer_config(workers, multipart_threshold, chunk_size)
    root.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".part", dir=root.parent))

    def one(rel: str) -> tuple[str, bool, int]:
        key, size = rels[rel]
        target = _safe_target(root, rel)
        with aws_errors(f"downloading s3://{bucket}/{key}"):
            if target.is_file() and target.stat().st_size == size:
                if _remote_checksum(client, bucket, key) == file_sha256(target):
                    return rel, False, 0
            part = _safe_target(staged, rel)
            part.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(part), Config=transfer)
        return rel, True, size

    result = SyncResult()
    try:
        for rel, got, size in _run(workers, [lambda r=r: one(r) for r in sorted(rels)]):
            (result.transferred if got else result.skipped).append(rel)
            result.bytes_transferred += size
        _move_into(staged, root, result.transferred)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return result
