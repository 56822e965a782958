"""A real moto server on a free loopback port, and a dogclf Connection to it (dummy credentials)."""

from __future__ import annotations

import base64
import io
import json
import os
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


def _start_moto(home: Path) -> tuple[subprocess.Popen, str] | None:
    """One `moto.server` on a free port, waited for (60 s); None if it exited first (e.g. the port was taken)."""
    port = _free_port()
    log = (home / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=home,
        # Like AWS, where another account's bucket answers 403 (to ExpectedBucketOwner, or without a grant).
        env={
            **os.environ,
            "MOTO_RECORDER_FILEPATH": str(home / "recording.jsonl"),
            "MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS": "false",
        },
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                return None
            if time.monotonic() > deadline:
                proc.kill()
                return None
            time.sleep(0.2)


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    """`python -m moto.server -H 127.0.0.1 -p PORT` for the session (its files in a temp dir); its URL.

    The free port is found before the server binds it, so another process (a parallel test worker) may take it
    in between: a server that exits at once is started again on another port, three tries in all.
    """
    home = tmp_path_factory.mktemp("moto")
    for _ in range(3):
        started = _start_moto(home)
        if started is not None:
            break
    else:
        logs = "".join(p.read_text(errors="replace")[-400:] for p in sorted(home.glob("server-*.log")))
        raise RuntimeError(f"moto server did not start; its output: {logs}")
    proc, url = started
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
