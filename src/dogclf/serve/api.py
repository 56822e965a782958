"""The one serving class: setup / decode / predict / encode over dogclf.inference.InferenceEngine."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dogclf.prediction_format import response_document
from dogclf.serve.codecs import (
    JSON,
    NPY,
    Item,
    PayloadTooLarge,
    RequestError,
    ResponseFormat,
    UnsupportedImageFormat,
    decode_body,
    encode_npy,
    image_formats,
    media_type,
)
from dogclf.serve.config import ServeConfig
from dogclf.serve.stages import StageHook

if TYPE_CHECKING:
    import torch

    from dogclf.artifact import Artifact
    from dogclf.inference import InferenceEngine

log = logging.getLogger("dogclf.serve")


class DeadlineExceeded(RequestError):
    """The request's deadline passed while its images were being decoded."""

    status = 504


class ClassifierAPI:
    """Loads an artifact once, then turns request bodies into top-k breed predictions."""

    on_stage: StageHook | None = None  # told the seconds of each image's decode and resize_crop (the server's)

    def __init__(self, model: str | Path | Artifact, config: ServeConfig | None = None) -> None:
        from dogclf.config import RuntimeConfig
        from dogclf.runtime import resolve_runtime

        cfg = config or ServeConfig()
        self.model, self.config = model, cfg
        self.runtime = resolve_runtime(RuntimeConfig(device=cfg.device, precision=cfg.precision))
        self.max_pixels, self.default_topk = cfg.max_pixels, cfg.default_topk
        self.max_images = cfg.max_images_per_request
        self.max_request_pixels = cfg.max_request_pixels
        self.min_confidence, self.raw_scores = cfg.min_confidence, cfg.raw_scores
        self.backend = cfg.backend
        self.streams = 1  # threads that will call predict() at once; the server sets its model-thread count
        self._engine: InferenceEngine | None = None

    @property
    def engine(self) -> InferenceEngine:
        """The loaded inference engine; raises until `setup()` has run."""
        if self._engine is None:
            raise RuntimeError("ClassifierAPI.setup() has not been called")
        return self._engine

    @property
    def ready(self) -> bool:
        """Whether `setup()` has loaded the model, for /ping and the readiness metric."""
        return self._engine is not None

    @property
    def version(self) -> str:
        """The loaded model's version, reported in responses and headers."""
        return self.engine.artifact.metadata.version

    def setup(self) -> None:
        """Load the artifact onto the chosen device/precision and run one warm-up forward."""
        from dogclf.artifact import Artifact, load_artifact
        from dogclf.inference import InferenceEngine

        artifact = self.model if isinstance(self.model, Artifact) else load_artifact(self.model)
        engine = InferenceEngine(
            artifact,
            self.runtime,
            max_pixels=self.max_pixels,
            raw_scores=self.raw_scores,
            backend=self.backend,
            streams=self.streams,
        )
        size = artifact.preprocess.image_size
        engine.logits_pixels(np.zeros((1, size, size, 3), np.uint8))
        self._engine = engine
        log.info(
            "serving %s (%s classes) on %s", artifact.metadata.version, len(artifact.class_names), engine.describe()
        )

    def decode(self, body: bytes | str, content_type: str | None, deadline: float | None = None) -> list[np.ndarray]:
        """Request body -> one uint8 HxWx3 crop per image (training's eval transform, before normalization).

        Every image's size is read from its header first, against the per-image and per-request pixel
        limits; decoding stops once `deadline` (time.monotonic()) has passed.
        """
        return self.decode_images(decode_body(body, content_type, self.max_images), content_type, deadline)

    def decode_images(
        self, items: Sequence[Item], content_type: str | None, deadline: float | None = None
    ) -> list[np.ndarray]:
        """Images already split from a request -> uint8 crops, under the same limits as `decode`."""
        formats = image_formats(content_type)
        self._check_pixels(items, formats, content_type)
        tensors = []
        for i, item in enumerate(items):
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded(f"deadline passed after decoding {i} of {len(items)} images")
            tensors.append(self._preprocess(item, _where(i, len(items)), formats, content_type))
        return tensors

    def _check_pixels(self, items: Sequence[Item], formats: tuple[str, ...], content_type: str | None) -> None:
        """Refuse an image over max_pixels (400) or a request over max_request_pixels (413) before decoding."""
        from dogclf.data.images import ImageDecodeError, image_size

        total = 0
        for i, item in enumerate(items):
            where = _where(i, len(items))
            if isinstance(item, np.ndarray):
                height, width = item.shape[:2]
            else:
                try:
                    width, height = image_size(item, formats)
                except ImageDecodeError as exc:
                    raise _request_error(exc, where, content_type) from None
            if width * height > self.max_pixels:
                raise RequestError(
                    f"{where}{width}x{height} = {width * height} pixels exceeds the limit of {self.max_pixels}"
                )
            total += width * height
            if total > self.max_request_pixels:
                raise PayloadTooLarge(
                    f"the first {i + 1} images hold {total} pixels, over the per-request budget of "
                    f"{self.max_request_pixels} (max_request_pixels); send fewer or smaller images"
                )

    def _preprocess(self, item: Item, where: str, formats: tuple[str, ...], content_type: str | None) -> np.ndarray:
        from dataclasses import replace

        from PIL import Image

        from dogclf.data.images import ImageDecodeError, decode_image

        start = time.perf_counter()
        if isinstance(item, np.ndarray):
            image = Image.fromarray(np.ascontiguousarray(item))
        else:
            try:
                image = decode_image(item, replace(self.engine.decode_options, formats=formats))
            except ImageDecodeError as exc:
                raise _request_error(exc, where, content_type) from None
        decoded = time.perf_counter()
        crop = self.engine.transform.pixels(image)
        if self.on_stage is not None:
            self.on_stage("decode", decoded - start)
            self.on_stage("resize_crop", time.perf_counter() - decoded)
        return crop

    def predict(self, images: Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
        """uint8 HxWx3 crops and/or normalized CHW float tensors -> float32 logits (N, classes), in order.

        Crops go to the engine as one uint8 batch (normalized inside the engine when it can); normalized
        tensors (the v2 FP32 input) as one float batch.
        """
        import torch

        pixel_rows = [i for i, image in enumerate(images) if isinstance(image, np.ndarray)]
        tensor_rows = [i for i, image in enumerate(images) if not isinstance(image, np.ndarray)]
        if not tensor_rows:
            return self.engine.logits_pixels(np.stack(images))
        if not pixel_rows:
            return self.engine.logits(torch.stack(list(images)))
        from_pixels = self.engine.logits_pixels(np.stack([images[i] for i in pixel_rows]))
        out = from_pixels.new_empty(len(images), from_pixels.shape[1])
        out[pixel_rows] = from_pixels
        out[tensor_rows] = self.engine.logits(torch.stack([images[i] for i in tensor_rows]))
        return out

    def encode(self, logits: torch.Tensor, fmt: ResponseFormat) -> tuple[bytes, str]:
        """Logits -> (body, content type): JSON top-k breeds with calibrated probabilities, or raw .npy logits.

        JSON also holds, per image, the answer ("labels": the top label or "unknown") and the "unknown" flags.
        """
        if fmt.media_type == NPY:
            return encode_npy(logits.numpy().astype(np.float32, copy=False)), NPY
        predictions = self.engine.topk(logits, fmt.topk, self.min_confidence)
        doc = response_document(predictions, self.version, self.engine.temperature)
        return json.dumps(doc).encode("utf-8"), JSON


def _where(index: int, count: int) -> str:
    return f"image {index + 1} of {count}: " if count > 1 else ""


def _request_error(exc: Exception, where: str, content_type: str | None) -> RequestError:
    """An image decode failure as the client's error: 415 for a refused format, else 400."""
    from dogclf.data.images import ImageFormatError

    if isinstance(exc, ImageFormatError):
        return UnsupportedImageFormat(f"{where}Content-Type {media_type(content_type)[0]!r}: {exc}")
    return RequestError(f"{where}{exc}")
