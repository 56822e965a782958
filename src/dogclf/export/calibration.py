"""Real images for post-training quantization and the split the accuracy gate measures on."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from dogclf.artifact import Artifact
from dogclf.data.dataset import ImageDataset, default_workers, make_loader
from dogclf.data.discovery import DatasetLayout
from dogclf.data.preprocess import eval_transform
from dogclf.data.splits import SplitRecord, resolve_data
from dogclf.errors import DatasetError
from dogclf.export.settings import DEFAULT_CALIBRATION_IMAGES


def held_out_split(layout: DatasetLayout, data: str | Path, split: str | None = None) -> str:
    """The split the accuracy gate measures on: `split` if given, else test when it has images, else valid."""
    if split is not None:
        if not layout.splits.get(split):
            raise DatasetError(f"{data}: --eval-split {split} has no images (have: {sorted(layout.splits)})")
        return split
    for name in ("test", "valid"):
        if layout.splits.get(name):
            return name
    raise DatasetError(f"{data}: no test or valid images to check the export's accuracy on")


def run_layout(artifact: Artifact, data: str | Path) -> DatasetLayout:
    """`data` split as the artifact's split record says (see dogclf.data.splits)."""
    return resolve_data(data, SplitRecord.read(artifact.path) if artifact.path else None).layout


def calibration_batches(
    artifact: Artifact,
    data: str | Path,
    split: str = "train",
    limit: int = DEFAULT_CALIBRATION_IMAGES,
    batch_size: int = 1,
) -> list[np.ndarray]:
    """Up to `limit` images of `split` (a seeded sample), with the artifact's eval preprocessing, as NCHW arrays.

    Batches of one by default: NNCF and onnxruntime gather statistics per item, and a dynamic batch axis
    accepts any size later.
    """
    layout = run_layout(artifact, data)
    samples = layout.splits.get(split) or []
    if not samples:
        raise DatasetError(f"{data}: calibration split {split!r} has no images (have: {sorted(layout.splits)})")
    if limit < 1:
        raise DatasetError(f"calibration needs at least one image, got limit={limit}")
    chosen = random.Random(0).sample(samples, min(limit, len(samples)))
    pre = artifact.preprocess
    dataset = ImageDataset(chosen, eval_transform(pre), pre.decode_options())
    workers = default_workers(None) if len(chosen) > 64 else 0  # worker start-up outweighs a few decodes
    loader = make_loader(dataset, batch_size, shuffle=False, workers=workers, seed=0)
    with torch.inference_mode():
        return [np.ascontiguousarray(images.numpy()) for images, _ in loader]
