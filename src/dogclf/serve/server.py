"""The local SageMaker-compatible endpoint: a Starlette app on uvicorn with dynamic batching.

Routes: GET /ping, POST /invocations, POST /endpoints/{name}/invocations (the InvokeEndpoint path that
boto3's sagemaker-runtime client calls), GET /metrics (Prometheus text), and the Open Inference Protocol's
/v2 routes (dogclf.serve.v2).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import json
import logging
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dogclf.serve import metrics as prom
from dogclf.serve import v2
from dogclf.serve.api import ClassifierAPI
from dogclf.serve.batching import DynamicBatcher
from dogclf.serve.codecs import (
    ATTRIBUTES_HEADER,
    DECODERS,
    RequestError,
    UnsupportedContentType,
    media_type,
    response_format,
)
from dogclf.serve.config import ServeConfig
from dogclf.serve.guards import CLOSE, BodyTimeout, HeadGuard, error_response, guarded_protocol, read_body

log = logging.getLogger("dogclf.serve")
access_log = logging.getLogger("dogclf.serve.access")

ROUTES = ("/ping", "/invocations", "/endpoints/{name}/invocations", "/metrics")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
T = TypeVar("T")
CLIENT_CLOSED = 499  # nginx's code for "the client closed the connection"; never sent, only logged


class NotReady(RequestError):
    """The model is still loading (or failed to load)."""

    status = 503


def torch_threads(count: int) -> Callable[[], None]:
    """Thread initializer: torch ops started from this thread use `count` intra-op threads.

    OpenMP's thread count is per calling thread, and every thread that runs a parallel op keeps its own
    team of workers. Teams beyond the CPU count make libgomp stop spinning between ops, which slows a
    ResNet50 forward by about half, so only model threads get more than one torch thread.
    """

    def init() -> None:
        import torch

        torch.set_num_threads(count)

    return init


def _planned_engine(model: str | Path, backend: str, device: str) -> str:
    """The engine the model will run on, for the thread plan; eager when that cannot be told yet.

    A model that cannot be resolved here fails in setup(), which reports it through /ping and the log.
    """
    from dogclf.artifact import resolve_artifact_dir
    from dogclf.backends.select import choose_backend
    from dogclf.errors import DogclfError

    try:
        return choose_backend(resolve_artifact_dir(model), backend, cpu=device == "cpu").engine
    except DogclfError:
        return "eager"


class EndpointState:
    """What the routes share: settings, the serving API, the batcher, the decode pool and the metrics."""

    def __init__(self, model: str | Path, cfg: ServeConfig) -> None:
        import torch

        self.cfg = cfg
        self.api = ClassifierAPI(model, cfg)
        device = self.api.runtime.device.type
        engine = _planned_engine(model, cfg.backend, device)
        cpus = torch.get_num_threads()  # the cores torch may use here (honours OMP_NUM_THREADS)
        self.workers, self.threads = cfg.thread_plan(device, cpus, engine)
        self.api.streams = self.workers
        self.decode_threads = cfg.decode_threads or min(4, cpus)
        self.load_error: str | None = None
        self.metrics = prom.ServerMetrics(queue_depth=lambda: self.batcher.queued_images, ready=lambda: self.api.ready)
        self.api.on_stage = self.metrics.stages.add
        self.batcher = DynamicBatcher(
            self.api.predict,
            max_batch_size=cfg.max_batch_size,
            max_delay_s=cfg.max_batch_delay_ms / 1000,
            workers=self.workers,
            max_queue=cfg.max_queue_images,
            on_batch=self.metrics.observe_batch,
            initializer=torch_threads(self.threads),
            on_stage=self.metrics.stages.add,
        )
        self.decode_pool = ThreadPoolExecutor(
            self.decode_threads,
            thread_name_prefix="dogclf-decode",
            initializer=torch_threads(1),
        )

    async def in_decode_pool(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on a decode thread; its wait for the thread counts as the decode_queue stage."""
        queued = time.perf_counter()

        def run() -> T:
            self.metrics.stages.add("decode_queue", time.perf_counter() - queued)
            return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(self.decode_pool, run)

    def check_ready(self) -> None:
        """Raise NotReady, saying why, while the model is loading or failed to load."""
        if self.load_error:
            raise NotReady(f"model failed to load: {self.load_error}")
        if not self.api.ready:
            raise NotReady("model is still loading; retry when GET /ping answers 200")


