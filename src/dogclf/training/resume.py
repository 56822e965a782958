"""The one resume rule: which config settings may change when a run (or a study) continues."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dogclf.config import normalize_freeze

# Settings that never change results: names, where the data lives, loader parallelism, threads, progress bars.
RESUME_FREE: tuple[str, ...] = (
    "name",
    "data.root",
    "data.num_workers",
    "data.eval_batch_size",
    "runtime.threads",
    "runtime.progress",
    "tracking",
)
# A single run may also continue on other hardware (e.g. a GPU machine after a CPU one): its epochs stay
# consistent with themselves. A study may not: trials on other hardware would not be comparable.
RUN_RESUME_FREE: tuple[str, ...] = (*RESUME_FREE, "runtime.device", "runtime.precision", "runtime.channels_last")


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict as dotted keys: {'data': {'root': x}} -> {'data.root': x}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def canonical(flat: dict[str, Any]) -> dict[str, Any]:
    """A flattened config dump with old setting names replaced by current ones (model.freeze: full -> nothing)."""
    if "model.freeze" not in flat:
        return flat
    return {**flat, "model.freeze": normalize_freeze(flat["model.freeze"])}


def is_free(key: str, free: Iterable[str] = RESUME_FREE) -> bool:
    """Whether the dotted `key` is, or lies under, one of the `free` settings."""
    return any(key == f or key.startswith(f + ".") for f in free)


def config_differences(saved: dict, current: dict, free: Iterable[str] = RUN_RESUME_FREE) -> list[str]:
    """'key: old -> new' for every setting outside `free` that differs between two config dumps."""
    a, b = canonical(flatten(saved)), canonical(flatten(current))
    return [
        f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
        for k in sorted(set(a) | set(b))
        if not is_free(k, free) and a.get(k) != b.get(k)
    ]
