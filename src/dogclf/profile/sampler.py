"""Background sampler of system metrics: CPU per core, iowait, process memory, disk IO, GPU use."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("dogclf")


class _Gpu:
    """Utilization and memory of one CUDA device: NVML through torch, else nvidia-smi, else memory only."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.smi = shutil.which("nvidia-smi")
        self.nvml = self._try_nvml()

    def _try_nvml(self) -> bool:
        import torch

        try:
            torch.cuda.utilization(self.index)
            return True
        except Exception:  # torch raises ModuleNotFoundError/RuntimeError without pynvml
            return False

    def _smi_util(self) -> float | None:
        try:
            out = subprocess.run(
                [
                    self.smi,
                    "--query-gpu=utilization.gpu",
                    "--format=csv,noheader,nounits",
                    f"--id={self.index}",
                ],
                capture_output=True,
                text=True,
                timeout=2,
                check=True,
            )
            return float(out.stdout.strip().splitlines()[0])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            return None

    def sample(self) -> dict[str, float | None]:
        import torch

        util = float(torch.cuda.utilization(self.index)) if self.nvml else self._smi_util() if self.smi else None
        free, total = torch.cuda.mem_get_info(self.index)
        return {
            "gpu_util": util,
            "gpu_mem": round((total - free) / total * 100, 2),
            "gpu_mem_mb": round((total - free) / 2**20, 1),
        }


class SystemSampler:
    """Samples every `interval` seconds on a daemon thread and appends JSON lines to `out`."""

    def __init__(self, out: Path, interval: float, t0: float, gpu_index: int | None = None) -> None:
        import psutil

        self.out, self.interval, self.t0 = out, interval, t0
        self.gpu = _Gpu(gpu_index) if gpu_index is not None else None
        self.process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dogclf-profile-sampler", daemon=True)
        self._buffer: list[str] = []
        self._last_cpu = psutil.cpu_times(percpu=True)
        self._last_disk = psutil.disk_io_counters()
        self._last_time = time.perf_counter()
        self._children: list = []
        self._samples = 0

    def start(self) -> None:
        """Start sampling on the background thread."""
        self._thread.start()

    def stop_soon(self) -> None:
        """Ask the thread to end after its current sample, without waiting."""
        self._stop.set()

    def stop(self) -> None:
        """Stop sampling and write what is buffered."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._buffer.append(json.dumps(self.sample()))
            except Exception as exc:  # a failed sample must never stop training
                log.warning("profiler: system sample failed: %s", exc)
            if len(self._buffer) >= 20:
                self._flush()

    def _flush(self) -> None:
        lines, self._buffer = self._buffer, []
        if lines:
            with self.out.open("a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")

    def _cpu(self) -> tuple[list[float], float, float]:
        """Per-core busy %, total busy % and iowait % since the last sample."""
        import psutil

        now = psutil.cpu_times(percpu=True)
        per_core, busy_sum, wait_sum, all_sum = [], 0.0, 0.0, 0.0
        for new, old in zip(now, self._last_cpu, strict=True):
            delta = {
                k: max(getattr(new, k) - getattr(old, k), 0.0) for k in new._fields if k not in ("guest", "guest_nice")
            }
            total = sum(delta.values()) or 1e-9
            idle = delta.get("idle", 0.0) + delta.get("iowait", 0.0)
            per_core.append(round((total - idle) / total * 100, 1))
            busy_sum, wait_sum, all_sum = (
                busy_sum + total - idle,
                wait_sum + delta.get("iowait", 0.0),
                all_sum + total,
            )
        self._last_cpu = now
        return per_core, round(busy_sum / all_sum * 100, 1), round(wait_sum / all_sum * 100, 1)

    def _rss_mb(self) -> float:
        """RSS of this process and its children (loader workers); the child list, a /proc scan, every 10th."""
        import psutil

        if self._samples % 10 == 0:
            self._children = self.process.children(recursive=True)
        self._samples += 1
        rss = self.process.memory_info().rss
        for child in self._children:
            try:
                rss += child.memory_info().rss
            except psutil.Error:
                continue
        return round(rss / 2**20, 1)

    def sample(self) -> dict[str, Any]:
        """One sample; rates are averaged over the time since the previous one."""
        import psutil

        now = time.perf_counter()
        elapsed = max(now - self._last_time, 1e-6)
        per_core, total, iowait = self._cpu()
        disk = psutil.disk_io_counters()
        read = write = None
        if disk is not None and self._last_disk is not None:
            read = round((disk.read_bytes - self._last_disk.read_bytes) / elapsed / 2**20, 3)
            write = round((disk.write_bytes - self._last_disk.write_bytes) / elapsed / 2**20, 3)
        self._last_disk, self._last_time = disk, now
        row = {
            "t": round(now - self.t0, 3),
            "cpu": per_core,
            "cpu_total": total,
            "iowait": iowait,
            "rss_mb": self._rss_mb(),
            "disk_read_mbs": read,
            "disk_write_mbs": write,
        }
        if self.gpu is not None:
            row.update(self.gpu.sample())
        return row
