"""LocalEndpoint: `dogclf serve` in a subprocess on a free loopback port (quickstart, tests, benchmarks)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from dogclf.serve.client import EndpointClient, EndpointError

LISTENING = "dogclf serve: listening on "


class LocalEndpoint:
    """Starts the real server process; `url` is known once it listens, `stop()` sends SIGTERM."""

    def __init__(self, model: str | Path, *serve_args: str, env: dict[str, str] | None = None) -> None:
        self.model = Path(model)
        self.serve_args = serve_args
        self.env = env or {}
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="dogclf-serve-", suffix=".log", delete=False)

    @property
    def log_path(self) -> Path:
        """Temporary file of the server's stderr: kept after `stop()`, removed on leaving a `with` block."""
        return Path(self._log.name)

    def log_text(self) -> str:
        """Everything the server wrote to stderr (access log included)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def start(self, ready_timeout: float = 120.0) -> LocalEndpoint:
        """Launch on port 0, read the bound URL from stdout and wait for GET /ping to answer 200."""
        command = [
            sys.executable,
            "-m",
            "dogclf.cli.main",
            "serve",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *self.serve_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)
        self.url = self._read_url(proc, ready_timeout)
        with EndpointClient(self.url) as client:
            try:
                client.wait_ready(ready_timeout, is_alive=lambda: self.proc is not None and self.proc.poll() is None)
            except EndpointError:
                self.stop()
                raise EndpointError(
                    f"local endpoint never became ready; server log:\n{self.log_text()[-3000:]}"
                ) from None
        return self

    def _read_url(self, proc: subprocess.Popen[str], timeout: float) -> str:
        lines: queue.Queue[str] = queue.Queue()
        stdout = proc.stdout  # a pipe: Popen(stdout=PIPE)

        def pump() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if proc.poll() is not None:
                    break
                continue
            if line.startswith(LISTENING):
                return line[len(LISTENING) :].split()[0]
        self.stop()
        raise EndpointError(f"local endpoint did not start; server log:\n{self.log_text()[-3000:]}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful: in-flight requests finish), then wait; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> LocalEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)
