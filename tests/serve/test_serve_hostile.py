"""Hostile clients against a real `dogclf serve`: every attack gets a 4xx or a closed connection, never a 5xx."""

import base64
import io
import json
import random
import socket
import time

import numpy as np
import pytest
import requests
from numpy.lib import format as npy_format
from PIL import Image

from dogclf.serve.api import ClassifierAPI, DeadlineExceeded
from dogclf.serve.local import LocalEndpoint
from dogclf.serve.package import package_model
from dogclf.serve.server import METHODS

HEAD_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 24
RSS_GROWTH_LIMIT_KB = 150 * 1024


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    """The server from a model.tar.gz, with its own TMPDIR and short connection timeouts."""
    tmp = tmp_path_factory.mktemp("hostile")
    tarball = package_model(tiny_run, tmp / "model.tar.gz")
    server_tmp = tmp / "server-tmp"
    server_tmp.mkdir()
    args = ("--precision", "fp32", "--threads", "1", "--header-timeout-s", str(HEAD_TIMEOUT_S),
            "--keep-alive-s", "1", "--max-connections", str(MAX_CONNECTIONS))  # fmt: skip
    with LocalEndpoint(tarball, *args, env={"TMPDIR": str(server_tmp)}) as ep:
        ep.tmp = server_tmp
        yield ep


def _du(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith("VmRSS:")))


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def _npy_header(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    out = io.BytesIO()
    npy_format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue()


def _pickled_npy() -> bytes:
    out = io.BytesIO()
    np.save(out, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    return out.getvalue()


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n0 0 moveto 100 100 lineto stroke\nshowpage\n"


def _cases() -> list[tuple[str, bytes, str, int, str]]:
    """(name, body, content type, status, words of the message)."""
    big_png = base64.b64encode(_png(5000, 5000)).decode()
    return [
        ("eps as jpeg", EPS, "image/jpeg", 415, "Content-Type 'image/jpeg': "),
        ("eps as x-image", EPS, "application/x-image", 415, "EPS images are not accepted"),
        ("png as jpeg", _png(8, 8), "image/jpeg", 415, "PNG images are not accepted (allowed: JPEG)"),
        ("npy bomb", _npy_header((1, 100_000, 100_000, 3)), "application/x-npy", 400, "declares"),
        ("npy float", _npy_header((2, 2, 3), "<f8") + b"\0" * 96, "application/x-npy", 400, "must be uint8"),
        ("pickled npy", _pickled_npy(), "application/x-npy", 400, "must be uint8"),
        ("deep json", b"[" * 200_000, "application/json", 400, "nested too deeply"),
        ("pixel budget", json.dumps({"images": [big_png] * 32}).encode(), "application/json", 413, "budget"),
        ("oversized", b"\0" * (6 * 1024 * 1024 + 1), "image/jpeg", 413, "exceeds the limit"),
        ("wrong type", b"x", "text/csv", 415, "unsupported Content-Type"),
        ("bad base64", b'{"images": ["%%%"]}', "application/json", 400, "not valid base64"),
        ("empty", b"", "image/png", 400, "empty request body"),
    ]


def test_hostile_matrix_gets_4xx_or_closed_and_the_server_stays_healthy(server):
    pid = server.proc.pid
    tmp_before, rss_before = _du(server.tmp), _rss_kb(pid)
    url = f"{server.url}/invocations"
    for name, body, content_type, status, words in _cases():
        r = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)
        assert r.status_code == status, (name, r.text)
        assert r.json()["error"]["status"] == status and words in r.json()["error"]["message"], (name, r.text)
    r = requests.post(
        url, data=_png(8, 8), headers={"Content-Type": "image/png", "Accept": "application/json; topk=1000"}
    )
    assert r.status_code == 400 and "topk must be between 1 and 100" in r.text
    _random_methods(server)
    _disconnect_mid_body(server)
    _idle_and_slow_connections_are_closed(server)
    _connection_cap(server)

    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 200
    good = requests.post(url, data=_png(40, 40), headers={"Content-Type": "image/png"}, timeout=30)
    assert good.status_code == 200, good.text
    assert _rss_kb(pid) - rss_before < RSS_GROWTH_LIMIT_KB
    assert _du(server.tmp) <= tmp_before
    time.sleep(0.3)  # the last access-log lines
    log = server.log_text()
    assert "Traceback" not in log and "invocation failed" not in log and "ERROR" not in log
    assert "client disconnected before sending the whole body" in log  # the mid-body case did happen
    assert "sent no complete request head" in log
    statuses = [json.loads(line)["status"] for line in log.splitlines() if line.startswith('{"event": "request"')]
    assert statuses and all(s < 500 or s == 503 for s in statuses), sorted(set(statuses))


def _random_methods(server) -> None:
    rng = random.Random(0)
    before = requests.get(f"{server.url}/metrics", timeout=5).text
    for _ in range(25):
        method = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))
        r = requests.request(method, f"{server.url}/ping", timeout=5)
        assert 400 <= r.status_code < 500
    after = requests.get(f"{server.url}/metrics", timeout=5).text
    series = [line for line in after.splitlines() if line.startswith("dogclf_requests_total{")]
    methods = {line.split('method="')[1].split('"')[0] for line in series}
    assert methods <= METHODS | {"other"} and "other" in methods
    assert len(series) - before.count("dogclf_requests_total{") <= 2  # other/405 and GET /metrics, not 25


