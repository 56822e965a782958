"""OpenVINO on the CPU: an exported IR (fp32 or NNCF int8) or the artifact converted in memory.

Compiled models are cached on disk (OpenVINO's CACHE_DIR, in the user's private dogclf cache folder, since a
model folder may be read-only in a container), so a restart skips most of the compile.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dogclf.artifact import Artifact
from dogclf.backends.select import Choice
from dogclf.runtime import Runtime

if TYPE_CHECKING:
    import openvino

log = logging.getLogger(__name__)

# runtime.precision -> INFERENCE_PRECISION_HINT: the precision OpenVINO runs the non-int8 parts of the graph in.
HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
CACHE_FOLDER = "openvino-cache"


def require_openvino() -> Any:
    """The openvino module, or MissingExtraError naming the extra."""
    from dogclf.extras import require

    return require("openvino", "openvino", "the OpenVINO backend and export need OpenVINO")


def convert_torch(model: torch.nn.Module, image_size: int) -> openvino.Model:
    """`model` (eval mode, fp32) as an OpenVINO model with a dynamic batch axis; OpenVINO folds batch norms."""
    ov = require_openvino()
    example = torch.zeros(1, 3, image_size, image_size)
    with torch.no_grad(), warnings.catch_warnings():
        # OpenVINO traces the model with torch.jit.trace, which torch now flags as deprecated on every call.
        warnings.filterwarnings("ignore", message=".*torch.jit.trace", category=FutureWarning)
        converted = ov.convert_model(model.eval(), example_input=example, input=[-1, 3, image_size, image_size])
    converted.inputs[0].get_tensor().set_names({"input"})
    return converted


def compiled_cache() -> Path:
    """OpenVINO's compiled-model cache: a folder of the user's private dogclf cache (DOGCLF_MODEL_CACHE)."""
    from dogclf.cache import cache_root

    folder = cache_root() / CACHE_FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


class OpenVINOBackend:
    """A compiled OpenVINO model on the CPU; one infer request per calling thread, so model threads can share it."""

    name = "openvino"

    def __init__(self, compiled: Any, precision: str, source: str, hint: str, threads: int, streams: int = 1) -> None:
        self.compiled = compiled
        self.precision = precision
        self.source, self.hint, self.threads, self.streams = source, hint, threads, streams
        self._local = threading.local()

    @classmethod
    def load(cls, artifact: Artifact, choice: Choice, runtime: Runtime, streams: int = 1) -> OpenVINOBackend:
        """Compile the export `choice` names (or the artifact's model, converted here) for this runtime.

        `streams` is how many threads will call `logits` at once (the server's model threads): OpenVINO then
        runs that many inferences in parallel, splitting the threads between them, instead of queueing them.
        """
        ov = require_openvino()
        start = time.perf_counter()
        core = ov.Core()
        core.set_property({"CACHE_DIR": str(compiled_cache())})
        if choice.folder is not None and choice.export is not None:
            from dogclf.backends.exports import verify_export

            verify_export(choice.folder, choice.export)
            model = core.read_model(choice.folder / choice.export.files[0])
            source, int8 = f"export {choice.export.name}", choice.export.precision == "int8"
        else:
            model = convert_torch(artifact.model, artifact.preprocess.image_size)
            source, int8 = "converted in memory", False
        hint, threads = HINTS.get(runtime.precision, "f32"), torch.get_num_threads()
        config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads}
        config |= {"NUM_STREAMS": streams} if streams > 1 else {"PERFORMANCE_HINT": "LATENCY"}
        compiled = core.compile_model(model, "CPU", config)
        log.info("openvino: %s compiled in %.1f s", source, time.perf_counter() - start)
        # int8 weights and activations; the hint sets the precision of what NNCF left unquantized.
        return cls(compiled, "int8" if int8 else runtime.precision, source, hint, threads, streams)

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """NCHW float32 batch -> float32 logits on the CPU."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        array = np.ascontiguousarray(batch.detach().to("cpu", torch.float32).numpy())
        out = request.infer({0: array})[0]
        return torch.from_numpy(np.array(out, dtype=np.float32, copy=True))

    def describe(self) -> str:
        """Engine, model source, precision hint and threads, for logs."""
        return (
            f"openvino CPU ({self.source}), precision={self.precision} hint={self.hint} threads={self.threads} "
            f"streams={self.streams}"
        )
