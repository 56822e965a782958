"""The Open Inference Protocol (KServe v2 / Triton HTTP) routes, on the same engine, limits and metrics.

Errors follow the protocol: `{"error": "message"}`, with the same statuses as /invocations.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dogclf.serve.codecs import RequestError
from dogclf.serve.guards import CLOSE, BodyTimeout, read_body
from dogclf.serve.v2_codec import (
    HEADER_LENGTH,
    IMAGES,
    LABELS,
    PROBABILITIES,
    InferRequest,
    encode_response,
    parse_infer,
    split_body,
)
from dogclf.version import __version__

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

    from dogclf.serve.api import ClassifierAPI
    from dogclf.serve.batching import DynamicBatcher
    from dogclf.serve.config import ServeConfig
    from dogclf.serve.metrics import ServerMetrics

    class EndpointState(Protocol):
        """What the v2 routes use of the server's state (dogclf.serve.server.EndpointState)."""

        cfg: ServeConfig
        api: ClassifierAPI
        batcher: DynamicBatcher
        metrics: ServerMetrics

        def check_ready(self) -> None:
            """Raise NotReady while the model loads or after it failed to."""

        async def in_decode_pool(self, fn: Callable[..., Any], *args: Any) -> Any:
            """Run `fn` on a decode thread."""


log = logging.getLogger("dogclf.serve")

MODEL = "/v2/models/{name}"
ROUTES = ("/v2", "/v2/health/live", "/v2/health/ready", MODEL, f"{MODEL}/ready", f"{MODEL}/infer")
IMAGE_TYPE = "application/x-image"  # a BYTES element may be any format /invocations accepts under this type


class UnsupportedEncoding(RequestError):
    """A compressed body: refused rather than inflated past the body limit."""

    status = 415


class UnknownModel(RequestError):
    """The path names a model this server does not serve."""

    status = 404


def v2_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error in the protocol's form."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def route_template(path: str) -> str | None:
    """The v2 route a path matches (model names collapsed), for bounded metric labels; None if none."""
    parts = path.split("/")
    if path in ROUTES:
        return path
    if len(parts) in (4, 5) and parts[1:3] == ["v2", "models"] and parts[3]:
        template = MODEL + ("/" + parts[4] if len(parts) == 5 else "")
        return template if template in ROUTES else None
    return None


def _state(request: Request) -> EndpointState:
    return request.app.state.endpoint


def _check_model(request: Request) -> EndpointState:
    state = _state(request)
    name = request.path_params["name"]
    if name != state.cfg.model_name:
        raise UnknownModel(f"unknown model {name[:64]!r}; this server serves {state.cfg.model_name!r}")
    state.check_ready()
    return state


async def server_metadata(request: Request) -> Response:
    """Server name, version and protocol extensions."""
    return JSONResponse({"name": "dogclf", "version": __version__, "extensions": ["binary_tensor_data"]})


async def live(request: Request) -> Response:
    """200 while the process serves HTTP."""
    return JSONResponse({"live": True})


async def ready(request: Request) -> Response:
    """200 once the model is loaded; 503 before or when loading failed."""
    try:
        _state(request).check_ready()
    except RequestError as exc:
        return JSONResponse({"ready": False, "error": str(exc)}, status_code=exc.status)
    return JSONResponse({"ready": True})


async def model_ready(request: Request) -> Response:
    """Readiness of the named model: 200, 503 while loading, 404 for another name."""
    try:
        _check_model(request)
    except RequestError as exc:
        return v2_error(exc.status, str(exc))
    return JSONResponse({"name": request.path_params["name"], "ready": True})


async def model_metadata(request: Request) -> Response:
    """The model's inputs (encoded images or a preprocessed FP32 NCHW tensor) and outputs."""
    try:
        state = _check_model(request)
    except RequestError as exc:
        return v2_error(exc.status, str(exc))
    artifact = state.api.engine.artifact
    size, classes = artifact.preprocess.image_size, len(artifact.class_names)
    return JSONResponse(
        {
            "name": state.cfg.model_name,
            "versions": [state.api.version],
            "platform": f"dogclf_{state.api.engine.describe()}",
            "inputs": [
                {"name": IMAGES, "datatype": "BYTES", "shape": [-1]},
                {"name": "pixels", "datatype": "FP32", "shape": [-1, 3, size, size]},
            ],
            "outputs": [
                {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, classes]},
                {"name": LABELS, "datatype": "BYTES", "shape": [-1]},
            ],
        }
    )


