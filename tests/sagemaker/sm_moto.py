"""A real moto server on a free loopback port, and a dogclf Connection to it (dummy credentials)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

REGION = "us-west-2"
BUCKET = "dogclf-test-bucket"
ROLE = "arn:aws:iam::123456789012:role/dogclf-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_BANNER = re.compile(rb"Running on http://127\.0\.0\.1:(\d+)")


def _start_moto(home: Path, wait_s: float = 180) -> tuple[subprocess.Popen, str]:
    """One `moto.server` on a port the kernel picks (no race with parallel workers), waited for until it answers.

    The server binds port 0 and prints the port it got; it counts as started once it answers an HTTP request.
    A busy machine (parallel workers training models) gets `wait_s`; the error says what the server printed.
    """
    log_path = home / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=home,
            # Like AWS, where another account's bucket answers 403 (to ExpectedBucketOwner, or without a grant).
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "MOTO_RECORDER_FILEPATH": str(home / "recording.jsonl"),
                "MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS": "false",
            },
        )
    started, url = time.monotonic(), None
    while time.monotonic() - started < wait_s and proc.poll() is None:
        if url is None and (found := _BANNER.search(log_path.read_bytes())):
            url = f"http://127.0.0.1:{int(found.group(1))}"
        if url is not None:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=10)
                return proc, url
            except OSError:
                pass
        time.sleep(0.2)
    code = proc.poll()
    proc.kill()
    state = f"exited with {code}" if code is not None else f"no answer in {wait_s:.0f} s"
    raise RuntimeError(f"moto server did not start ({state}); its output: {log_path.read_text(errors='replace')}")


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    """`python -m moto.server -H 127.0.0.1 -p 0` for the session (its files in a temp dir); its URL."""
    proc, url = _start_moto(tmp_path_factory.mktemp("moto"))
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def aws_env(monkeypatch, moto_url):
    """Dummy credentials and region for boto3; returns the moto URL."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_url


@pytest.fixture
def conn(aws_env):
    """A dogclf Connection to moto with the test bucket created."""
    from dogclf.sagemaker import connect, make_client

    s3 = make_client(aws_env, REGION)
    try:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return connect(BUCKET, REGION, aws_env)


def capture(conn, operation: str) -> list[dict]:
    """Record the parameters of every `operation` request the session's SageMaker client sends."""
    seen: list[dict] = []
    conn.session.sagemaker_client.meta.events.register(
        f"before-parameter-build.sagemaker.{operation}", lambda params, **_: seen.append(params)
    )
    return seen


def start_recording(url: str) -> None:
    """Make the moto server record every request from now on (from any process, e.g. a subprocess)."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/recorder/reset-recording", method="POST"))
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/recorder/start-recording", method="POST"))


def recording(url: str) -> list[dict]:
    """Every request recorded since start_recording (method, url, headers, body)."""
    with urllib.request.urlopen(f"{url}/moto-api/recorder/download-recording") as answer:
        lines = answer.read().decode().splitlines()
    return [json.loads(line) for line in lines if line]


def recorded(url: str, operation: str) -> list[dict]:
    """JSON bodies of the SageMaker `operation` requests recorded since start_recording."""
    found = []
    for entry in recording(url):
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        if headers.get("x-amz-target") == f"SageMaker.{operation}":
            body = base64.b64decode(entry["body"]) if entry.get("body_encoded") else entry["body"]
            found.append(json.loads(body))
    return found


def put_model_tarball(conn, key: str) -> str:
    """A small model.tar.gz (weights + handler script) at s3://BUCKET/KEY; its URI."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("model.pth", b"weights"), ("code/inference.py", b"# handlers\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    conn.s3_client().put_object(Bucket=BUCKET, Key=key, Body=buf.getvalue())
    return f"s3://{BUCKET}/{key}"
