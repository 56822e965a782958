"""Build the chosen backend for an artifact."""

from __future__ import annotations

import logging

import numpy as np
import torch

from dogclf.artifact import Artifact
from dogclf.backends.base import Backend, PixelBackend
from dogclf.backends.exports import ExportMetadata
from dogclf.backends.select import Choice, check_installed, choose_backend
from dogclf.errors import ArtifactError, DogclfError
from dogclf.runtime import Runtime

log = logging.getLogger(__name__)


def load_backend(artifact: Artifact, backend: str | Choice, runtime: Runtime, streams: int = 1) -> Backend:
    """The network of `artifact` on the engine `backend` names (see choose_backend), ready to run.

    A `Choice` is used as given: `dogclf export` evaluates an export it has not published yet that way.
    `streams`: how many threads will run batches at once (engines that schedule them themselves use it).
    An export that fails its checks or its engine is refused; under `auto` it is skipped for eager torch.
    """
    if isinstance(backend, Choice):
        choice = check_installed(backend)
    else:
        choice = choose_backend(artifact.path, backend, cpu=runtime.device.type == "cpu")
    export = choice.export
    if export is None:
        return _engine(artifact, choice, runtime, streams)
    try:
        return _checked_export(artifact, choice, export, runtime, streams)
    except Exception as exc:  # an engine's own error on a bad file becomes one line, or eager under auto
        reason = str(exc) if isinstance(exc, DogclfError) else f"{choice.folder}: {_engine_error(choice, exc)}"
        if backend != "auto":
            if isinstance(exc, DogclfError):
                raise
            raise ArtifactError(reason) from None
        log.warning("export %s not used (%s); serving with eager torch", export.name, reason)
        return _engine(artifact, Choice("eager"), runtime, streams)


def _engine_error(choice: Choice, exc: Exception) -> str:
    """One line for an engine's failure on an export file."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{choice.engine} cannot run it ({type(exc).__name__}: {first[:300]})"


def _checked_export(
    artifact: Artifact, choice: Choice, export: ExportMetadata, runtime: Runtime, streams: int
) -> Backend:
    """An export's engine, refused unless it takes the model's image size and gives one logit per class."""
    size, classes = artifact.preprocess.image_size, len(artifact.class_names)
    if export.image_size != size:
        raise ArtifactError(f"{choice.folder}: exported for {export.image_size} px images, the model takes {size}")
    engine = _engine(artifact, choice, runtime, streams)
    if isinstance(engine, PixelBackend):  # uint8 crops: what predict, evaluate and serve send
        width = tuple(engine.logits_pixels(np.zeros((1, size, size, 3), np.uint8)).shape)
    else:
        width = tuple(engine.logits(torch.zeros(1, 3, size, size)).shape)
    if width != (1, classes):
        raise ArtifactError(
            f"{choice.folder}: the export gives logits of shape {width} for one image; the model has {classes} classes"
        )
    return engine


def _engine(artifact: Artifact, choice: Choice, runtime: Runtime, streams: int) -> Backend:
    """Build the engine of `choice`."""
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
