"""predict(): breed names with probabilities for image files or bytes, in batches, on any backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from dogclf.artifact import Artifact, load_artifact
from dogclf.config import RuntimeConfig
from dogclf.data.images import ImageDecodeError, ImageSource, is_image_file
from dogclf.errors import DatasetError
from dogclf.inference import InferenceEngine
from dogclf.prediction_format import FileResult, Prediction
from dogclf.runtime import resolve_runtime


def collect_images(inputs: list[str | Path]) -> list[Path]:
    """Expand folders (recursively, sorted) and check files exist."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p)))
        elif path.is_file():
            files.append(path)
        else:
            raise DatasetError(f"image not found: {path}")
    if not files:
        raise DatasetError(f"no images found in {[str(i) for i in inputs]}")
    return files


def _engine(artifact: Artifact | str | Path, raw_scores: bool, backend: str, precision: str, device: str):
    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    runtime = resolve_runtime(RuntimeConfig(device=device, precision=precision))
    return InferenceEngine(art, runtime, raw_scores=raw_scores, backend=backend)


def _batches(
    engine: InferenceEngine,
    sources: list[ImageSource],
    topk: int,
    batch_size: int,
    min_confidence: float,
    keep_errors: bool,
    progress: Callable[[int], object] | None = None,
) -> list[Prediction | str]:
    """Each source's Prediction, or (with `keep_errors`) its decode error message; in the sources' order."""
    out: list[Prediction | str] = []
    for start in range(0, len(sources), batch_size):
        chunk, slots, crops = sources[start : start + batch_size], [], []
        for source in chunk:
            try:
                crops.append(engine.pixels(source))
                slots.append(len(out))
                out.append("")
            except ImageDecodeError as exc:
                if not keep_errors:
                    raise
                out.append(str(exc).removeprefix(f"{source}: "))
        if crops:
            predictions = engine.topk(engine.logits_pixels(np.stack(crops)), topk, min_confidence)
            for slot, pred in zip(slots, predictions, strict=True):
                out[slot] = pred
        if progress is not None:
            progress(len(chunk))
    return out


def predict(
    artifact: Artifact | str | Path,
    images: list[ImageSource] | ImageSource,
    topk: int = 5,
    batch_size: int = 32,
    min_confidence: float = 0.0,
    raw_scores: bool = False,
    backend: str = "auto",
    precision: str = "auto",
    device: str = "cpu",
) -> list[Prediction]:
    """Top-k breed names and calibrated probabilities for each image (paths or encoded bytes).

    An image whose top probability is below `min_confidence` is marked unknown; `raw_scores` skips the temperature;
    the network runs on `backend` (dogclf.backends.select) at `precision` on `device`. A bad image raises.
    """
    sources = images if isinstance(images, list) else [images]
    engine = _engine(artifact, raw_scores, backend, precision, device)
    answers = _batches(engine, sources, topk, batch_size, min_confidence, keep_errors=False)
    return [a for a in answers if isinstance(a, Prediction)]  # all of them: a bad image raised


def predict_files(
    artifact: Artifact | str | Path,
    paths: list[Path],
    topk: int = 5,
    batch_size: int = 32,
    min_confidence: float = 0.0,
    raw_scores: bool = False,
    backend: str = "auto",
    precision: str = "auto",
    device: str = "auto",
    progress: Callable[[int], object] | None = None,
) -> list[FileResult]:
    """predict() for image files, each file's result on its own: an undecodable file is an error, not a stop.

    `progress` is called with the number of files of each finished batch.
    """
    engine = _engine(artifact, raw_scores, backend, precision, device)
    answers = _batches(engine, list(paths), topk, batch_size, min_confidence, keep_errors=True, progress=progress)
    return [
        FileResult(path, answer, None) if isinstance(answer, Prediction) else FileResult(path, None, answer)
        for path, answer in zip(paths, answers, strict=True)
    ]
