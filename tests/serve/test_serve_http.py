"""The real server in a subprocess on a free loopback port, driven by requests, httpx, boto3 and SageMaker."""

import asyncio
import base64
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import requests
import torch
from PIL import Image

from conftest import run_cli
from dogclf.artifact import load_artifact
from dogclf.cli.main import main
from dogclf.config import RuntimeConfig
from dogclf.inference import InferenceEngine
from dogclf.runtime import resolve_runtime
from dogclf.serve.config import ServeConfig
from dogclf.serve.local import LocalEndpoint
from dogclf.serve.package import package_model
from dogclf.serve.server import create_app


@pytest.fixture(scope="module")
def endpoint(tiny_run):
    """One fp32 server for the module; batches wait up to 40 ms to fill."""
    with LocalEndpoint(tiny_run, "--precision", "fp32", "--threads", "1", "--max-batch-delay-ms", "40") as ep:
        yield ep


@pytest.fixture(scope="module")
def images(tiny_data):
    return sorted((tiny_data / "test").rglob("*.jpg"))


def _post(endpoint, body, content_type="image/jpeg", **kwargs):
    headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
    return requests.post(f"{endpoint.url}/invocations", data=body, headers=headers, timeout=30, **kwargs)


def test_ping_and_json_topk_with_requests(endpoint, images):
    ping = requests.get(f"{endpoint.url}/ping", timeout=5)
    assert ping.status_code == 200 and ping.json()["status"] == "healthy"
    r = _post(endpoint, images[0].read_bytes(), params={"topk": 2})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["model_version"] == ping.json()["model_version"] == r.headers["x-dogclf-model-version"]
    (top,) = doc["predictions"]
    assert len(top) == 2 and top[0]["probability"] >= top[1]["probability"]
    assert {c["label"] for c in top} <= {"Affenpinscher", "Afghan_hound", "Airedale_terrier"}


def test_http_logits_equal_inference_engine_bit_for_bit(endpoint, images, tiny_run):
    batch = images[:4]
    body = json.dumps({"images": [base64.b64encode(p.read_bytes()).decode() for p in batch]})
    r = httpx.post(f"{endpoint.url}/invocations", content=body, timeout=30,
                   headers={"Content-Type": "application/json", "Accept": "application/x-npy"})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-npy"
    served = np.load(io.BytesIO(r.content), allow_pickle=False)
    engine = InferenceEngine(load_artifact(tiny_run), resolve_runtime(RuntimeConfig(device="cpu", precision="fp32")))
    expected = engine.logits(torch.stack([engine.preprocess(p) for p in batch])).numpy()
    assert np.array_equal(served, expected)


