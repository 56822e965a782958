"""Batch Transform results, SDK-free: each `<input key>.out` holds the endpoint's JSON answer for one image.

The answer is `{"model_version": ..., "predictions": [[{"label", "probability", "index"}, ...]]}` (one image
per record with strategy SingleRecord). These parsers work on bytes, so a downloaded folder reads the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from dogclf.prediction_table import PredictionRow
from dogclf.sagemaker.session import SageMakerError

OUT_SUFFIX = ".out"
EXPECTED = '{"predictions": [[{"label": ..., "probability": ...}, ...]]} for one image'


def _bad(where: str, why: str) -> SageMakerError:
    return SageMakerError(f"{where}: not a dogclf batch output ({why}); expected the endpoint's JSON {EXPECTED}")


def parse_out(body: bytes, where: str, path: str) -> PredictionRow:
    """One `.out` object -> the CSV row of its image `path`; `where` (the object's key) names it in errors."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _bad(where, "not JSON") from None
    images = doc.get("predictions") if isinstance(doc, dict) else None
    if not isinstance(images, list) or len(images) != 1 or not isinstance(images[0], list) or not images[0]:
        raise _bad(where, "no single-image predictions list")
    labels, probabilities = [], []
    for item in images[0]:
        label = item.get("label") if isinstance(item, dict) else None
        prob = item.get("probability") if isinstance(item, dict) else None
        if not isinstance(label, str) or isinstance(prob, bool) or not isinstance(prob, int | float):
            raise _bad(where, f"a prediction without a label and a numeric probability: {item!r:.80}")
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
    """The `.out` files under a downloaded output folder, keyed by their relative path (posix)."""
    if not folder.is_dir():
        raise SageMakerError(f"batch output folder not found: {folder} (give s3://... or a downloaded folder)")
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob(f"*{OUT_SUFFIX}") if p.is_file()}
