"""SageMaker PyTorch serving handlers (model_fn, input_fn, predict_fn, output_fn) over ClassifierAPI.

Settings come from the endpoint's environment (`ServeConfig.from_env`, checked as every ServeConfig is):
DOGCLF_BACKEND (dogclf.backends.select; auto serves a shipped export), DOGCLF_DEVICE, DOGCLF_PRECISION,
DOGCLF_TOPK, DOGCLF_MAX_PIXELS, DOGCLF_MAX_IMAGES, DOGCLF_MIN_CONFIDENCE,
DOGCLF_RAW_SCORES (1/true: ignore the fitted temperature).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from dogclf.serve.api import ClassifierAPI
from dogclf.serve.codecs import ATTRIBUTES_HEADER, RequestError, custom_attributes, parse_topk, response_format
from dogclf.serve.config import ServeConfig

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


@dataclass
class DecodedRequest:
    """input_fn's result: the preprocessed images, the API that decoded them and any per-request top-k."""

    api: ClassifierAPI
    images: list[Any]
    topk: int | None = None


@dataclass
class PredictionBatch:
    """predict_fn's result: logits plus what output_fn needs to encode them."""

    api: ClassifierAPI
    logits: torch.Tensor
    topk: int | None = None


# The toolkit's input_fn receives no model; model_fn records the one this process serves.
_state: dict[str, ClassifierAPI] = {}


def _toolkit_errors(call: Callable[[], T]) -> T:
    """Re-raise client errors as the inference toolkit's error type so it answers with our status code."""
    try:
        return call()
    except RequestError as exc:
        try:
            from sagemaker_inference.errors import GenericInferenceToolkitError
        except ImportError:
            raise exc from None
        raise GenericInferenceToolkitError(exc.status, str(exc)) from None


def model_fn(model_dir: str) -> ClassifierAPI:
    """Load model.pth + metadata.json from the extracted model.tar.gz."""
    api = ClassifierAPI(model_dir, ServeConfig.from_env())
    api.setup()
    _state["api"] = api
    return api


def _request_topk(context: Any) -> int | None:
    """Top-k from the CustomAttributes header, where the toolkit hands us the request context."""
    try:
        headers = context.request_processor[0].get_request_properties()
    except (AttributeError, IndexError, TypeError):
        return None
    lowered = {str(k).lower(): v for k, v in dict(headers).items()}
    return parse_topk(custom_attributes(lowered.get(ATTRIBUTES_HEADER.lower())).get("topk"), "CustomAttributes")


def input_fn(request_body: bytes | str, request_content_type: str, context: Any = None) -> DecodedRequest:
    """Decode image bytes, base64 JSON or uint8 .npy pixels into preprocessed tensors."""
    if "api" not in _state:
        raise RuntimeError("model_fn must run before input_fn")
    api = _state["api"]
    images = _toolkit_errors(lambda: api.decode(request_body, request_content_type))
    topk = _toolkit_errors(lambda: _request_topk(context)) if context is not None else None
    return DecodedRequest(api, images, topk)


def predict_fn(input_object: DecodedRequest, model: ClassifierAPI) -> PredictionBatch:
    """Batched forward pass at the artifact's precision."""
    return PredictionBatch(model, model.predict(input_object.images), input_object.topk)


def output_fn(prediction: PredictionBatch, accept: str | None) -> tuple[bytes, str]:
    """JSON top-k (k from the Accept parameter, CustomAttributes or DOGCLF_TOPK) or .npy logits."""
    api = prediction.api

    def encode() -> tuple[bytes, str]:
        fmt = response_format(accept, prediction.topk or api.default_topk)
        return api.encode(prediction.logits, fmt)

    return _toolkit_errors(encode)
