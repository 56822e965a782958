"""The Open Inference Protocol (KServe v2) routes of a real `dogclf serve`, driven by Triton's own HTTP client."""

import numpy as np
import pytest
import requests
import torch
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from dogclf.artifact import load_artifact
from dogclf.inference import InferenceEngine
from dogclf.serve.local import LocalEndpoint

MODEL = "breeds"


@pytest.fixture(scope="module")
def endpoint(tiny_run):
    """One fp32 server, its v2 model named `breeds`."""
    with LocalEndpoint(tiny_run, "--precision", "fp32", "--threads", "1", "--model-name", MODEL) as ep:
        yield ep


@pytest.fixture(scope="module")
def client(endpoint):
    client = httpclient.InferenceServerClient(url=endpoint.url.removeprefix("http://"), network_timeout=30.0)
    yield client
    client.close()


@pytest.fixture(scope="module")
def images(tiny_data):
    return sorted((tiny_data / "test").rglob("*.jpg"))[:3]


@pytest.fixture(scope="module")
def engine(tiny_run):
    return InferenceEngine(load_artifact(tiny_run / "model"))


def _invocations(endpoint, images) -> list[dict]:
    """What /invocations answers for the same images: the reference the v2 answers must equal."""
    import base64

    body = {"instances": [base64.b64encode(p.read_bytes()).decode() for p in images]}
    r = requests.post(f"{endpoint.url}/invocations", json=body, headers={"Accept": "application/json; topk=3"})
    assert r.status_code == 200, r.text
    return r.json()


def _image_input(images) -> httpclient.InferInput:
    data = np.array([p.read_bytes() for p in images], dtype=np.object_)
    tensor = httpclient.InferInput("images", [len(images)], "BYTES")
    tensor.set_data_from_numpy(data)  # binary tensor data, the client's default
    return tensor


def test_health_and_metadata(client, endpoint):
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)
    assert not client.is_model_ready("other")
    server = client.get_server_metadata()
    assert server["name"] == "dogclf" and "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata(MODEL)
    ping = requests.get(f"{endpoint.url}/ping", timeout=5).json()
    assert meta["name"] == MODEL and meta["versions"] == [ping["model_version"]]
    assert {i["name"]: (i["datatype"], i["shape"]) for i in meta["inputs"]} == {
        "images": ("BYTES", [-1]),
        "pixels": ("FP32", [-1, 3, 32, 32]),
    }
    assert {o["name"]: (o["datatype"], o["shape"]) for o in meta["outputs"]} == {
        "probabilities": ("FP32", [-1, 3]),
        "labels": ("BYTES", [-1]),
    }


