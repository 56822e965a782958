"""Endpoint client: send images to a running endpoint (local or any /invocations URL), get breeds back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from dogclf.errors import DogclfError
from dogclf.prediction_format import FileResult, Prediction, PredictionFormatError, predictions_from_response


class EndpointError(DogclfError):
    """The endpoint could not be reached or answered with an error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def invocations_url(url: str) -> str:
    """Accept a base URL (http://host:8080) or a full .../invocations URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EndpointError(f"endpoint URL must look like http://127.0.0.1:8080, got {url!r}")
    return url if parts.path.rstrip("/").endswith("/invocations") else url.rstrip("/") + "/invocations"


class EndpointClient:
    """A thin httpx client for /ping and /invocations."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        import httpx

        self.url = invocations_url(url)
        self.base = self.url[: -len("/invocations")]
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> EndpointClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> bool:
        """True when the endpoint answers GET /ping with 200."""
        import httpx

        try:
            return self._http.get(f"{self.base}/ping", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60.0, is_alive: Callable[[], bool] = lambda: True) -> None:
        """Poll /ping until 200; gives up after `timeout` seconds or when `is_alive()` turns False."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and is_alive():
            if self.ping():
                return
            time.sleep(0.1)
        raise EndpointError(f"endpoint {self.base} was not ready within {timeout:g} s")

    def predict_bytes(self, data: bytes, topk: int = 5, content_type: str = "application/x-image") -> list[Prediction]:
        """POST one body; returns a Prediction per image it held."""
        import httpx

        try:
            response = self._http.post(
                self.url,
                content=data,
                params={"topk": topk},
                headers={"Content-Type": content_type, "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise EndpointError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code != 200:
            raise EndpointError(_error_message(response.status_code, response.content), response.status_code)
        try:
            return predictions_from_response(response.json())
        except (ValueError, PredictionFormatError) as exc:
            raise EndpointError(f"{self.url} answered something else than dogclf's JSON: {exc}") from None

    def predict_files(
        self,
        paths: Sequence[Path],
        topk: int = 5,
        concurrency: int = 4,
        on_result: Callable[[], None] = lambda: None,
    ) -> list[FileResult]:
        """One request per file, `concurrency` at a time (the server batches them); errors kept per file."""

        def one(path: Path) -> FileResult:
            try:
                prediction = self.predict_bytes(path.read_bytes(), topk)[0]
                result = FileResult(path, prediction)
            except (EndpointError, OSError) as exc:
                if isinstance(exc, EndpointError) and exc.status is None:
                    raise
                result = FileResult(path, None, str(exc))
            on_result()
            return result

        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            return list(pool.map(one, paths))


def _error_message(status: int, body: bytes) -> str:
    try:
        return f"HTTP {status}: {json.loads(body)['error']['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
