"""OpenVINO and ONNX Runtime backends: same logits as eager fp32 on real images, int8 reported as int8, cache."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from dogclf.artifact import Artifact, load_artifact
from dogclf.backends.base import PixelBackend
from dogclf.backends.exports import read_export
from dogclf.backends.load import load_backend
from dogclf.config import RuntimeConfig
from dogclf.data.discovery import discover
from dogclf.data.images import decode_image
from dogclf.data.preprocess import Preprocess, eval_transform, load_eval_tensor
from dogclf.inference import InferenceEngine
from dogclf.runtime import resolve_runtime

pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")

# fp32 engines compute the same network with other kernels: batch norms folded into the convolutions and sums
# in another order give differences of about 1e-6 on these logits (|logit| < 10). A real conversion fault
# (a wrong layer, layout or normalization) moves logits by O(1), so 1e-3 separates the two with room to spare.
PARITY_ATOL = 1e-3


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOGCLF_MODEL_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def fp32():
    return resolve_runtime(RuntimeConfig(device="cpu", precision="fp32"))


@pytest.fixture(scope="module")
def images(tiny_data, tiny_run) -> torch.Tensor:
    """The test split of the synthetic dataset, preprocessed as the artifact says."""
    pre = load_artifact(tiny_run).preprocess
    return torch.stack([load_eval_tensor(s.path, pre) for s in discover(tiny_data).splits["test"]])


@pytest.mark.parametrize(
    ("source", "backend", "describes"),
    [
        ("exported", "openvino-fp32", "export openvino-fp32"),
        ("exported", "onnx-fp32", "export onnx-fp32"),
        ("run", "openvino", "converted in memory"),  # the run's model has no exports
        ("run", "onnx", "exported in memory"),
    ],
)
def test_fp32_engines_match_eager_fp32(source, backend, describes, exported_model, tiny_run, images, fp32):
    artifact = load_artifact(exported_model if source == "exported" else tiny_run)
    eager = load_backend(artifact, "eager", fp32).logits(images)
    engine = load_backend(artifact, backend, fp32)
    logits = engine.logits(images)
    assert logits.dtype == torch.float32 and logits.shape == eager.shape
    assert (logits - eager).abs().max() < PARITY_ATOL
    assert torch.equal(logits.argmax(1), eager.argmax(1))
    assert engine.precision == "fp32" and describes in engine.describe()
    assert f"threads={torch.get_num_threads()}" in engine.describe()


def test_int8_export_runs_as_int8_with_the_agreement_its_gate_recorded(exported_model, images, fp32):
    artifact = load_artifact(exported_model)
    recorded = read_export(exported_model / "exports" / "openvino-int8").accuracy
    assert recorded.split == "test" and recorded.n == len(images)
    at_gate = resolve_runtime(RuntimeConfig(device="cpu", precision=recorded.precision))
    engine = load_backend(artifact, "openvino-int8", at_gate)
    assert engine.precision == "int8" and "export openvino-int8" in engine.describe()
    logits = engine.logits(images)
    eager = load_backend(artifact, "eager", fp32).logits(images)
    assert not torch.equal(logits, eager)  # quantized: not the fp32 network under another name
    # The same images through the same engine: the gate's figures are what this export does, not assumed.
    agreement = float((logits.argmax(1) == eager.argmax(1)).float().mean())
    assert agreement == pytest.approx(recorded.agreement)
    assert float((logits - eager).abs().max()) == pytest.approx(recorded.max_logit_diff, rel=1e-4)


def test_openvino_backend_is_shared_safely_by_model_threads(exported_model, images, fp32):
    engine = load_backend(load_artifact(exported_model), "openvino-fp32", fp32)
    alone = engine.logits(images)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: engine.logits(images), range(8)))
    assert all(torch.equal(r, alone) for r in results)


def test_openvino_compiled_model_cache_is_private_and_reused(exported_model, tmp_path, fp32):
    artifact = load_artifact(exported_model)
    load_backend(artifact, "openvino-fp32", fp32)
    cache = tmp_path / "cache" / "openvino-cache"
    blobs = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert blobs and oct(cache.stat().st_mode & 0o777) == "0o700"
    load_backend(artifact, "openvino-fp32", fp32)  # a restart: read from the cache, nothing new compiled
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == blobs
    load_backend(artifact, "openvino-int8", fp32)  # another model: its own entry
    assert len(list(cache.iterdir())) > len(blobs)


def test_openvino_normalizes_uint8_crops_inside_its_model_with_the_artifacts_mean_and_std(tiny_run, tiny_data, fp32):
    trained = load_artifact(tiny_run)
    # Not ImageNet's constants: a PrePostProcessor built with anything but the artifact's own would be O(1) off.
    pre = Preprocess(image_size=trained.preprocess.image_size, mean=(0.2, 0.4, 0.6), std=(0.3, 0.2, 0.1))
    artifact = Artifact(trained.model, trained.metadata.model_copy(update={"preprocess": pre}))
    transform = eval_transform(pre)
    crops = np.stack([transform.pixels(decode_image(s.path)) for s in discover(tiny_data).splits["test"]])
    eager = load_backend(artifact, "eager", fp32).logits(transform.normalize(crops))
    engine = load_backend(artifact, "openvino", fp32)
    assert isinstance(engine, PixelBackend)
    from_pixels = engine.logits_pixels(crops)
    assert from_pixels.dtype == torch.float32 and from_pixels.shape == eager.shape
    assert (from_pixels - eager).abs().max() < PARITY_ATOL
    assert (from_pixels - engine.logits(transform.normalize(crops))).abs().max() < PARITY_ATOL


def test_predicting_compiles_only_the_uint8_model(exported_model, tiny_data, fp32, caplog):
    with caplog.at_level(logging.INFO, logger="dogclf.backends.openvino"):
        engine = InferenceEngine(load_artifact(exported_model), fp32, backend="openvino-int8")
        crops = np.stack([engine.pixels(s.path) for s in discover(tiny_data).splits["test"]])
        engine.logits_pixels(crops)
        assert "(pixels input) compiled" in caplog.text and "(float input)" not in caplog.text
        engine.logits(engine.transform.normalize(crops))  # a float batch (v2's FP32 input) compiles its own
    assert "(float input) compiled" in caplog.text
