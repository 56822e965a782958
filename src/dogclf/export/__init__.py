"""Exported models for the CPU engines: ONNX and OpenVINO, fp32 or int8 behind an accuracy gate (loaded lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dogclf.lazy import lazy_exports

_EXPORTS = {
    "export_model": "dogclf.export.exporting",
    "ExportResult": "dogclf.export.exporting",
    "AccuracyGateError": "dogclf.export.gate",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from dogclf.export.exporting import ExportResult, export_model
    from dogclf.export.gate import AccuracyGateError

__getattr__ = lazy_exports(__name__, _EXPORTS)
