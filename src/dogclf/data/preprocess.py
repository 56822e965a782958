"""The one preprocessing definition: training augmentation, eval transform, normalization.

Training, evaluation, serving and the feature cache all build their transforms here, from a
`Preprocess` that is stored in every model artifact's metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
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


class EvalTransform:
    """Resize of the shorter side + center crop, then normalization in one step, straight to a tensor.

    The geometry of torchvision's Resize + CenterCrop (its output sizes and crop offsets). Bilinear resamples
    only the crop's box of the source, which halves the resize's cost; its pixels differ from resize-then-crop
    by at most one uint8 level of rounding. Bicubic, whose overshoot Pillow clips between its two passes,
    resizes the whole image and crops, as torchvision does.
    """

    def __init__(self, p: Preprocess) -> None:
        self.size, self.resize_size = p.image_size, p.resize_size
        self.resample = Image.Resampling.BICUBIC if p.interpolation == "bicubic" else Image.Resampling.BILINEAR
        shift, scale = pixel_normalization(p)
        self.shift = torch.tensor(shift).view(3, 1, 1)
        self.scale = 1 / torch.tensor(scale).view(3, 1, 1)
        geometry = [v2.Resize(p.resize_size, interpolation=_interp(p), antialias=True), v2.CenterCrop(p.image_size)]
        self.fallback = v2.Compose(geometry + _to_normalized_tensor(p))
        self.fallback_pixels = v2.Compose([*geometry, v2.PILToTensor()])

    def crop(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, resized width, resized height): torchvision's resize sizes and center-crop offsets."""
        short, long = min(width, height), max(width, height)
        resized_long = int(self.resize_size * long / short)
        new_w, new_h = (self.resize_size, resized_long) if width <= height else (resized_long, self.resize_size)
        return int(round((new_w - self.size) / 2)), int(round((new_h - self.size) / 2)), new_w, new_h

    def box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The region of the source image that becomes the crop."""
        left, top, new_w, new_h = self.crop(width, height)
        sx, sy = width / new_w, height / new_h
        return left * sx, top * sy, (left + self.size) * sx, (top + self.size) * sy

    def pixels(self, img: Image.Image) -> np.ndarray:
        """An RGB image -> the uint8 HxWx3 crop of image_size x image_size, before normalization."""
        if img.mode != "RGB" or self.resize_size < self.size:  # a crop beyond the image pads: torchvision's way
            return self.fallback_pixels(img).permute(1, 2, 0).numpy()
        if self.resample == Image.Resampling.BILINEAR:
            crop = img.resize((self.size, self.size), self.resample, box=self.box(*img.size))
        else:
            left, top, width, height = self.crop(*img.size)
            crop = img.resize((width, height), self.resample).crop((left, top, left + self.size, top + self.size))
        return np.array(crop)

    def normalize(self, pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 pixels, HxWx3 or NxHxWx3 -> normalized float32 CHW or NCHW."""
        tensor = torch.as_tensor(pixels)
        tensor = tensor.permute(2, 0, 1) if tensor.ndim == 3 else tensor.permute(0, 3, 1, 2)
        return tensor.float().sub_(self.shift).mul_(self.scale)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        """An RGB image -> normalized CHW float32 tensor of image_size x image_size."""
        if img.mode != "RGB" or self.resize_size < self.size:
            return self.fallback(img)
        return self.normalize(self.pixels(img))


def pixel_normalization(p: Preprocess) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(shift, scale) per RGB channel on 0-255 pixels: an input is (pixel - shift) / scale (mean and std x 255)."""
    return tuple(m * 255 for m in p.mean), tuple(s * 255 for s in p.std)


def eval_transform(p: Preprocess) -> EvalTransform:
    """Deterministic resize of the shorter side + center crop + normalization."""
    return EvalTransform(p)


def load_eval_tensor(source: ImageSource, p: Preprocess, max_pixels: int | None = None) -> torch.Tensor:
    """Decode one image (path or bytes) and apply the eval transform: the serving/prediction input."""
    return eval_transform(p)(decode_image(source, p.decode_options(max_pixels)))
