"""The SageMaker handlers as the inference toolkit runs them: code/inference.py of an extracted tarball."""

import base64
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dogclf.artifact import load_artifact
from dogclf.config import RuntimeConfig
from dogclf.inference import InferenceEngine
from dogclf.prediction import predict
from dogclf.runtime import resolve_runtime
from dogclf.serve.codecs import RequestError, encode_npy
from dogclf.serve.package import extract_model, package_model


@pytest.fixture(scope="module")
def model_dir(tiny_run, tmp_path_factory) -> Path:
    """/opt/ml/model as SageMaker lays it out: the tarball extracted."""
    tmp = tmp_path_factory.mktemp("sm")
    return extract_model(package_model(tiny_run, tmp / "model.tar.gz"), tmp / "opt_ml_model")


@pytest.fixture(scope="module")
def entry(model_dir):
    """Import code/inference.py by file path, as the toolkit does."""
    spec = importlib.util.spec_from_file_location("inference", model_dir / "code" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def images(tiny_data) -> list[Path]:
    return sorted((tiny_data / "test").rglob("*.jpg"))[:5]


def _invoke(entry, model, body, content_type, accept, context=None):
    data = entry.input_fn(body, content_type, context) if context else entry.input_fn(body, content_type)
    return entry.output_fn(entry.predict_fn(data, model), accept)


def _b64_json(paths) -> str:
    # The toolkit hands application/json bodies to input_fn as str.
    return json.dumps({"instances": [base64.b64encode(p.read_bytes()).decode() for p in paths]})


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_served_logits_equal_inference_engine_bit_for_bit(entry, model_dir, images, precision, monkeypatch):
    monkeypatch.setenv("DOGCLF_PRECISION", precision)
    model = entry.model_fn(str(model_dir))
    body, content_type = _invoke(entry, model, _b64_json(images), "application/json", "application/x-npy")
    assert content_type == "application/x-npy"
    served = np.load(io.BytesIO(body), allow_pickle=False)

    engine = InferenceEngine(
        load_artifact(model_dir), resolve_runtime(RuntimeConfig(device="cpu", precision=precision))
    )
    expected = engine.logits(torch.stack([engine.preprocess(p) for p in images])).numpy()
    assert served.dtype == np.float32 and served.shape == (len(images), 3)
    assert np.array_equal(served, expected)


def test_json_topk_matches_dogclf_predict_at_the_default_precision(entry, model_dir, images, monkeypatch):
    monkeypatch.delenv("DOGCLF_PRECISION", raising=False)
    model = entry.model_fn(str(model_dir))
    body, content_type = _invoke(entry, model, _b64_json(images), "application/json", "application/json; topk=2")
    doc = json.loads(body)
    assert content_type == "application/json" and doc["model_version"] == model.version
    expected = predict(model_dir, images, topk=2, batch_size=len(images))
    assert [[c["label"] for c in row] for row in doc["predictions"]] == [p.labels for p in expected]
    assert [[c["probability"] for c in row] for row in doc["predictions"]] == [p.probabilities for p in expected]


def test_image_and_npy_inputs_agree(entry, model_dir, images):
    model = entry.model_fn(str(model_dir))
    first = images[0]
    from_jpeg, _ = _invoke(entry, model, first.read_bytes(), "image/jpeg", "application/x-npy")
    pixels = np.asarray(Image.open(first).convert("RGB"))
    from_npy, _ = _invoke(entry, model, encode_npy(pixels), "application/x-npy", "application/x-npy")
    assert np.array_equal(np.load(io.BytesIO(from_jpeg)), np.load(io.BytesIO(from_npy)))


class _Context:
    """The shape of the toolkit's request context: request_processor[0].get_request_properties()."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.request_processor = [self]
        self._headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self._headers


def test_topk_from_custom_attributes_and_default(entry, model_dir, images, monkeypatch):
    monkeypatch.setenv("DOGCLF_TOPK", "1")
    model = entry.model_fn(str(model_dir))
    body, _ = _invoke(entry, model, images[0].read_bytes(), "image/jpeg", "application/json")
    assert len(json.loads(body)["predictions"][0]) == 1
    ctx = _Context({"X-Amzn-SageMaker-Custom-Attributes": "topk=3"})
    body, _ = _invoke(entry, model, images[0].read_bytes(), "image/jpeg", "application/json", ctx)
    assert len(json.loads(body)["predictions"][0]) == 3


def test_bad_requests_raise_client_errors_with_status(entry, model_dir, images):
    model = entry.model_fn(str(model_dir))
    with pytest.raises(RequestError) as err:
        entry.input_fn(b"hello", "text/plain")
    assert err.value.status == 415
    truncated = images[0].read_bytes()[:200]
    with pytest.raises(RequestError, match="cannot decode|not a recognised") as err:
        entry.input_fn(truncated, "image/jpeg")
    assert err.value.status == 400
    data = entry.predict_fn(entry.input_fn(images[0].read_bytes(), "image/jpeg"), model)
    with pytest.raises(RequestError) as err:
        entry.output_fn(data, "text/csv")
    assert err.value.status == 406
