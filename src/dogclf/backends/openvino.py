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
    """A compiled OpenVINO model on the CPU; one infer request per calling thread, so model threads can share it.

    It takes float NCHW batches (`logits`) or uint8 NHWC crops (`logits_pixels`), which a PrePostProcessor
    converts and normalizes inside the compiled model with the artifact's mean and std. Each input kind is
    compiled on first use, so a server that only sends crops never compiles the float model.
    """

    name = "openvino"

    def __init__(
        self,
        core: Any,
        model: Any,
        config: dict[str, Any],
        normalization: tuple[tuple[float, ...], tuple[float, ...]],
        precision: str,
        source: str,
    ) -> None:
        self.core, self.model, self.config, self.normalization = core, model, config, normalization
        self.precision, self.source = precision, source
        self.hint, self.threads = config["INFERENCE_PRECISION_HINT"], config["INFERENCE_NUM_THREADS"]
        self.streams = config.get("NUM_STREAMS", 1)
        self._compiled: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    @classmethod
    def load(cls, artifact: Artifact, choice: Choice, runtime: Runtime, streams: int = 1) -> OpenVINOBackend:
        """Read the export `choice` names (or convert the artifact's model here) and configure it for this runtime.

        `streams` is how many threads will call `logits` at once (the server's model threads): OpenVINO then
        runs that many inferences in parallel, splitting the threads between them, instead of queueing them.
        """
        from dogclf.data.preprocess import pixel_normalization

        ov = require_openvino()
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
        # int8 weights and activations; the hint sets the precision of what NNCF left unquantized.
        precision = "int8" if int8 else runtime.precision
        return cls(core, model, config, pixel_normalization(artifact.preprocess), precision, source)

    def _request(self, kind: str) -> Any:
        """This thread's infer request on the model compiled for `kind` ("float" or "pixels")."""
        requests = self._local.__dict__.setdefault("requests", {})
        if kind not in requests:
            requests[kind] = self._compile(kind).create_infer_request()
        return requests[kind]

    def _compile(self, kind: str) -> Any:
        with self._lock:
            if kind not in self._compiled:
                start = time.perf_counter()
                model = self.model if kind == "float" else self._pixel_model()
                self._compiled[kind] = self.core.compile_model(model, "CPU", self.config)
                log.info("openvino: %s (%s input) compiled in %.1f s", self.source, kind, time.perf_counter() - start)
            return self._compiled[kind]

    def _pixel_model(self) -> openvino.Model:
        """The model behind a PrePostProcessor: uint8 NHWC in, converted and normalized to float NCHW inside."""
        ov = require_openvino()
        from openvino.preprocess import PrePostProcessor

        shift, scale = self.normalization
        ppp = PrePostProcessor(self.model.clone())
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        ppp.input().preprocess().convert_element_type(ov.Type.f32).mean(list(shift)).scale(list(scale))
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        return ppp.build()

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """NCHW float32 batch -> float32 logits on the CPU."""
        array = np.ascontiguousarray(batch.detach().to("cpu", torch.float32).numpy())
        return self._infer("float", array)

    def logits_pixels(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 NxHxWx3 crops -> float32 logits on the CPU (normalized inside the compiled model)."""
        return self._infer("pixels", np.ascontiguousarray(batch, dtype=np.uint8))

    def _infer(self, kind: str, array: np.ndarray) -> torch.Tensor:
        out = self._request(kind).infer({0: array})[0]
        return torch.from_numpy(np.array(out, dtype=np.float32, copy=True))

    def describe(self) -> str:
        """Engine, model source, precision hint and threads, for logs."""
        return (
            f"openvino CPU ({self.source}), precision={self.precision} hint={self.hint} threads={self.threads} "
            f"streams={self.streams}"
        )
