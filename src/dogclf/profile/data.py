"""The files a profiled run writes under profile/, and loading them back for rules and reports."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dogclf.errors import DogclfError
from dogclf.training.rundir import RunPaths

STEPS_FILE = "steps.jsonl"
SYSTEM_FILE = "system.jsonl"
META_FILE = "meta.json"
OPS_FILE = "ops.json"
OPS_TABLE_FILE = "ops.txt"
TRACE_FILE = "trace.json"
RULES_FILE = "rules.json"
REPORT_FILE = "report.html"
STEP_FIELDS = ("step", "epoch", "t", "batch_size", "data", "forward", "backward", "optimizer")
SPLITS = ("data", "forward", "backward", "optimizer")
SYSTEM_FIELDS = (
    "t",
    "cpu_total",
    "iowait",
    "rss_mb",
    "disk_read_mbs",
    "disk_write_mbs",
    "gpu_util",
    "gpu_mem",
)


@dataclass
class ProfileData:
    """Step timings (seconds), system samples and the run facts of one profiled run, as numpy columns."""

    folder: Path
    meta: dict[str, Any]
    steps: dict[str, np.ndarray]
    system: dict[str, np.ndarray]
    cpu_per_core: np.ndarray  # samples x cores, percent
    ops: list[dict[str, Any]] = field(default_factory=list)

    @property
    def step_total(self) -> np.ndarray:
        """Seconds per step: data wait + forward + backward + optimizer."""
        return sum((self.steps[k] for k in SPLITS), start=np.zeros(len(self.steps["step"])))

    @property
    def has_gpu(self) -> bool:
        """True when GPU utilization was sampled."""
        util = self.system["gpu_util"]
        return bool(util.size and np.isfinite(util).any())


def _columns(rows: list[dict], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    def value(row: dict, name: str) -> float:
        v = row.get(name)
        return math.nan if v is None else float(v)

    return {name: np.array([value(r, name) for r in rows], dtype=float) for name in names}


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DogclfError(f"{path}:{n} is not valid JSON ({exc.msg}); the profile data is damaged") from None
    return rows


def profile_folder(run_dir: str | Path) -> Path:
    """The profile/ folder of a run (or the folder itself when given one); errors say how to make one."""
    path = Path(run_dir)
    folder = path if (path / META_FILE).exists() else RunPaths(path).profile
    if not (folder / META_FILE).exists():
        hint = "" if path.exists() else " (the folder does not exist)"
        raise DogclfError(f"{path} holds no profile data{hint}; train with --profile (profile.enabled=true) first")
    return folder


def load_profile(run_dir: str | Path) -> ProfileData:
    """Read a run's profile/ folder."""
    folder = profile_folder(run_dir)
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    steps = _read_jsonl(folder / STEPS_FILE)
    samples = _read_jsonl(folder / SYSTEM_FILE)
    cores = max((len(s.get("cpu") or []) for s in samples), default=0)
    # reshape(-1, 0) is ambiguous: a run shorter than one sampling interval has no samples at all.
    rows = [(s.get("cpu") or [math.nan] * cores) for s in samples]
    per_core = np.array(rows, dtype=float).reshape(len(samples), cores)
    ops_path = folder / OPS_FILE
    ops = json.loads(ops_path.read_text(encoding="utf-8")) if ops_path.exists() else []
    return ProfileData(folder, meta, _columns(steps, STEP_FIELDS), _columns(samples, SYSTEM_FIELDS), per_core, ops)
