"""Per backend: what `dogclf serve --backend X` answers equals offline prediction on the same backend."""

from __future__ import annotations

import json
import os

import pytest
import requests

from dogclf.artifact import load_artifact
from dogclf.config import RuntimeConfig
from dogclf.inference import InferenceEngine
from dogclf.prediction import collect_images, predict
from dogclf.runtime import resolve_runtime
from dogclf.serve.local import LocalEndpoint
from dogclf.system import cpu_count


@pytest.mark.parametrize("backend", ["eager", "compile", "openvino", "onnx"])
def test_served_probabilities_equal_offline_on_the_same_backend(tiny_run, tiny_data, backend):
    images = collect_images([tiny_data / "test"])
    runtime = resolve_runtime(RuntimeConfig(device="cpu", precision="fp32"))
    engine = InferenceEngine(load_artifact(tiny_run), runtime, backend=backend)
    expected = predict(tiny_run, images, topk=3, backend=backend, precision="fp32")  # offline, as `dogclf predict`
    args = ("--backend", backend, "--precision", "fp32", "--threads", "1")
    with LocalEndpoint(tiny_run, *args) as endpoint:
        served = [
            requests.post(
                f"{endpoint.url}/invocations",
                data=path.read_bytes(),
                params={"topk": 3},
                headers={"Content-Type": "image/jpeg"},
                timeout=60,
            ).json()["predictions"][0]
            for path in images
        ]
        log = endpoint.log_text()
    assert f"on {engine.describe().split(',')[0]}" in log  # the server says which engine it runs
    line = next(line for line in log.splitlines() if '"event": "listening"' in line)
    workers = json.loads(line[line.index("{") :])["workers"]
    # The server sizes its pool from the cores torch may use: OMP_NUM_THREADS (inherited from here) or the CPUs.
    cpus = int(os.environ.get("OMP_NUM_THREADS") or 0) or cpu_count()
    assert workers == (1 if backend == "openvino" else min(4, cpus))  # OpenVINO: its own thread pool
    for answer, exp in zip(served, expected, strict=True):
        assert [c["index"] for c in answer] == exp.indices
        assert [c["probability"] for c in answer] == pytest.approx(exp.probabilities, abs=2e-6)
