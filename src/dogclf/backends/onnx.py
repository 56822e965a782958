"""ONNX Runtime on the CPU: an exported ONNX file (fp32 or QDQ int8) or the artifact exported in memory."""

from __future__ import annotations

import io
import logging
import time
import warnings
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from dogclf.artifact import Artifact
from dogclf.backends.select import Choice
from dogclf.runtime import Runtime

log = logging.getLogger(__name__)

OPSET = 17
INPUT_NAME = "input"


def require_onnxruntime() -> Any:
    """The onnxruntime module, or MissingExtraError naming the extra."""
    from dogclf.extras import require

    require("onnx", "onnx", "the ONNX backend and export need onnx and onnxruntime")
    return require("onnxruntime", "onnx", "the ONNX backend and export need onnx and onnxruntime")


def export_onnx(model: torch.nn.Module, image_size: int, f: str | Path | IO[bytes]) -> None:
    """Write `model` (eval mode) as ONNX (opset 17, dynamic batch axis) to a path or a binary file."""
    require_onnxruntime()
    example = torch.zeros(1, 3, image_size, image_size)
    axes = {INPUT_NAME: {0: "batch"}, "logits": {0: "batch"}}
    with warnings.catch_warnings():
        # The TorchScript exporter needs only the onnx package; the dynamo one would add onnxscript and
        # onnx-ir to the extra for no gain on these convolutional models.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model.eval(),
            (example,),
            f,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=OPSET,
        )


class OnnxBackend:
    """An onnxruntime session on the CPUExecutionProvider with all graph optimizations."""

    name = "onnx"

    def __init__(self, session: Any, precision: str, source: str, threads: int) -> None:
        self.session = session
        self.precision = precision
        self.source, self.threads = source, threads
        self.input_name = session.get_inputs()[0].name

    @classmethod
    def load(cls, artifact: Artifact, choice: Choice, runtime: Runtime) -> OnnxBackend:
        """A session on the export `choice` names, or on the artifact exported to ONNX in memory.

        onnxruntime's CPU provider computes in fp32 (int8 for a QDQ export): a bf16 runtime has no effect here.
        """
        ort = require_onnxruntime()
        start = time.perf_counter()
        if choice.folder is not None and choice.export is not None:
            from dogclf.backends.exports import read_onnx

            model = read_onnx(choice.folder, choice.export)  # checked bytes: the engine opens no file itself
            source, precision = f"export {choice.export.name}", choice.export.precision
        else:
            buffer = io.BytesIO()
            export_onnx(artifact.model, artifact.preprocess.image_size, buffer)
            model, source, precision = buffer.getvalue(), "exported in memory", "fp32"
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        log.info("onnxruntime: %s loaded in %.1f s", source, time.perf_counter() - start)
        return cls(session, precision, source, options.intra_op_num_threads)

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """NCHW float32 batch -> float32 logits on the CPU (session.run is thread-safe)."""
        array = np.ascontiguousarray(batch.detach().to("cpu", torch.float32).numpy())
        out = self.session.run(None, {self.input_name: array})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))

    def describe(self) -> str:
        """Engine, model source, precision and threads, for logs."""
        return f"onnxruntime CPU ({self.source}), precision={self.precision} threads={self.threads}"
