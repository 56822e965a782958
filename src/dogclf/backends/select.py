"""Which backend runs an artifact: named by a flag, or picked from the artifact's exports (`auto`)."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dogclf.backends.exports import EXPORTS_DIR, FORMATS, ExportMetadata, export_name, list_exports, weights_digest
from dogclf.errors import ArtifactError, ConfigError

log = logging.getLogger(__name__)

# `auto`'s order of preference among exports: int8 first (gated), then fp32 through a compiled engine.
AUTO_ORDER = tuple(export_name(f, p) for p in ("int8", "fp32") for f in ("openvino", "onnx"))
EXPORT_CHOICES = tuple(export_name(f, p) for f in FORMATS for p in ("fp32", "int8"))
TORCH_ENGINES = ("eager", "compile")  # run the torch model itself, on any device; FORMATS run exports on the CPU
# What --backend accepts: auto, an engine, or one export of the artifact by name.
CHOICES: tuple[str, ...] = ("auto", *TORCH_ENGINES, *FORMATS, *EXPORT_CHOICES)
BackendChoice = Literal[CHOICES]  # type: ignore[valid-type]


@dataclass(frozen=True)
class Choice:
    """An engine and, for exported models, the export folder and its metadata."""

    engine: str  # eager | compile | openvino | onnx
    folder: Path | None = None
    export: ExportMetadata | None = None

    def describe(self) -> str:
        """e.g. 'openvino (export openvino-int8)' or 'eager'."""
        return f"{self.engine} (export {self.export.name})" if self.export else self.engine


def engine_installed(engine: str) -> bool:
    """Whether the Python package of an engine can be imported (torch engines always can)."""
    module = {"openvino": "openvino", "onnx": "onnxruntime"}.get(engine)
    return module is None or importlib.util.find_spec(module) is not None


def _fresh(model_dir: Path, exports: dict[str, ExportMetadata]) -> dict[str, ExportMetadata]:
    """Exports made from the artifact's current weights; stale ones are dropped with a warning."""
    if not exports:
        return {}
    digest = weights_digest(model_dir)
    fresh = {name: meta for name, meta in exports.items() if meta.weights_sha256 == digest}
    for name in sorted(set(exports) - set(fresh)):
        log.warning("%s/exports/%s was exported from other weights; ignoring it (export again)", model_dir, name)
    return fresh


def choose_backend(
    model_dir: Path | None,
    backend: str = "auto",
    installed: Callable[[str], bool] = engine_installed,
    cpu: bool = True,
) -> Choice:
    """Resolve a --backend value against an artifact folder's exports.

    auto: the first trusted export in AUTO_ORDER whose engine is installed, else eager (always eager off the
    CPU). openvino / onnx: that engine's best trusted export, else the artifact converted in memory.
    FORMAT-PRECISION: exactly that export.
    """
    if backend not in CHOICES:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(CHOICES)}")
    if not cpu:
        if backend not in ("auto", *TORCH_ENGINES):
            raise ConfigError(f"backend {backend} runs on the CPU only; use eager or compile on this device")
        return Choice("eager" if backend == "auto" else backend)
    found, skipped = list_exports(model_dir) if model_dir is not None else ({}, {})
    exports = _fresh(model_dir, found) if model_dir is not None else {}
    if backend in EXPORT_CHOICES:
        return _named_export(model_dir, backend, found, exports, skipped, installed)
    if backend in TORCH_ENGINES:
        return Choice(backend)
    _report_unused(backend, exports, skipped)
    candidates = [n for n in AUTO_ORDER if n in exports and exports[n].trusted]
    if backend != "auto":
        candidates = [n for n in candidates if exports[n].format == backend]
        best = candidates[0] if candidates else None
        return check_installed(
            Choice(backend, *((model_dir / EXPORTS_DIR / best, exports[best]) if best else ())), installed
        )
    for name in candidates:
        if installed(exports[name].format):
            return Choice(exports[name].format, model_dir / EXPORTS_DIR / name, exports[name])
        log.warning("export %s found but %s is not installed; serving with eager torch", name, exports[name].format)
    return Choice("eager")


def _report_unused(backend: str, exports: dict[str, ExportMetadata], skipped: dict[str, str]) -> None:
    """Warn for every entry of exports/ that `backend` (auto or an engine) will not consider, and why."""
    for reason in skipped.values():
        log.warning("export not used: %s", reason)
    for name in (n for n in AUTO_ORDER if n in exports and not exports[n].trusted):
        log.warning("export %s not used by %s: %s", name, backend, exports[name].distrust)


def _named_export(
    model_dir: Path | None,
    name: str,
    found: dict[str, ExportMetadata],
    exports: dict[str, ExportMetadata],
    skipped: dict[str, str],
    installed: Callable[[str], bool],
) -> Choice:
    """Exactly the export `name`, or an ArtifactError saying why it cannot be used and how to make it."""
    if name in skipped or EXPORTS_DIR in skipped:
        raise ArtifactError(skipped.get(name) or skipped[EXPORTS_DIR])
    if model_dir is None or name not in exports:
        fmt, precision = name.split("-")
        why = "was exported from other weights (model.pth changed since)" if name in found else "does not exist"
        flag = " --int8 --calibration-data DIR" if precision == "int8" else ""
        raise ArtifactError(f"{model_dir}/exports/{name} {why}; run: dogclf export MODEL --format {fmt}{flag}")
    folder = model_dir / EXPORTS_DIR / name
    return check_installed(Choice(exports[name].format, folder, exports[name]), installed)


def check_installed(choice: Choice, installed: Callable[[str], bool] = engine_installed) -> Choice:
    """An explicitly asked engine must be installed: name the extra that brings it."""
    if not installed(choice.engine):
        from dogclf.extras import MissingExtraError

        raise MissingExtraError(
            f"backend {choice.engine} needs its engine, which is not installed: pip install 'dogclf[{choice.engine}]'"
        )
    return choice
