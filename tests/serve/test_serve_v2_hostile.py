"""Hostile requests on the Open Inference Protocol routes of a real `dogclf serve`: a 4xx naming the problem."""

import base64
import io
import json
import struct

import numpy as np
import pytest
import requests
from PIL import Image

from dogclf.serve.local import LocalEndpoint

MODEL = "dogclf"
MAX_BODY = 300_000
MAX_IMAGES = 4
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n0 0 moveto 100 100 lineto stroke\nshowpage\n"


@pytest.fixture(scope="module")
def server(tiny_run):
    args = ("--precision", "fp32", "--threads", "1", "--max-body-bytes", str(MAX_BODY),
            "--max-images-per-request", str(MAX_IMAGES), "--max-pixels", "1000000")  # fmt: skip
    with LocalEndpoint(tiny_run, *args) as ep:
        yield ep


@pytest.fixture(scope="module")
def jpeg(tiny_data) -> bytes:
    return next((tiny_data / "test").rglob("*.jpg")).read_bytes()


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def _images_json(values: list, shape: list | None = None, datatype: str = "BYTES", name: str = "images") -> bytes:
    spec = {"name": name, "datatype": datatype, "shape": shape or [len(values)], "data": values}
    return json.dumps({"inputs": [spec]}).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _binary(doc: dict, blob: bytes) -> tuple[bytes, dict]:
    head = json.dumps(doc).encode()
    return head + blob, {"Inference-Header-Content-Length": str(len(head))}


def _pixels_doc(shape: list, size: int | None = None) -> dict:
    spec = {"name": "pixels", "datatype": "FP32", "shape": shape, "parameters": {"binary_data_size": size}}
    return {"inputs": [spec]}


def _cases(jpeg: bytes) -> list[tuple[str, str, bytes, dict, int, str]]:
    """(name, path, body, headers, status, words of the message)."""
    infer = f"/v2/models/{MODEL}/infer"
    good = _images_json([_b64(jpeg)])
    nan = np.full((1, 3, 32, 32), np.nan, dtype="<f4").tobytes()
    elements = struct.pack("<I", len(jpeg)) + jpeg
    return [
        ("wrong model name", "/v2/models/resnet/infer", good, {}, 404, "unknown model 'resnet'"),
        ("bad json", infer, b'{"inputs": [', {}, 400, "invalid JSON body"),
        ("json not an object", infer, b"[1, 2]", {}, 400, "JSON object"),
        ("no inputs", infer, b'{"inputs": []}', {}, 400, "non-empty list"),
        ("too many inputs", infer, json.dumps({"inputs": [json.loads(good)["inputs"][0]] * 2}).encode(), {}, 400,
         "2 inputs; send one"),
        ("unknown input", infer, _images_json([_b64(jpeg)], name="input-0"), {}, 400, "unknown input 'input-0'"),
        ("images as FP32", infer, _images_json([1.0], datatype="FP32"), {}, 400, "must have datatype BYTES"),
        ("pixels as BYTES", infer, _images_json(["x"], [1, 3, 32, 32], "BYTES", "pixels"), {}, 400,
         "must have datatype FP32"),
        ("pixels of the wrong size", infer, _images_json([0.0] * 768, [1, 3, 16, 16], "FP32", "pixels"), {}, 400,
         "shape [N, 3, 32, 32]"),
        ("pixels data short of the shape", infer, _images_json([0.0] * 7, [1, 3, 32, 32], "FP32", "pixels"), {},
         400, "declares 3072 values, data holds 7"),
        ("pixels NaN", infer, *_binary(_pixels_doc([1, 3, 32, 32], len(nan)), nan), 400, "NaN or infinite"),
        ("pixels binary short", infer, *_binary(_pixels_doc([1, 3, 32, 32], 8), b"\0" * 8), 400,
         "needs 12288 bytes of FP32"),
        ("shape against data", infer, _images_json([_b64(jpeg)], [2]), {}, 400, "declares 2 images, data holds 1"),
        ("negative shape", infer, _images_json([_b64(jpeg)], [-1]), {}, 400, "non-negative integers"),
        ("too many images", infer, _images_json([_b64(jpeg)] * 5), {}, 413, "5 images in one request; the limit is 4"),
        ("too many pixel images", infer, _images_json([0.0], [5, 3, 32, 32], "FP32", "pixels"), {}, 413,
         "5 images in one request"),
        ("bad base64", infer, _images_json(["not*base64"]), {}, 400, "images[0]: not valid base64"),
        ("not an image", infer, _images_json([_b64(b"hello")]), {}, 400, "image"),
        ("eps in BYTES", infer, _images_json([_b64(EPS)]), {}, 415, "EPS"),
        ("image over max_pixels", infer, _images_json([_b64(_png(1200, 1000))]), {}, 400, "exceeds the limit"),
        ("oversize body", infer, _images_json(["A" * MAX_BODY]), {}, 413, f"limit of {MAX_BODY} bytes"),
        ("header length past the body", infer, good, {"Inference-Header-Content-Length": "99999"}, 400,
         "Inference-Header-Content-Length"),
        ("header length not a number", infer, good, {"Inference-Header-Content-Length": "-5"}, 400,
         "Inference-Header-Content-Length"),
        ("binary with no declaring input", infer, *_binary(json.loads(good), b"xx"), 400,
         "no input declares them"),
        ("binary size mismatch", infer,
         *_binary({"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1],
                               "parameters": {"binary_data_size": len(elements) + 3}}]}, elements), 400,
         "binary_data_size"),
        ("element length past the end", infer,
         *_binary({"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1],
                               "parameters": {"binary_data_size": 8}}]}, struct.pack("<I", 10**6) + b"abcd"), 400,
         "past the end of the data"),
        ("unknown output", infer, json.dumps({**json.loads(good), "outputs": [{"name": "logits"}]}).encode(), {},
         400, "unknown output 'logits'"),
        ("gzip body", infer, good, {"Content-Encoding": "gzip"}, 415, "Content-Encoding 'gzip'"),
    ]  # fmt: skip


def test_hostile_v2_requests_get_4xx_naming_the_problem(server, jpeg):
    failures = []
    for name, path, body, headers, status, words in _cases(jpeg):
        r = requests.post(f"{server.url}{path}", data=body, headers=headers, timeout=30)
        message = r.json().get("error") if r.headers.get("content-type") == "application/json" else None
        if r.status_code != status or not isinstance(message, str) or words not in message:
            failures.append((name, r.status_code, r.text[:300]))
    assert failures == []
    assert requests.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
    r = requests.post(f"{server.url}/v2/models/{MODEL}/infer", data=_images_json([_b64(jpeg)]), timeout=30)
    assert r.status_code == 200 and len(r.json()["outputs"][0]["data"]) == 3


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", f"/v2/models/{MODEL}/infer", 405),
        ("POST", f"/v2/models/{MODEL}/versions/1/infer", 404),
        ("GET", "/v2/models/resnet", 404),
        ("GET", "/v2/models/resnet/ready", 404),
        ("POST", "/v2/health/ready", 405),
    ],
)
def test_v2_paths_and_methods_outside_the_protocol(server, method, path, status):
    r = requests.request(method, f"{server.url}{path}", timeout=10)
    assert r.status_code == status and "error" in r.json()


def test_metric_labels_stay_bounded_under_made_up_model_names(server, jpeg):
    for i in range(3):
        requests.post(f"{server.url}/v2/models/evil{i}/infer", data=_images_json([_b64(jpeg)]), timeout=10)
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    assert "evil" not in text
    assert 'route="/v2/models/{name}/infer",status="404"' in text