async def infer(request: Request) -> Response:
    """Parse and decode (thread pool) -> dynamic batch -> probabilities and labels, within the deadline."""
    state = _state(request)
    try:
        return await asyncio.wait_for(
            _infer(state, request, time.monotonic() + state.cfg.timeout_s), state.cfg.timeout_s
        )
    except asyncio.TimeoutError:
        return v2_error(504, f"request did not finish within {state.cfg.timeout_s:g} s")
    except RequestError as exc:
        return v2_error(exc.status, str(exc), CLOSE if isinstance(exc, BodyTimeout) else None)
    except ClientDisconnect:
        log.info("client disconnected before sending the whole body")
        return v2_error(499, "client closed the connection")
    except Exception:  # a bug must cost one request a 500, never the server
        log.exception("v2 inference failed")
        return v2_error(500, "internal server error while predicting; see the server log")


async def _infer(state: EndpointState, request: Request, deadline: float) -> Response:
    _check_model(request)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise UnsupportedEncoding(f"unsupported Content-Encoding {encoding[:32]!r}; send the body uncompressed")
    cfg = state.cfg
    start = time.perf_counter()
    body = await read_body(request, cfg.max_body_bytes, cfg.body_timeout_s, cfg.body_min_rate)
    state.metrics.stages.add("read", time.perf_counter() - start)
    header_length = request.headers.get(HEADER_LENGTH)
    parsed, images = await state.in_decode_pool(_decode, state, body, header_length, deadline)
    request.state.images = len(images)
    logits = await state.batcher.submit(images)
    start = time.perf_counter()
    payload, json_size = _respond(state, parsed, logits)
    state.metrics.stages.add("encode", time.perf_counter() - start)
    headers = {"X-Dogclf-Model-Version": state.api.version}
    if json_size is None:
        return Response(payload, media_type="application/json", headers=headers)
    headers[HEADER_LENGTH] = str(json_size)
    return Response(payload, media_type="application/octet-stream", headers=headers)


def _decode(
    state: EndpointState, body: bytes, header_length: str | None, deadline: float
) -> tuple[InferRequest, list[Any]]:
    """Body -> the parsed request and, per image, a uint8 crop (BYTES input) or a normalized CHW tensor (FP32)."""
    import torch

    doc, binary = split_body(body, header_length)
    size = state.api.engine.artifact.preprocess.image_size
    parsed = parse_infer(doc, binary, state.api.max_images, size)
    if parsed.pixels is not None:
        return parsed, list(torch.from_numpy(parsed.pixels).unbind(0))
    return parsed, state.api.decode_images(parsed.images, IMAGE_TYPE, deadline)


def _respond(state: EndpointState, parsed: InferRequest, logits: torch.Tensor) -> tuple[bytes, int | None]:
    from dogclf.calibration import probabilities

    engine = state.api.engine
    tensors: dict[str, np.ndarray] = {}
    if PROBABILITIES in parsed.outputs:
        tensors[PROBABILITIES] = probabilities(logits, engine.temperature).numpy().astype(np.float32, copy=False)
    if LABELS in parsed.outputs:
        answers = [pred.answer for pred in engine.topk(logits, 1, state.api.min_confidence)]
        tensors[LABELS] = np.array(answers, dtype=object)
    head = {"model_name": state.cfg.model_name, "model_version": state.api.version}
    if parsed.request_id is not None:
        head["id"] = parsed.request_id[:128]
    return encode_response(head, tensors, parsed.outputs)


def routes() -> list[Route]:
    """The v2 routes, to add beside the SageMaker ones."""
    return [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route(MODEL, model_metadata, methods=["GET"]),
        Route(f"{MODEL}/ready", model_ready, methods=["GET"]),
        Route(f"{MODEL}/infer", infer, methods=["POST"]),
    ]