def test_boto3_sagemaker_runtime_client(endpoint, images):
    import boto3

    client = boto3.client("sagemaker-runtime", endpoint_url=endpoint.url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    response = client.invoke_endpoint(EndpointName="dogclf-local", Body=images[0].read_bytes(),
                                      ContentType="application/x-image", Accept="application/json",
                                      CustomAttributes="topk=3")  # fmt: skip
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert len(json.loads(response["Body"].read())["predictions"][0]) == 3
    with pytest.raises(client.exceptions.ClientError) as err:
        client.invoke_endpoint(EndpointName="dogclf-local", Body=b"plain text", ContentType="text/plain")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 415


def test_sagemaker_predictor_with_dogclf_serializers(endpoint, images, monkeypatch):
    import boto3

    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    import sagemaker
    from dogclf.sagemaker.serializers import make_predictor

    boto = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    runtime = boto.client("sagemaker-runtime", endpoint_url=endpoint.url)
    session = sagemaker.Session(boto_session=boto, sagemaker_runtime_client=runtime, default_bucket="unused")
    doc = make_predictor("dogclf-local", session).predict(images[1], custom_attributes="topk=2")
    assert len(doc["predictions"][0]) == 2
    logits = make_predictor("dogclf-local", session, logits=True).predict(images[1].read_bytes())
    assert logits.shape == (1, 3) and logits.dtype == np.float32


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def _big_jpeg() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _chunks(total: int):
    for _ in range(total // 65536 + 1):
        yield b"\0" * 65536


def test_bad_input_matrix_is_answered_and_the_server_survives(endpoint, images):
    jpeg = images[0].read_bytes()
    cases = [  # (body, content type, extra headers, status, words in the message)
        (jpeg, "text/plain", {}, 415, "unsupported Content-Type 'text/plain'"),
        (jpeg, None, {}, 415, "unsupported Content-Type"),
        (_big_jpeg()[:-20_000], "image/jpeg", {}, 400, "cannot decode (image file is truncated"),
        (b"this is text, not a picture", "image/jpeg", {}, 400, "not a recognised image format"),
        (b"", "image/jpeg", {}, 400, "empty request body"),
        (_png(6000, 5000), "image/png", {}, 400, "6000x5000 = 30000000 pixels exceeds the limit"),
        (b"\0" * (6 * 1024 * 1024 + 1), "image/jpeg", {}, 413, "exceeds the limit of 6291456 bytes"),
        (_chunks(7 * 1024 * 1024), "image/jpeg", {}, 413, "exceeds the limit of 6291456 bytes"),
        (b"{broken", "application/json", {}, 400, "invalid JSON body"),
        (
            json.dumps({"images": [base64.b64encode(jpeg).decode()] * 33}),
            "application/json",
            {},
            413,
            "33 images in one request; the limit is 32",
        ),  # fmt: skip
        (jpeg, "image/jpeg", {"Accept": "text/csv"}, 406, "cannot produce Accept 'text/csv'"),
        (jpeg, "image/jpeg", {"X-Amzn-SageMaker-Custom-Attributes": "topk=-1"}, 400, "topk must be between"),
    ]
    for body, content_type, headers, status, words in cases:
        if content_type:
            headers = {"Content-Type": content_type, **headers}
        r = requests.post(f"{endpoint.url}/invocations", data=body, headers=headers, timeout=30)
        assert r.status_code == status, (content_type, r.text)
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"]["status"] == status and words in r.json()["error"]["message"], r.text
    for method, path, status in [
        ("GET", "/nope", 404),
        ("GET", "/invocations", 405),
        ("DELETE", "/ping", 405),
    ]:
        r = requests.request(method, f"{endpoint.url}{path}", timeout=5)
        assert r.status_code == status and r.json()["error"]["status"] == status
    assert endpoint.proc.poll() is None
    assert requests.get(f"{endpoint.url}/ping", timeout=5).status_code == 200
    assert _post(endpoint, jpeg).status_code == 200


def test_concurrent_requests_share_batches_and_get_their_own_answers(endpoint, images):
    start = threading.Barrier(8)

    def labels(path, together=False):
        if together:
            start.wait(10)
        r = _post(endpoint, path.read_bytes(), params={"topk": 3})
        assert r.status_code == 200, r.text
        return [c["label"] for c in r.json()["predictions"][0]]

    before = _metric(endpoint, "dogclf_batch_size_count")
    sequential = [labels(p) for p in images[:8]]
    assert _metric(endpoint, "dogclf_batch_size_count") - before == 8
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(lambda p: labels(p, together=True), images[:8]))
    batches = _metric(endpoint, "dogclf_batch_size_count") - before - 8
    assert concurrent == sequential
    assert 1 <= batches < 8  # 8 requests arrived within the 40 ms window: fewer forward passes than requests


def _metric(endpoint, name: str) -> float:
    text = requests.get(f"{endpoint.url}/metrics", timeout=5).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.split(" ")[0] == name)


