"""Datasets: discovery, validation, the shared preprocessing and a synthetic sample dataset (loaded lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dogclf.lazy import lazy_exports

_EXPORTS = {
    "BadImage": "dogclf.data.check",
    "ScanReport": "dogclf.data.check",
    "scan_dataset": "dogclf.data.check",
    "DatasetLayout": "dogclf.data.discovery",
    "Sample": "dogclf.data.discovery",
    "class_name": "dogclf.data.discovery",
    "discover": "dogclf.data.discovery",
    "DecodeOptions": "dogclf.data.images",
    "ImageDecodeError": "dogclf.data.images",
    "decode_image": "dogclf.data.images",
    "Preprocess": "dogclf.data.preprocess",
    "eval_transform": "dogclf.data.preprocess",
    "load_eval_tensor": "dogclf.data.preprocess",
    "train_transform": "dogclf.data.preprocess",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from dogclf.data.check import BadImage, ScanReport, scan_dataset
    from dogclf.data.discovery import DatasetLayout, Sample, class_name, discover
    from dogclf.data.images import DecodeOptions, ImageDecodeError, decode_image
    from dogclf.data.preprocess import Preprocess, eval_transform, load_eval_tensor, train_transform

__getattr__ = lazy_exports(__name__, _EXPORTS)
