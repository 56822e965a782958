"""Build the chosen backend for an artifact."""

from __future__ import annotations

import logging

from dogclf.artifact import Artifact
from dogclf.backends.base import Backend
from dogclf.backends.select import Choice, check_installed, choose_backend
from dogclf.runtime import Runtime

log = logging.getLogger(__name__)


def load_backend(artifact: Artifact, backend: str | Choice, runtime: Runtime, streams: int = 1) -> Backend:
    """The network of `artifact` on the engine `backend` names (see choose_backend), ready to run.

    A `Choice` is used as given: `dogclf export` evaluates an export it has not published yet that way.
    `streams`: how many threads will run batches at once (engines that schedule them themselves use it).
    """
    if isinstance(backend, Choice):
        choice = check_installed(backend)
    else:
        choice = choose_backend(artifact.path, backend, cpu=runtime.device.type == "cpu")
    if choice.engine == "eager":
        from dogclf.backends.eager import EagerBackend

        return EagerBackend(artifact.model, runtime)
    if choice.engine == "compile":
        from dogclf.backends.compiled import CompiledBackend

        return CompiledBackend(artifact.model, runtime)
    if choice.engine == "openvino":
        from dogclf.backends.openvino import OpenVINOBackend

        return OpenVINOBackend.load(artifact, choice, runtime, streams)
    from dogclf.backends.onnx import OnnxBackend

    return OnnxBackend.load(artifact, choice, runtime)
