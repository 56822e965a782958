"""Hostile clients against a real `dogclf serve`: every attack gets a 4xx or a closed connection, never a 5xx."""

import base64
import io
import json
import random
import select
import socket
import time

import numpy as np
import pytest
import requests
from numpy.lib import format as npy_format
from PIL import Image

from dogclf.serve.api import ClassifierAPI, DeadlineExceeded
from dogclf.serve.config import ServeConfig
from dogclf.serve.local import LocalEndpoint
from dogclf.serve.package import package_model
from dogclf.serve.server import METHODS

HEAD_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
BODY_MIN_RATE = 1024
MAX_CONNECTIONS = 24
MAX_HEAD_BYTES = 16 * 1024  # the default of --max-header-bytes
RSS_GROWTH_LIMIT_KB = 150 * 1024


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(request, tiny_run, tmp_path_factory):
    """The server from a model.tar.gz, with its own TMPDIR and short connection timeouts, on each HTTP parser."""
    tmp = tmp_path_factory.mktemp("hostile")
    tarball = package_model(tiny_run, tmp / "model.tar.gz")
    server_tmp = tmp / "server-tmp"
    server_tmp.mkdir()
    args = ("--precision", "fp32", "--threads", "1", "--header-timeout-s", str(HEAD_TIMEOUT_S),
            "--keep-alive-s", "1", "--max-connections", str(MAX_CONNECTIONS),
            "--body-timeout-s", str(BODY_TIMEOUT_S), "--body-min-rate", str(BODY_MIN_RATE),
            "--http", request.param)  # fmt: skip
    with LocalEndpoint(tarball, *args, env={"TMPDIR": str(server_tmp)}) as ep:
        ep.tmp, ep.http = server_tmp, request.param
        assert f'"http": "{request.param}"' in ep.log_text()
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


JSON = "application/json"
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
        ("5000-digit number", b'{"images": ["AAAA"], "n": ' + b"7" * 5000 + b"}", JSON, 400, "5000 digits"),
        ("5000-digit negative", b'{"images": [-' + b"7" * 5000 + b"]}", JSON, 400, "5000 digits"),
    ]


def test_hostile_matrix_gets_4xx_or_closed_and_the_server_stays_healthy(server):
    pid = server.proc.pid
    tmp_before, rss_before = _du(server.tmp), _rss_kb(pid)
    url = f"{server.url}/invocations"
    for name, body, content_type, status, words in _cases():
        r = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)
        assert r.status_code == status, (name, r.text)
        message = r.json()["error"]["message"]
        assert r.json()["error"]["status"] == status and words in message and "\n" not in message, (name, r.text)
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
        if server.http == "httptools":  # llhttp knows the methods: an unknown one is refused before any route
            assert r.status_code == 400 and r.json()["error"]["message"] == "invalid HTTP request", r.text
    after = requests.get(f"{server.url}/metrics", timeout=5).text
    series = [line for line in after.splitlines() if line.startswith("dogclf_requests_total{")]
    methods = {line.split('method="')[1].split('"')[0] for line in series}
    assert methods <= METHODS | {"other"}
    assert ("other" in methods) == (server.http == "h11")  # h11 hands an unknown method to the app
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
    """Whether the server closed the connection: EOF, or a reset (a byte sent after its close draws one)."""
    return _read_to_close(sock, HEAD_TIMEOUT_S + 3)[1]


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
    api = ClassifierAPI(tiny_run, ServeConfig(device="cpu", precision="fp32"))
    body = json.dumps({"images": [base64.b64encode(_png(16, 16)).decode()] * 3})
    with pytest.raises(DeadlineExceeded, match="after decoding 0 of 3 images") as err:
        api.decode(body, "application/json", deadline=time.monotonic() - 1)
    assert err.value.status == 504
    api.setup()
    assert len(api.decode(body, "application/json", deadline=time.monotonic() + 60)) == 3


def test_pixel_budget_fires_over_the_limit_and_not_under(tiny_run):
    api = ClassifierAPI(tiny_run, ServeConfig(device="cpu", precision="fp32", max_request_pixels=3 * 16 * 16))
    api.setup()
    three = json.dumps({"images": [base64.b64encode(_png(16, 16)).decode()] * 3})
    assert len(api.decode(three, "application/json")) == 3
    four = json.dumps({"images": [base64.b64encode(_png(16, 16)).decode()] * 4})
    with pytest.raises(Exception, match="over the per-request budget of 768") as err:
        api.decode(four, "application/json")
    assert err.value.status == 413


