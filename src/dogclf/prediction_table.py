"""The predictions CSV written by `dogclf predict --output` and `dogclf sagemaker batch-results`.

Its columns are defined here once: path, [answer,] label_1, probability_1, ... label_k, probability_k, error
(`answer`, the label or "unknown", only when a minimum confidence was asked for).
Torch-free and SDK-free, so both the offline predictor and the Batch Transform reader import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dogclf.csvsafe import csv_text


@dataclass(frozen=True)
class PredictionRow:
    """One image's row: its top-k labels and probabilities (most probable first), or the error."""

    path: str
    labels: Sequence[str] = ()
    probabilities: Sequence[float] = ()
    error: str | None = None
    answer: str = ""  # the label, or "unknown" below the minimum confidence


def csv_header(topk: int, answer: bool = False) -> list[str]:
    """The CSV columns for `topk` classes per image (with the `answer` column when asked)."""
    ranked = [f"{kind}_{i}" for i in range(1, topk + 1) for kind in ("label", "probability")]
    return ["path", *(["answer"] if answer else []), *ranked, "error"]


def predictions_csv(rows: Iterable[PredictionRow], topk: int, answer: bool = False) -> str:
    """The CSV text: a header, then one line per row (missing ranks left empty, strings formula-escaped)."""
    lines = []
    for row in rows:
        cells: list[object] = [row.answer] if answer else []
        for label, prob in zip(row.labels[:topk], row.probabilities[:topk], strict=True):
            cells += [label, float(prob)]
        cells += [""] * (2 * topk + int(answer) - len(cells))
        lines.append([row.path, *cells, row.error or ""])
    return csv_text(csv_header(topk, answer), lines, float_format=".6f")
