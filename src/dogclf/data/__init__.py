"""Datasets: discovery, validation, the shared preprocessing and a synthetic sample dataset."""

from dogclf.data.check import BadImage, ScanReport, scan_dataset
from dogclf.data.discovery import DatasetLayout, Sample, class_name, discover
from dogclf.data.images import DecodeOptions, ImageDecodeError, decode_image
from dogclf.data.preprocess import Preprocess, eval_transform, load_eval_tensor, train_transform

__all__ = [
    "BadImage",
    "DatasetLayout",
    "DecodeOptions",
    "ImageDecodeError",
    "Preprocess",
    "Sample",
    "ScanReport",
    "class_name",
    "decode_image",
    "discover",
    "eval_transform",
    "load_eval_tensor",
    "scan_dataset",
    "train_transform",
]
