"""ServeConfig: every setting of the local endpoint server, validated in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dogclf.backends.select import BackendChoice
from dogclf.config import Precision
from dogclf.errors import ConfigError
from dogclf.prediction_format import MAX_TOPK

# Lower than PIL's bomb threshold: a 6 MB PNG can still expand to gigabytes of pixels.
SERVE_MAX_PIXELS = 25_000_000
# Each decoded 224 px image is ~600 KB of floats; a 6 MB body of tiny images must not become gigabytes.
MAX_IMAGES = 32
# Pixels one request may decode in all (4 images at the per-image limit): bounds the CPU a 6 MB body can cost.
REQUEST_MAX_PIXELS = 100_000_000

SAGEMAKER_MAX_BODY = 6 * 1024 * 1024  # InvokeEndpoint's real-time payload limit
# Engines that run a batch on their own thread pool: one model thread feeds them (ServeConfig.thread_plan).
OWN_THREAD_POOL = frozenset({"openvino"})
# The SageMaker handlers' settings: the endpoint's environment variables and the fields they set.
ENV_FIELDS = {
    "DOGCLF_BACKEND": "backend",
    "DOGCLF_DEVICE": "device",
    "DOGCLF_PRECISION": "precision",
    "DOGCLF_TOPK": "default_topk",
    "DOGCLF_MAX_PIXELS": "max_pixels",
    "DOGCLF_MAX_IMAGES": "max_images_per_request",
    "DOGCLF_MIN_CONFIDENCE": "min_confidence",
    "DOGCLF_RAW_SCORES": "raw_scores",
}


class ServeConfig(BaseModel):
    """Where the server listens, how it batches, and the limits that keep bad requests harmless."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Bind address; loopback unless you mean to expose it.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port (0 picks a free one).")
    model_name: str = Field(
        "dogclf",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="The model's name in the Open Inference Protocol routes (/v2/models/NAME).",
    )
    http: Literal["auto", "httptools", "h11"] = Field(
        "auto", description="HTTP parser: auto is httptools (C) when installed, else h11 (pure Python)."
    )
    loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto", description="Event loop: auto is uvloop when installed, else asyncio's own."
    )
    max_batch_size: int = Field(16, ge=1, le=1024, description="Most images in one forward pass.")
    max_batch_delay_ms: float = Field(
        5.0, ge=0, le=10_000, description="Longest the oldest queued image waits for a fuller batch."
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Model threads running batches concurrently (default: min(4, CPUs) on a CPU, else 1).",
    )
    threads: int | None = Field(
        None, ge=1, description="torch intra-op threads of each model thread (default: CPUs / workers)."
    )
    decode_threads: int | None = Field(
        None, ge=1, le=64, description="Threads decoding request images, one torch thread each (default: min(4, CPUs))."
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="Compute device.")
    precision: Precision = Field("auto", description="auto: bf16 on CPUs with native bf16 (fp16 on CUDA), else fp32.")
    backend: BackendChoice = Field(
        "auto",
        description="Engine running the network: auto picks the model's gated export (int8 first) when its "
        "engine is installed, else eager torch; or eager, compile, openvino, onnx, or an export by name.",
    )
    max_body_bytes: int = Field(SAGEMAKER_MAX_BODY, ge=1, description="Largest request body (413 beyond).")
    max_pixels: int = Field(SERVE_MAX_PIXELS, ge=1, description="Largest decoded image, width x height.")
    max_images_per_request: int = Field(MAX_IMAGES, ge=1, description="Images in one request (413 beyond).")
    max_request_pixels: int = Field(
        REQUEST_MAX_PIXELS, ge=1, description="Pixels of all images in one request, read from headers (413 beyond)."
    )
    max_queue_images: int = Field(256, ge=1, description="Images waiting for a batch before answering 503.")
    timeout_s: float = Field(60.0, gt=0, description="Per-request deadline (504 beyond).")
    default_topk: int = Field(5, ge=1, le=MAX_TOPK, description="Classes per image when the request names no k.")
    min_confidence: float = Field(
        0.0, ge=0, le=1, description='Answer "unknown" for an image whose top calibrated probability is below this.'
    )
    raw_scores: bool = Field(False, description="Ignore the model's fitted temperature: raw softmax (T=1).")
    max_connections: int = Field(
        256, ge=1, description="Open connections (and requests) at once; requests beyond get 503."
    )
    keep_alive_s: float = Field(5.0, gt=0, le=3600, description="Idle time before a keep-alive connection closes.")
    header_timeout_s: float = Field(
        10.0, gt=0, le=3600, description="Time a connection has to send a complete request head; closed beyond."
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="Largest request line plus headers (431 and closed beyond)."
    )
    body_timeout_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Time a request body has to arrive after its head, plus 1 s per body_min_rate bytes "
        "received; 408 and closed beyond.",
    )
    body_min_rate: int = Field(
        64 * 1024, ge=1, description="Bytes per second that extend the body deadline by one second each."
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServeConfig:
        """Settings from ENV_FIELDS' variables (unset or empty: the default); a bad value names its variable."""
        env = os.environ if environ is None else environ
        values = {field: env[name].strip() for name, field in ENV_FIELDS.items() if env.get(name, "").strip()}
        try:
            return cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            name = next(n for n, f in ENV_FIELDS.items() if f == error["loc"][0])
            raise ConfigError(f"{name}={env[name]!r}: {error['msg']}") from None

    def thread_plan(self, device: str, cpus: int, engine: str = "eager") -> tuple[int, int]:
        """(model threads, torch threads each) for a device type, CPU count and engine; explicit settings win.

        On a CPU the default is up to 4 model threads sharing the cores: independent forward passes scale
        better than one pass split across all cores (OpenMP barriers stall whenever decoding or HTTP work
        preempts one of its threads). OpenVINO schedules its own thread pool: one model thread with every
        core fills bigger batches (measured in bench_serve). Use `workers=1` for the lowest latency of a lone
        request. On an accelerator one model thread feeds the device.
        """
        cpus = max(1, cpus)
        shared = device == "cpu" and engine not in OWN_THREAD_POOL
        workers = self.workers or (min(4, cpus) if shared else 1)
        threads = self.threads or max(1, cpus // workers)
        return workers, threads
