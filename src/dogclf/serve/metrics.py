"""Server metrics rendered in the Prometheus text exposition format (version 0.0.4)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence

from dogclf.serve.stages import StageClock

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """Cumulative-bucket histogram with sum and count."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        """Count `value` in every bucket whose bound it does not exceed (buckets are cumulative)."""
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.n += 1

    def render(self, name: str) -> list[str]:
        """The `_bucket`, `_sum` and `_count` sample lines of metric `name`."""
        lines = [f'{name}_bucket{{le="{_num(b)}"}} {c}' for b, c in zip(self.buckets, self.counts, strict=True)]
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.n}')
        return [*lines, f"{name}_sum {_num(self.total)}", f"{name}_count {self.n}"]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class ServerMetrics:
    """Request counts by route and status, request latency, batch sizes, images, queue depth, readiness."""

    def __init__(self, queue_depth: Callable[[], int] = lambda: 0, ready: Callable[[], bool] = lambda: False):
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.images = 0
        self.queue_depth = queue_depth
        self.ready = ready
        self.stages = StageClock()

    def observe_request(self, method: str, route: str, status: int, seconds: float, images: int) -> None:
        """Record a finished request; only inference requests (/invocations, v2 infer) count toward the latency."""
        with self._lock:
            self.requests[(method, route, status)] += 1
            if route.endswith(("/invocations", "/infer")):
                self.latency.observe(seconds)
            self.images += images

    def observe_batch(self, size: int) -> None:
        """Record the size of one model forward pass."""
        with self._lock:
            self.batch_size.observe(size)

    def render(self) -> str:
        """The whole scrape body."""
        with self._lock:
            lines = [
                "# HELP dogclf_requests_total HTTP requests by method, route and status.",
                "# TYPE dogclf_requests_total counter",
            ]
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(f'dogclf_requests_total{{method="{method}",route="{route}",status="{status}"}} {n}')
            lines += [
                "# HELP dogclf_request_duration_seconds Latency of inference requests.",
                "# TYPE dogclf_request_duration_seconds histogram",
                *self.latency.render("dogclf_request_duration_seconds"),
                "# HELP dogclf_batch_size Images per model forward pass.",
                "# TYPE dogclf_batch_size histogram",
                *self.batch_size.render("dogclf_batch_size"),
                "# HELP dogclf_images_total Images predicted.",
                "# TYPE dogclf_images_total counter",
                f"dogclf_images_total {self.images}",
                "# HELP dogclf_queue_images Images waiting for a batch.",
                "# TYPE dogclf_queue_images gauge",
                f"dogclf_queue_images {self.queue_depth()}",
                "# HELP dogclf_model_ready 1 once the model is loaded.",
                "# TYPE dogclf_model_ready gauge",
                f"dogclf_model_ready {int(self.ready())}",
            ]
        lines += self.stages.render()
        return "\n".join(lines) + "\n"