async def ping(request: Request) -> Response:
    """200 once the model is loaded, 503 before."""
    state: EndpointState = request.app.state.endpoint
    try:
        state.check_ready()
    except NotReady as exc:
        return error_response(exc.status, str(exc))
    return JSONResponse({"status": "healthy", "model_version": state.api.version})


async def invocations(request: Request) -> Response:
    """Decode (thread pool) -> dynamic batch -> encode, within the request deadline."""
    state: EndpointState = request.app.state.endpoint
    deadline = time.monotonic() + state.cfg.timeout_s
    try:
        return await asyncio.wait_for(_invoke(state, request, deadline), state.cfg.timeout_s)
    except asyncio.TimeoutError:
        return error_response(504, f"request did not finish within {state.cfg.timeout_s:g} s")
    except RequestError as exc:
        return error_response(exc.status, str(exc), CLOSE if isinstance(exc, BodyTimeout) else None)
    except ClientDisconnect:
        log.info("client disconnected before sending the whole body")
        return error_response(CLIENT_CLOSED, "client closed the connection")
    except Exception:  # a bug must cost one request a 500, never the server
        log.exception("invocation failed")
        return error_response(500, "internal server error while predicting; see the server log")


async def _invoke(state: EndpointState, request: Request, deadline: float) -> Response:
    state.check_ready()
    content_type = request.headers.get("content-type")
    if media_type(content_type)[0] not in DECODERS:
        raise UnsupportedContentType(content_type or "")
    headers, query = request.headers, request.query_params
    fmt = response_format(
        headers.get("accept"), state.cfg.default_topk, query.get("topk"), headers.get(ATTRIBUTES_HEADER.lower())
    )
    start = time.perf_counter()
    body = await read_body(request, state.cfg.max_body_bytes, state.cfg.body_timeout_s, state.cfg.body_min_rate)
    state.metrics.stages.add("read", time.perf_counter() - start)
    images = await state.in_decode_pool(state.api.decode, body, content_type, deadline)
    request.state.images = len(images)
    logits = await state.batcher.submit(images)
    start = time.perf_counter()
    payload, out_type = state.api.encode(logits, fmt)
    state.metrics.stages.add("encode", time.perf_counter() - start)
    out_headers = {"X-Dogclf-Model-Version": state.api.version}
    if "name" in request.path_params:
        out_headers["X-Amzn-Invoked-Production-Variant"] = "AllTraffic"
    return Response(payload, media_type=out_type, headers=out_headers)


async def metrics(request: Request) -> Response:
    """Prometheus scrape endpoint."""
    state: EndpointState = request.app.state.endpoint
    return Response(state.metrics.render(), media_type=prom.CONTENT_TYPE)


async def http_error(request: Request, exc: Exception) -> Response:
    """404/405 and friends as JSON."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal server error"
    return error_response(status, f"{request.method} {request.url.path}: {detail}")


async def internal_error(request: Request, exc: Exception) -> Response:
    """Unexpected failures: logged with a traceback, answered as JSON 500."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal server error: {type(exc).__name__}")


class AccessLog:
    """ASGI middleware: one JSON access-log line and metrics per request, plus a request id header."""

    def __init__(self, app: ASGIApp, metrics: prom.ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass an HTTP request to the app, then log and count it; other scopes pass through untouched."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-amzn-sagemaker-inference-id") or headers.get("x-request-id") or uuid.uuid4().hex
        request_id = request_id[:128]
        seen: dict[str, Any] = {"status": 500, "bytes_out": 0}
        scope.setdefault("state", {})

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"], seen["writing"] = message["status"], time.perf_counter()
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("latin-1"))]
            elif message["type"] == "http.response.body":
                seen["bytes_out"] += len(message.get("body", b""))
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.metrics.stages.add("write", time.perf_counter() - seen.get("writing", start))

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - start
            route = _route_template(scope["path"])
            images = scope["state"].get("images", 0)
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.observe_request(method, route, seen["status"], seconds, images)
            length = headers.get("content-length", "")
            entry = {
                "event": "request",
                "request_id": request_id,
                "method": method,
                "path": scope["path"][:256],
                "route": route,
                "status": seen["status"],
                "duration_ms": round(seconds * 1000, 2),
                "bytes_in": int(length) if length.isdigit() else 0,
                "bytes_out": seen["bytes_out"],
                "images": images,
                "client": (scope.get("client") or ("", 0))[0],
            }
            access_log.info(json.dumps(entry))


def _route_template(path: str) -> str:
    """Collapse endpoint names so metric labels stay bounded."""
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "endpoints" and parts[3] == "invocations":
        return "/endpoints/{name}/invocations"
    return path if path in ROUTES else v2.route_template(path) or "other"


