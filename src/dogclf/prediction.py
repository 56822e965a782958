"""predict(): breed names with probabilities for image files or bytes."""

from __future__ import annotations

from pathlib import Path

from dogclf.artifact import Artifact, load_artifact
from dogclf.data.images import ImageSource, is_image_file
from dogclf.errors import DatasetError
from dogclf.inference import InferenceEngine, Prediction


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


def predict(
    artifact: Artifact | str | Path,
    images: list[ImageSource] | ImageSource,
    topk: int = 5,
    batch_size: int = 32,
    min_confidence: float = 0.0,
    raw_scores: bool = False,
) -> list[Prediction]:
    """Top-k breed names and calibrated probabilities for each image (paths or encoded bytes).

    An image whose top probability is below `min_confidence` is marked unknown; `raw_scores` skips the temperature.
    """
    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    sources = images if isinstance(images, list) else [images]
    engine = InferenceEngine(art, raw_scores=raw_scores)
    return engine.predict(sources, k=topk, batch_size=batch_size, min_confidence=min_confidence)