@pytest.mark.parametrize("binary_out", [True, False])
def test_infer_encoded_images_matches_invocations(client, endpoint, images, binary_out):
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary_out) for n in ("probabilities", "labels")]
    result = client.infer(MODEL, [_image_input(images)], outputs=outputs, request_id="req-1")
    probs, labels = result.as_numpy("probabilities"), result.as_numpy("labels")
    assert probs.dtype == np.float32 and probs.shape == (len(images), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    response = result.get_response()
    assert response["model_name"] == MODEL and response["id"] == "req-1"
    reference = _invocations(endpoint, images)
    assert [v.decode() if isinstance(v, bytes) else v for v in labels.reshape(-1)] == reference["labels"]
    for row, top in zip(probs, reference["predictions"], strict=True):
        assert [round(float(row[c["index"]]), 6) for c in top] == [c["probability"] for c in top]


@pytest.mark.parametrize("binary_in", [True, False])
def test_infer_fp32_nchw_equals_infer_on_the_encoded_images(client, images, engine, binary_in):
    pixels = torch.stack([engine.preprocess(p) for p in images]).numpy()
    tensor = httpclient.InferInput("pixels", list(pixels.shape), "FP32")
    tensor.set_data_from_numpy(pixels, binary_data=binary_in)
    from_pixels = client.infer(MODEL, [tensor]).as_numpy("probabilities")
    from_images = client.infer(MODEL, [_image_input(images)]).as_numpy("probabilities")
    np.testing.assert_allclose(from_pixels, from_images, atol=1e-6)


def test_only_the_requested_output_is_returned(client, images):
    result = client.infer(MODEL, [_image_input(images)], outputs=[httpclient.InferRequestedOutput("labels")])
    assert [o["name"] for o in result.get_response()["outputs"]] == ["labels"]
    assert result.as_numpy("probabilities") is None


def test_wrong_model_name_is_404_for_the_client(client, images):
    with pytest.raises(InferenceServerException) as err:
        client.infer("resnet", [_image_input(images)])
    assert err.value.status() == "404" and "'resnet'" in err.value.message() and MODEL in err.value.message()


def test_v2_requests_are_counted_in_the_metrics(client, endpoint, images):
    def count(text: str) -> int:
        prefix = 'dogclf_requests_total{method="POST",route="/v2/models/{name}/infer",status="200"} '
        return sum(int(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix))

    def images_total(text: str) -> int:
        return int(next(line.split()[1] for line in text.splitlines() if line.startswith("dogclf_images_total ")))

    before = requests.get(f"{endpoint.url}/metrics", timeout=5).text
    client.infer(MODEL, [_image_input(images)])
    after = requests.get(f"{endpoint.url}/metrics", timeout=5).text
    assert count(after) == count(before) + 1
    assert images_total(after) == images_total(before) + len(images)


def _stages(endpoint) -> dict[str, tuple[float, int]]:
    found: dict[str, list] = {}
    for line in requests.get(f"{endpoint.url}/metrics", timeout=5).text.splitlines():
        for metric, slot in (("dogclf_stage_seconds_total{", 0), ("dogclf_stage_observations_total{", 1)):
            if line.startswith(metric):
                found.setdefault(line.split('"')[1], [0.0, 0])[slot] = float(line.split()[-1])
    return {stage: (seconds, int(count)) for stage, (seconds, count) in found.items()}


@pytest.mark.parametrize("route", ["invocations", "v2"])
def test_stage_timers_count_every_stage_of_a_request(client, endpoint, images, route):
    before = _stages(endpoint)
    if route == "v2":
        client.infer(MODEL, [_image_input(images)])
    else:
        _invocations(endpoint, images)
    after = _stages(endpoint)
    added = {stage: after[stage][1] - before[stage][1] for stage in after}
    per_image, per_request = ("decode", "resize_crop"), ("read", "decode_queue", "return", "encode")
    assert {s: added[s] for s in per_image + per_request} == {
        **dict.fromkeys(per_image, 3),
        **dict.fromkeys(per_request, 1),
    }
    assert added["batch_wait"] == 1 and added["engine"] >= 1 and added["write"] >= 1
    assert all(after[s][0] > before[s][0] for s in ("decode", "resize_crop", "engine", "encode", "read"))


@pytest.mark.parametrize("backend", ["eager", "openvino"])
def test_a_batch_mixing_crops_and_fp32_tensors_gives_each_image_its_own_logits(tiny_run, images, backend):
    from dogclf.serve.api import ClassifierAPI
    from dogclf.serve.config import ServeConfig

    api = ClassifierAPI(tiny_run, ServeConfig(device="cpu", precision="fp32", backend=backend))
    api.setup()
    crops = api.decode_images([p.read_bytes() for p in images], "image/jpeg")
    tensors = [api.engine.transform.normalize(c) for c in crops]
    mixed = api.predict([crops[0], tensors[1], crops[2]])  # /invocations and a v2 FP32 request in one batch
    assert torch.equal(mixed[[0, 2]], api.predict([crops[0], crops[2]]))
    assert torch.equal(mixed[[1]], api.predict([tensors[1]]))
    assert torch.allclose(mixed, api.predict(tensors), atol=1e-4)