def _post_head(length: int, content_type: str = "image/png") -> bytes:
    return (
        f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _read_to_close(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bool]:
    """(everything the server sent, whether it closed the connection) within `timeout` seconds."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
        return data, True
    except TimeoutError:
        return data, False
    except ConnectionResetError:
        return data, True


def _error(response: bytes) -> tuple[int, dict]:
    """(status, JSON error) of one raw HTTP response."""
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]


def _trickle(socks: list[socket.socket], seconds: float, ping_url: str | None = None) -> dict[int, bytes]:
    """Send a body byte on each socket every 0.2 s until each is answered or `seconds` pass; {index: answer}."""
    answered: dict[int, bytes] = {}
    deadline = time.monotonic() + seconds
    while len(answered) < len(socks) and time.monotonic() < deadline:
        waiting = [sock for i, sock in enumerate(socks) if i not in answered]
        ready = select.select(waiting, [], [], 0.2)[0]
        for sock in waiting:
            if sock in ready or select.select([sock], [], [], 0)[0]:  # answered since the wait, or now
                answered[socks.index(sock)] = _read_to_close(sock)[0]
                continue
            try:
                sock.sendall(b"\0")
            except (ConnectionResetError, BrokenPipeError):  # the server answered and closed between the two looks
                answered[socks.index(sock)] = _read_to_close(sock)[0]
        if ping_url:
            assert requests.get(ping_url, timeout=5).status_code == 200  # healthy while bodies trickle
    return answered


def test_trickled_bodies_get_408_and_free_the_connections(server):
    few = [_connect(server) for _ in range(3)]
    for sock in few:
        sock.sendall(_post_head(1000) + b"\0")
    start = time.monotonic()
    answered = _trickle(few, BODY_TIMEOUT_S + 4, ping_url=f"{server.url}/ping")
    assert time.monotonic() - start < BODY_TIMEOUT_S + 3 and len(answered) == 3, answered
    for i, sock in enumerate(few):
        status, error = _error(answered[i])
        assert status == 408 and "body_timeout_s" in error["message"] and b"connection: close" in answered[i].lower()
        assert _read_to_close(sock, 1)[1]  # and the connection is closed
        sock.close()

    held = [_connect(server) for _ in range(MAX_CONNECTIONS - 1)]  # trickling clients that fill the cap
    for sock in held:
        sock.sendall(_post_head(1000) + b"\0")
    time.sleep(0.2)
    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 503
    answered = _trickle(held, BODY_TIMEOUT_S + 4)
    assert len(answered) == len(held) and {_error(a)[0] for a in answered.values()} == {408}
    for sock in held:
        sock.close()
    time.sleep(0.1)
    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 200


def test_a_slow_body_above_the_minimum_rate_is_served(server):
    body = json.dumps({"images": [base64.b64encode(_png(16, 16)).decode()]}).encode() + b" " * 3000
    pieces = [body[i : i + 500] for i in range(0, len(body), 500)]
    with _connect(server) as sock:
        sock.sendall(_post_head(len(body), JSON))
        start = time.monotonic()
        for piece in pieces:  # 500 bytes every 0.4 s: slower than BODY_TIMEOUT_S in all, above BODY_MIN_RATE
            time.sleep(0.4)
            sock.sendall(piece)
        assert time.monotonic() - start > BODY_TIMEOUT_S * 2
        sock.settimeout(10)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]


def test_content_length_with_transfer_encoding_is_refused_and_closed(server):
    smuggled = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
    for method, path in (("POST", "/invocations"), ("GET", "/ping")):
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
        with _connect(server) as sock:
            sock.sendall(head.encode() + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled)
            answer, closed = _read_to_close(sock)
        assert closed and answer.count(b"HTTP/1.1 ") == 1, answer  # no answer to the smuggled request
        status, error = _error(answer)
        assert status == 400 and "both Content-Length and Transfer-Encoding" in error["message"], answer
    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 200


def _head(extra: int) -> bytes:
    return b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * extra + b"\r\n\r\n"


@pytest.mark.parametrize(("size", "piece"), [(100_000, None), (30_000, None), (100_000, 1000)])
def test_an_oversized_head_gets_431_in_one_write_or_in_pieces(server, size, piece):
    head = _head(size)
    with _connect(server) as sock:
        if piece is None:
            sock.sendall(head)
        else:
            for i in range(0, len(head), piece):  # until the server answers: a byte after its close draws a reset
                if select.select([sock], [], [], 0.01)[0]:
                    break
                sock.sendall(head[i : i + piece])
        answer, closed = _read_to_close(sock)
    status, error = _error(answer)
    assert status == 431 and "max_header_bytes" in error["message"] and closed, answer[:300]


def test_a_head_just_under_the_limit_is_served(server):
    head = _head(MAX_HEAD_BYTES - 100)
    assert len(head) <= MAX_HEAD_BYTES
    with _connect(server) as sock:
        sock.sendall(head)
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
