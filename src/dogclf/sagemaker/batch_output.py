"""Batch Transform results, SDK-free: each `<input key>.out` holds the endpoint's JSON answer for one image.

The answer is `{"model_version": ..., "predictions": [[{"label", "probability", "index"}, ...]]}` (one image
per record with strategy SingleRecord). These parsers work on bytes, so a downloaded folder reads the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dogclf.fsutil import read_bounded
from dogclf.prediction_format import MAX_TOPK
from dogclf.prediction_table import PredictionRow
from dogclf.sagemaker.session import SageMakerError

OUT_SUFFIX = ".out"
EXPECTED = '{"predictions": [[{"label": ..., "probability": ...}, ...]]} for one image'
MAX_OUT_BYTES = 1 << 20  # one image's top-k answer is a few KiB; a larger .out is not one of ours


def _bad(where: str, why: str) -> SageMakerError:
    return SageMakerError(f"{where}: not a dogclf batch output ({why}); expected the endpoint's JSON {EXPECTED}")


def _document(body: bytes, where: str) -> object:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _bad(where, "not JSON") from None
    except ValueError:  # an integer past Python's digit limit for str -> int
        raise _bad(where, "a number with more digits than can be read") from None


def _ranked(doc: object, where: str) -> list[object]:
    """The one image's list of predictions, at most MAX_TOPK of them."""
    images = doc.get("predictions") if isinstance(doc, dict) else None
    if not isinstance(images, list) or len(images) != 1 or not isinstance(images[0], list) or not images[0]:
        raise _bad(where, "no single-image predictions list")
    if len(images[0]) > MAX_TOPK:
        raise _bad(where, f"{len(images[0])} predictions, more than the top {MAX_TOPK} a transform job can ask for")
    return images[0]


def parse_out(body: bytes, where: str, path: str) -> PredictionRow:
    """One `.out` object -> the CSV row of its image `path`; `where` (the object's key) names it in errors.

    Each probability must be a finite number from 0 to 1 (NaN, infinities and huge integers are refused).
    """
    labels, probabilities = [], []
    for i, item in enumerate(_ranked(_document(body, where), where)):
        label = item.get("label") if isinstance(item, dict) else None
        prob = item.get("probability") if isinstance(item, dict) else None
        if not isinstance(label, str) or isinstance(prob, bool) or not isinstance(prob, int | float):
            raise _bad(where, f"a prediction without a label and a numeric probability: {item!r:.80}")
        if not 0 <= prob <= 1:
            raise _bad(where, f"predictions[0][{i}].probability is {prob!r:.40}, not a number from 0 to 1")
        labels.append(label)
        probabilities.append(float(prob))
    return PredictionRow(path, labels, probabilities)


def result_rows(
    outputs: Mapping[str, bytes], output_base: str = "", input_base: str = "", inputs: Sequence[str] = ()
) -> list[PredictionRow]:
    """Rows for `.out` objects keyed by their path under the output prefix, sorted by input.

    Errors name `output_base` + the key; paths are `input_base` + the input's relative key. Inputs (relative
    keys) with no `.out` become error rows; objects that do not end in `.out` are ignored.
    """
    rows = {
        rel[: -len(OUT_SUFFIX)]: parse_out(body, output_base + rel, input_base + rel[: -len(OUT_SUFFIX)])
        for rel, body in outputs.items()
        if rel.endswith(OUT_SUFFIX)
    }
    for rel in inputs:
        if rel not in rows:
            rows[rel] = PredictionRow(input_base + rel, error=f"no batch output {rel}{OUT_SUFFIX}")
    if not rows:
        raise SageMakerError(f"no {OUT_SUFFIX} objects in the batch output; did the transform job complete?")
    return [rows[rel] for rel in sorted(rows)]


def local_outputs(folder: Path) -> dict[str, bytes]:
    """The `.out` files under a downloaded output folder, keyed by their relative path (posix).

    Each is read up to MAX_OUT_BYTES; a symbolic link is refused rather than followed out of the folder.
    """
    if not folder.is_dir():
        raise SageMakerError(f"batch output folder not found: {folder} (give s3://... or a downloaded folder)")
    return {
        p.relative_to(folder).as_posix(): read_bounded(p, MAX_OUT_BYTES, "batch output", follow_links=False)
        for p in sorted(folder.rglob(f"*{OUT_SUFFIX}"))
        if p.is_symlink() or p.is_file()
    }


def read_out_object(client: Any, bucket: str, key: str, where: str) -> bytes:
    """One `.out` object from S3, refused (without reading it) when larger than MAX_OUT_BYTES."""
    response = client.get_object(Bucket=bucket, Key=key)
    size = response.get("ContentLength", 0)
    body = response["Body"].read(MAX_OUT_BYTES + 1) if size <= MAX_OUT_BYTES else b""
    response["Body"].close()
    if size > MAX_OUT_BYTES or len(body) > MAX_OUT_BYTES:
        raise SageMakerError(
            f"batch output {where} is larger than {MAX_OUT_BYTES >> 20} MiB, the most dogclf reads of it"
        )
    return body