def _disconnect_mid_body(server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        head = "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
        sock.sendall(head.encode() + b"\0" * 1000)
        time.sleep(0.2)
    time.sleep(0.3)


def _connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=HEAD_TIMEOUT_S + 3)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        while sock.recv(4096):  # the rest of an earlier response, if any
            pass
        return True
    except (ConnectionResetError, TimeoutError):
        return False


def _idle_and_slow_connections_are_closed(server) -> None:
    idle = [_connect(server) for _ in range(10)]
    slow = [_connect(server) for _ in range(5)]
    kept = _connect(server)
    kept.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200 OK" in kept.recv(4096)
    start = time.monotonic()
    for line in (b"GET /ping HTTP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n"):
        for sock in slow:
            try:
                sock.sendall(line)
            except OSError:
                pass
        time.sleep(HEAD_TIMEOUT_S / 3)
    assert all(_closed_by_server(s) for s in slow)  # trickled a header line at a time: closed
    assert all(_closed_by_server(s) for s in idle)  # never sent a byte: closed
    assert _closed_by_server(kept)  # idle keep-alive after a response: closed
    assert time.monotonic() - start < HEAD_TIMEOUT_S + 4
    for sock in [*idle, *slow, kept]:
        sock.close()


def _connection_cap(server) -> None:
    held = [_connect(server) for _ in range(MAX_CONNECTIONS)]
    time.sleep(0.2)
    try:
        r = requests.get(f"{server.url}/ping", timeout=5)
        assert r.status_code == 503  # uvicorn's limit_concurrency answer
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while requests.get(f"{server.url}/ping", timeout=5).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_request_deadline_stops_decoding_between_images(tiny_run):
    api = ClassifierAPI(tiny_run, device="cpu", precision="fp32")
    body = json.dumps({"images": [base64.b64encode(_png(16, 16)).decode()] * 3})
    with pytest.raises(DeadlineExceeded, match="after decoding 0 of 3 images") as err:
        api.decode(body, "application/json", deadline=time.monotonic() - 1)
    assert err.value.status == 504
    api.setup()
    assert len(api.decode(body, "application/json", deadline=time.monotonic() + 60)) == 3


def test_pixel_budget_fires_over_the_limit_and_not_under(tiny_run):
    api = ClassifierAPI(tiny_run, device="cpu", precision="fp32", max_request_pixels=3 * 16 * 16)
    api.setup()
    three = json.dumps({"images": [base64.b64encode(_png(16, 16)).decode()] * 3})
    assert len(api.decode(three, "application/json")) == 3
    four = json.dumps({"images": [base64.b64encode(_png(16, 16)).decode()] * 4})
    with pytest.raises(Exception, match="over the per-request budget of 768") as err:
        api.decode(four, "application/json")
    assert err.value.status == 413
