"""The torch engines (eager, torch.compile) against eager fp32 on real images of the dataset."""

from __future__ import annotations

import pytest
import torch

from dogclf.artifact import load_artifact
from dogclf.config import RuntimeConfig
from dogclf.inference import InferenceEngine
from dogclf.prediction import collect_images
from dogclf.runtime import resolve_runtime

# fp32 engines reorder the same float32 arithmetic (folded batch norms, fused kernels): logits agree to
# float32 rounding, scaled by the logits' size.
FP32_RTOL = 1e-4


def _engine(tiny_run, backend: str, precision: str = "fp32") -> InferenceEngine:
    runtime = resolve_runtime(RuntimeConfig(device="cpu", precision=precision))
    return InferenceEngine(load_artifact(tiny_run), runtime, backend=backend)


@pytest.fixture(scope="module")
def images(tiny_data):
    return collect_images([tiny_data / "test"])


@pytest.fixture(scope="module")
def reference(tiny_run, images):
    """Eager fp32: the artifact's own model, unfolded, as training evaluated it."""
    engine = _engine(tiny_run, "eager")
    batch = torch.stack([engine.preprocess(p) for p in images])
    with torch.inference_mode():
        return batch, engine.artifact.model.eval()(batch)


@pytest.mark.parametrize("backend", ["eager", "compile"])
def test_fp32_logits_match_the_artifacts_model(tiny_run, reference, backend):
    batch, expected = reference
    engine = _engine(tiny_run, backend)
    assert engine.backend.name == backend and engine.backend.precision == "fp32"
    got = engine.logits(batch)
    scale = expected.abs().max()
    assert torch.allclose(got, expected, rtol=0, atol=float(FP32_RTOL * scale))
    # Another batch size reuses the compiled graph (dynamic batch dimension) and still agrees.
    assert torch.allclose(engine.logits(batch[:3]), expected[:3], rtol=0, atol=float(FP32_RTOL * scale))


def test_backends_share_preprocessing_temperature_and_topk(tiny_run, images):
    eager, compiled = _engine(tiny_run, "eager"), _engine(tiny_run, "compile")
    a, b = (e.topk(e.logits(torch.stack([e.preprocess(i) for i in images])), 2) for e in (eager, compiled))
    assert eager.temperature == compiled.temperature == load_artifact(tiny_run).metadata.temperature
    assert [p.indices for p in a] == [p.indices for p in b]
    assert [v for p in a for v in p.probabilities] == pytest.approx([v for p in b for v in p.probabilities], abs=1e-5)


def test_eager_bf16_agrees_with_fp32_on_top1(tiny_run, reference):
    batch, expected = reference
    got = _engine(tiny_run, "eager", "bf16").logits(batch)
    assert got.dtype == torch.float32
    agreement = (got.argmax(1) == expected.argmax(1)).float().mean().item()
    assert agreement >= 0.9, f"bf16 top-1 agreement with fp32 {agreement:.2f}"