def test_metrics_are_prometheus_text(endpoint, images):
    before = _metric(endpoint, 'dogclf_requests_total{method="POST",route="/invocations",status="200"}')
    _post(endpoint, images[0].read_bytes())
    url = f"{endpoint.url}/endpoints/any-name/invocations"
    r = requests.post(url, data=images[0].read_bytes(), headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert r.status_code == 200
    r = requests.get(f"{endpoint.url}/metrics", timeout=5)
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert _metric(endpoint, 'dogclf_requests_total{method="POST",route="/invocations",status="200"}') == before + 1
    assert 'route="/endpoints/{name}/invocations",status="200"' in text
    assert "# TYPE dogclf_request_duration_seconds histogram" in text and 'le="+Inf"' in text
    assert "dogclf_model_ready 1" in text and "dogclf_queue_images 0" in text
    assert _metric(endpoint, "dogclf_images_total") >= 2


def test_access_log_is_one_json_line_per_request(endpoint, images):
    r = _post(endpoint, images[0].read_bytes(), headers={"X-Amzn-SageMaker-Inference-Id": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42"
    deadline = time.monotonic() + 10  # the line is written just after the response is sent
    while time.monotonic() < deadline:
        lines = [line for line in endpoint.log_text().splitlines() if line.startswith('{"event": "request"')]
        mine = [e for e in map(json.loads, lines) if e["request_id"] == "trace-42"]
        if mine:
            break
        time.sleep(0.05)
    (mine,) = mine
    assert mine["status"] == 200 and mine["images"] == 1 and mine["path"] == "/invocations"
    assert mine["bytes_in"] == len(images[0].read_bytes()) and mine["duration_ms"] > 0


def test_not_ready_answers_503_as_json(tiny_run):
    app = create_app(tiny_run)  # lifespan never runs here, so the model never loads

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
            ping = await client.get("/ping")
            post = await client.post("/invocations", content=b"x", headers={"Content-Type": "image/jpeg"})
            return ping, post

    ping, post = asyncio.run(scenario())
    assert ping.status_code == 503 and "still loading" in ping.json()["error"]["message"]
    assert post.status_code == 503 and post.json()["error"]["status"] == 503


def test_timeout_504_and_overload_503(tiny_run, images):
    cfg = ServeConfig(precision="fp32", max_batch_delay_ms=800, timeout_s=0.3, max_queue_images=1)
    app = create_app(tiny_run, cfg)
    jpeg = images[0].read_bytes()

    async def scenario():
        async with app.router.lifespan_context(app):
            while not app.state.endpoint.api.ready:
                await asyncio.sleep(0.05)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
                headers = {"Content-Type": "image/jpeg"}
                return await asyncio.gather(
                    client.post("/invocations", content=jpeg, headers=headers),
                    client.post("/invocations", content=jpeg, headers=headers),
                )

    first, second = asyncio.run(scenario())
    assert sorted([first.status_code, second.status_code]) == [503, 504]
    messages = " | ".join(r.json()["error"]["message"] for r in (first, second))
    assert "did not finish within 0.3 s" in messages and "server overloaded" in messages


def test_sigterm_finishes_in_flight_requests_then_exits_0(tiny_run, images, tmp_path):
    tarball = package_model(tiny_run, tmp_path / "model.tar.gz")
    endpoint = LocalEndpoint(tarball, "--max-batch-delay-ms", "3000", "--max-batch-size", "64").start()
    result = {}

    def slow_request():
        result["response"] = _post(endpoint, images[0].read_bytes())

    worker = threading.Thread(target=slow_request)
    worker.start()
    deadline = time.monotonic() + 2.5
    while _metric(endpoint, "dogclf_queue_images") < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _metric(endpoint, "dogclf_queue_images") == 1  # in flight: queued, waiting for its batch
    code = endpoint.stop()
    worker.join(30)
    assert result["response"].status_code == 200 and result["response"].json()["predictions"]
    assert code == 0
    assert '{"event": "stopped"}' in endpoint.log_text()
    endpoint.log_path.unlink()


def test_model_that_fails_to_load_exits_1_with_the_reason(tiny_run, tmp_path, capsys):
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "metadata.json").write_bytes((tiny_run / "model" / "metadata.json").read_bytes())
    (broken / "model.pth").write_bytes(b"not a checkpoint")
    r = run_cli("serve", str(broken), "--port", "0", timeout=120)
    assert r.returncode == 1
    assert '"event": "load_failed"' in r.stderr and "weights_only=True" in r.stderr
    assert main(["serve", str(tmp_path / "missing"), "--port", "0"]) == 2
    assert "model not found" in capsys.readouterr().err
    assert main(["serve", str(tiny_run), "--max-batch-size", "0"]) == 2
    assert "max_batch_size" in capsys.readouterr().err
