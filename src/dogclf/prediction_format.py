"""A prediction and its JSON form, torch-free: what the server encodes and the CLI, clients and SDK read back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dogclf.errors import DogclfError

UNKNOWN = "unknown"
MAX_TOPK = 100  # the most classes per image dogclf asks for or reads back


class PredictionFormatError(DogclfError):
    """A JSON answer that is not the endpoint's prediction document."""


def is_unknown(top_probability: float, min_confidence: float) -> bool:
    """Whether an answer is too unsure to give: its top probability is below `min_confidence`."""
    return top_probability < min_confidence


@dataclass(frozen=True)
class Prediction:
    """Top-k classes of one image, most probable first."""

    labels: list[str]
    probabilities: list[float]
    indices: list[int]
    unknown: bool = False

    @property
    def answer(self) -> str:
        """The top label, or UNKNOWN when its probability is below the min_confidence asked for."""
        return UNKNOWN if self.unknown else self.labels[0]

    def ranked(self) -> list[dict[str, Any]]:
        """`[{"label", "probability", "index"}...]`, most probable first: one image's list in every JSON answer."""
        rows = zip(self.labels, self.probabilities, self.indices, strict=True)
        return [{"label": label, "probability": p, "index": i} for label, p, i in rows]

    def to_dict(self) -> dict[str, Any]:
        """JSON form of one image: `{"label", "unknown", "predictions": ranked()}`."""
        return {"label": self.answer, "unknown": self.unknown, "predictions": self.ranked()}


@dataclass(frozen=True)
class FileResult:
    """One file's outcome: a prediction, or why it has none (the file's or the endpoint's error message)."""

    path: Path
    prediction: Prediction | None
    error: str | None = None


def response_document(predictions: Sequence[Prediction], model_version: str, temperature: float) -> dict[str, Any]:
    """The endpoint's JSON answer for a request's images: per image its answer, unknown flag and ranked classes."""
    return {
        "model_version": model_version,
        "temperature": temperature,
        "labels": [p.answer for p in predictions],
        "unknown": [p.unknown for p in predictions],
        "predictions": [p.ranked() for p in predictions],
    }


def predictions_from_response(doc: object) -> list[Prediction]:
    """The Predictions of an endpoint's JSON answer (response_document's form); anything else is refused."""
    images = doc.get("predictions") if isinstance(doc, dict) else None
    if not isinstance(images, list):
        raise PredictionFormatError("the answer has no 'predictions' list; is the URL a dogclf endpoint?")
    unknown = doc.get("unknown") or [False] * len(images)
    try:
        return [
            Prediction(
                [c["label"] for c in classes],
                [c["probability"] for c in classes],
                [c["index"] for c in classes],
                bool(flag),
            )
            for classes, flag in zip(images, unknown, strict=True)
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise PredictionFormatError(f"the answer's predictions are not ranked label lists ({exc})") from None
