"""The one preprocessing definition: training augmentation, eval transform, normalization.

Training, evaluation, serving and the feature cache all build their transforms here, from a
`Preprocess` that is stored in every model artifact's metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from torchvision.transforms import v2

from dogclf.data.images import DecodeOptions, ImageSource, decode_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Preprocess(BaseModel):
    """Geometry and normalization of model inputs; serialized into the artifact metadata."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: int = Field(224, ge=16)
    resize_size: int = Field(256, ge=16)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
    train_scale: tuple[float, float] = (0.35, 1.0)
    hflip: bool = True

    @classmethod
    def for_size(cls, image_size: int, resize_size: int | None = None) -> Preprocess:
        """The standard 0.875 crop ratio unless a resize size is given."""
        return cls(image_size=image_size, resize_size=resize_size or round(image_size / 0.875))

    def decode_options(self, max_pixels: int | None = None) -> DecodeOptions:
        """Decode no smaller than the resize target, so draft mode never costs accuracy."""
        kwargs = {"max_pixels": max_pixels} if max_pixels else {}
        return DecodeOptions(min_side=self.resize_size, **kwargs)


def _interp(p: Preprocess) -> v2.InterpolationMode:
    return v2.InterpolationMode.BICUBIC if p.interpolation == "bicubic" else v2.InterpolationMode.BILINEAR


def _to_normalized_tensor(p: Preprocess) -> list[v2.Transform]:
    return [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(p.mean, p.std)]


def train_transform(p: Preprocess, augment: bool = True) -> Callable[[Image.Image], torch.Tensor]:
    """Random resized crop + flip (or the eval transform when augmentation is off)."""
    if not augment:
        return eval_transform(p)
    steps: list[v2.Transform] = [
        v2.RandomResizedCrop(p.image_size, scale=p.train_scale, interpolation=_interp(p), antialias=True)
    ]
    if p.hflip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps + _to_normalized_tensor(p))


def eval_transform(p: Preprocess) -> Callable[[Image.Image], torch.Tensor]:
    """Deterministic resize of the shorter side + center crop + normalization."""
    return v2.Compose(
        [v2.Resize(p.resize_size, interpolation=_interp(p), antialias=True), v2.CenterCrop(p.image_size)]
        + _to_normalized_tensor(p)
    )


def load_eval_tensor(source: ImageSource, p: Preprocess, max_pixels: int | None = None) -> torch.Tensor:
    """Decode one image (path or bytes) and apply the eval transform: the serving/prediction input."""
    return eval_transform(p)(decode_image(source, p.decode_options(max_pixels)))