def create_app(model: str | Path, cfg: ServeConfig | None = None) -> Starlette:
    """The ASGI app; the model loads in the background after startup so /ping can answer 503 meanwhile."""
    cfg = cfg or ServeConfig()
    state = EndpointState(model, cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.batcher.start()
        loader = asyncio.ensure_future(state.batcher.run_on_model_thread(_load, state, app))
        try:
            yield
        finally:
            await asyncio.gather(loader, return_exceptions=True)
            await state.batcher.stop()
            state.decode_pool.shutdown(wait=False, cancel_futures=True)
            log.info(json.dumps({"event": "stopped"}))

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/endpoints/{name}/invocations", invocations, methods=["POST"]),
            Route("/metrics", metrics, methods=["GET"]),
            *v2.routes(),
        ],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )
    app.state.endpoint = state
    app.add_middleware(HeadGuard, max_head_bytes=cfg.max_header_bytes)
    app.add_middleware(AccessLog, metrics=state.metrics)
    return app


def _load(state: EndpointState, app: Starlette) -> None:
    """Load the model; on failure record why and ask the server to exit."""
    try:
        state.api.setup()
        log.info(json.dumps({"event": "ready", "model_version": state.api.version}))
    except Exception as exc:  # any load failure must become a clean exit, not a hung server
        state.load_error = f"{type(exc).__name__}: {exc}"
        log.error(json.dumps({"event": "load_failed", "error": state.load_error}))
        server = getattr(app.state, "server", None)
        if server is not None:
            server.should_exit = True


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves so port 0 resolves to a known free port before serving.

    The protocol is named (IPPROTO_TCP, not 0) because asyncio turns Nagle off (TCP_NODELAY) only on
    connections whose socket says TCP; with Nagle on, a keep-alive client waits a delayed ACK (~40 ms)
    for the second half of every response.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        from dogclf.errors import DogclfError

        raise DogclfError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _installed_or_fallback(choice: str, fast: str, fallback: str, option: str) -> str:
    """`fast` for auto when that module imports, else `fallback`; `fast` asked for by name must be installed."""
    if choice == fast:
        from dogclf.extras import require

        require(fast, "serve", f"--{option} {fast} needs {fast}")
    if choice != "auto":
        return choice
    try:
        importlib.import_module(fast)
    except ImportError:
        return fallback
    return fast


def http_stack(choice: str) -> str:
    """The HTTP parser to run: httptools (llhttp, in C) when installed and not told otherwise, else h11."""
    return _installed_or_fallback(choice, "httptools", "h11", "http")


def event_loop(choice: str) -> str:
    """The asyncio event loop to run: uvloop (libuv) when installed and not told otherwise, else asyncio's own."""
    return _installed_or_fallback(choice, "uvloop", "asyncio", "loop")


def serve(model: str | Path, cfg: ServeConfig | None = None) -> int:
    """Run the endpoint until SIGTERM/SIGINT; in-flight requests finish first. Returns the exit code."""
    import uvicorn

    cfg = cfg or ServeConfig()
    stack, loop = http_stack(cfg.http), event_loop(cfg.loop)
    protocol = guarded_protocol(stack, cfg.header_timeout_s, cfg.max_header_bytes)
    sock = bind_socket(cfg.host, cfg.port)
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    app = create_app(model, cfg)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(cfg.timeout_s) + 5,
        http=protocol,
        loop=loop,
        ws="none",
        timeout_keep_alive=cfg.keep_alive_s,
        limit_concurrency=cfg.max_connections,
        h11_max_incomplete_event_size=cfg.max_header_bytes,
    )
    server = uvicorn.Server(config)
    app.state.server = server
    # uvicorn re-raises SIGTERM after draining; with this handler that ends in a clean exit 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: setattr(server, "should_exit", True))
    if not ipaddress.ip_address(host).is_loopback:
        log.warning("listening on %s: reachable from other machines, and the endpoint has no authentication", host)
    print(f"dogclf serve: listening on {url} (POST {url}/invocations)", flush=True)
    endpoint = app.state.endpoint
    resolved = {"http": stack, "loop": loop, "workers": endpoint.workers, "threads": endpoint.threads}
    resolved["decode_threads"] = endpoint.decode_threads
    settings = {**cfg.model_dump(exclude={"host", "port"}), **resolved}
    log.info(json.dumps({"event": "listening", "url": url, **settings}))
    server.run(sockets=[sock])
    sys.stdout.flush()
    return 1 if app.state.endpoint.load_error else 0
