"""Inference core shared by `predict`, `evaluate` users and the serving handlers."""

from __future__ import annotations

import numpy as np
import torch

from dogclf.artifact import Artifact
from dogclf.backends.base import Backend, PixelBackend
from dogclf.backends.load import load_backend
from dogclf.config import DEFAULT_MAX_PIXELS, RuntimeConfig
from dogclf.data.images import ImageSource, decode_image
from dogclf.data.preprocess import EvalTransform, eval_transform
from dogclf.prediction_format import Prediction, is_unknown
from dogclf.runtime import Runtime, resolve_runtime


def pixel_logits(backend: Backend, transform: EvalTransform, batch: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 NxHxWx3 crops -> float32 logits: normalized inside the engine's model when it can, else by `transform`."""
    if isinstance(backend, PixelBackend):
        return backend.logits_pixels(np.asarray(batch))
    return backend.logits(transform.normalize(batch))


def temperature_of(artifact: Artifact, raw_scores: bool = False) -> float:
    """The temperature probabilities are computed with: the artifact's fitted one, or 1 for raw scores."""
    return 1.0 if raw_scores else artifact.metadata.temperature


class InferenceEngine:
    """Decode + preprocess (from the artifact's metadata) + batched forward + calibrated top-k.

    Probabilities are softmax(logits / T) with the artifact's fitted temperature T (T=1 with `raw_scores`).
    The forward pass runs on `backend` (see dogclf.backends.select.choose_backend); everything around it is
    the same on every backend.
    """

    def __init__(
        self,
        artifact: Artifact,
        runtime: Runtime | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        raw_scores: bool = False,
        backend: str = "auto",
        streams: int = 1,
    ) -> None:
        self.artifact = artifact
        self.temperature = temperature_of(artifact, raw_scores)
        self.runtime = runtime or resolve_runtime(RuntimeConfig(device="cpu"))
        self.backend = load_backend(artifact, backend, self.runtime, streams)
        self.transform = eval_transform(artifact.preprocess)
        self.decode_options = artifact.preprocess.decode_options(max_pixels)

    def preprocess(self, source: ImageSource) -> torch.Tensor:
        """One image (path or encoded bytes) -> normalized CHW float tensor."""
        return self.transform(decode_image(source, self.decode_options))

    def pixels(self, source: ImageSource) -> np.ndarray:
        """One image (path or encoded bytes) -> its uint8 HxWx3 crop, before normalization."""
        return self.transform.pixels(decode_image(source, self.decode_options))

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Normalized NCHW float batch -> float32 logits on the CPU."""
        return self.backend.logits(batch)

    def logits_pixels(self, batch: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 NxHxWx3 crops -> float32 logits on the CPU (what `predict` and the server run)."""
        return pixel_logits(self.backend, self.transform, batch)

    def describe(self) -> str:
        """The backend and precision the network runs on, for logs."""
        return self.backend.describe()

    def topk(self, logits: torch.Tensor, k: int = 5, min_confidence: float = 0.0) -> list[Prediction]:
        """Calibrated probabilities of the k best classes, with breed names; unknown below `min_confidence`."""
        from dogclf.calibration import probabilities

        k = max(1, min(k, logits.shape[1]))
        values, indices = probabilities(logits, self.temperature).topk(k, dim=1)
        names = self.artifact.class_names
        return [
            Prediction(
                [names[i] for i in idx.tolist()],
                [round(float(v), 6) for v in vals],
                idx.tolist(),
                is_unknown(float(vals[0]), min_confidence),
            )
            for vals, idx in zip(values, indices, strict=True)
        ]
