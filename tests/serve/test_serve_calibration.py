"""Served probabilities use the artifact's temperature, as offline predict does; min_confidence answers unknown."""

import json
import shutil
from pathlib import Path

import pytest
import requests
import torch

from dogclf.artifact import load_artifact
from dogclf.config import RuntimeConfig
from dogclf.errors import ConfigError
from dogclf.inference import InferenceEngine
from dogclf.runtime import resolve_runtime
from dogclf.serve.api import ClassifierAPI
from dogclf.serve.codecs import response_format
from dogclf.serve.config import ServeConfig
from dogclf.serve.local import LocalEndpoint

TEMPERATURE = 2.5


@pytest.fixture(scope="module")
def hot_model(tiny_run, tmp_path_factory) -> Path:
    """tiny_run's model with a temperature far from 1, so a missed temperature shows."""
    model = tmp_path_factory.mktemp("hot") / "model"
    shutil.copytree(tiny_run / "model", model)
    meta = json.loads((model / "metadata.json").read_text())
    (model / "metadata.json").write_text(json.dumps({**meta, "temperature": TEMPERATURE}))
    return model


@pytest.fixture(scope="module")
def images(tiny_data) -> list[Path]:
    return sorted((tiny_data / "test").rglob("*.jpg"))


@pytest.fixture(scope="module")
def offline(hot_model, images):
    """fp32 offline predictions and raw logits of every test image."""
    engine = InferenceEngine(load_artifact(hot_model), resolve_runtime(RuntimeConfig(device="cpu", precision="fp32")))
    logits = engine.logits(torch.stack([engine.preprocess(p) for p in images]))
    return engine.topk(logits, 3), logits


def _threshold(predictions) -> float:
    """A min_confidence between the images' top probabilities: some answered, some unknown."""
    tops = sorted(p.probabilities[0] for p in predictions)
    return round((tops[len(tops) // 2 - 1] + tops[len(tops) // 2]) / 2, 6)


def test_http_probabilities_equal_offline_with_the_temperature_and_min_confidence(hot_model, images, offline):
    expected, logits = offline
    threshold = _threshold(expected)
    args = ("--precision", "fp32", "--threads", "1", "--min-confidence", str(threshold))
    with LocalEndpoint(hot_model, *args) as ep:
        headers = {"Content-Type": "image/jpeg"}
        url = f"{ep.url}/invocations"
        docs = [
            requests.post(url, data=p.read_bytes(), params={"topk": 3}, headers=headers, timeout=30).json()
            for p in images
        ]
    for doc, exp, row in zip(docs, expected, logits, strict=True):
        served = doc["predictions"][0]
        assert [c["label"] for c in served] == exp.labels
        assert [c["probability"] for c in served] == pytest.approx(exp.probabilities, abs=2e-6)  # 6-decimal rounding
        scaled = (row / TEMPERATURE).softmax(0).max().item()
        assert served[0]["probability"] == pytest.approx(scaled, abs=1e-6)
        assert served[0]["probability"] != pytest.approx(row.softmax(0).max().item(), abs=1e-3)
        unsure = served[0]["probability"] < threshold
        assert doc["unknown"] == [unsure] and doc["labels"] == ["unknown" if unsure else exp.labels[0]]
        assert doc["temperature"] == TEMPERATURE
    flags = [d["unknown"][0] for d in docs]
    assert any(flags) and not all(flags)  # both ways on the same images


def test_raw_scores_and_no_threshold_serve_plain_softmax_and_always_answer(hot_model, images, offline):
    _, logits = offline
    api = ClassifierAPI(hot_model, ServeConfig(device="cpu", precision="fp32", raw_scores=True))
    api.setup()
    body, _ = api.encode(logits, response_format("application/json", 1))
    doc = json.loads(body)
    assert doc["temperature"] == 1.0 and not any(doc["unknown"])
    served = [p[0]["probability"] for p in doc["predictions"]]
    assert served == pytest.approx(logits.softmax(1).max(1).values.tolist(), abs=1e-6)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DOGCLF_MIN_CONFIDENCE", "1.5", "DOGCLF_MIN_CONFIDENCE='1.5': Input should be less than or equal to 1"),
        ("DOGCLF_TOPK", "abc", "DOGCLF_TOPK='abc': Input should be a valid integer"),
        ("DOGCLF_RAW_SCORES", "maybe", "DOGCLF_RAW_SCORES='maybe': Input should be a valid boolean"),
        ("DOGCLF_PRECISION", "int4", "DOGCLF_PRECISION='int4': Input should be 'auto', 'fp32', 'bf16' or 'fp16'"),
    ],
)
def test_endpoint_settings_out_of_range_are_refused_naming_the_variable(variable, value, message):
    with pytest.raises(ConfigError) as err:
        ServeConfig.from_env({variable: value})
    assert str(err.value).startswith(message), err.value


def test_endpoint_settings_from_the_environment_reach_the_api(hot_model):
    env = {"DOGCLF_MIN_CONFIDENCE": "0.4", "DOGCLF_TOPK": "3", "DOGCLF_RAW_SCORES": "yes", "DOGCLF_MAX_IMAGES": " "}
    api = ClassifierAPI(hot_model, ServeConfig.from_env(env))
    assert (api.min_confidence, api.default_topk, api.raw_scores) == (0.4, 3, True)
    assert api.max_images == ServeConfig().max_images_per_request  # blank: the default
