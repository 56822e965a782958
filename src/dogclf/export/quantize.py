"""Post-training static int8 quantization, calibrated on real images: NNCF for OpenVINO, onnxruntime for ONNX."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dogclf.backends.onnx import INPUT_NAME, require_onnxruntime

log = logging.getLogger(__name__)

OPENVINO_METHOD = "nncf.quantize preset=performance fast_bias_correction"
ONNX_METHOD = "onnxruntime quantize_static QDQ per-channel u8 activations s8 weights MinMax"


def quantize_openvino(model: Any, batches: list[np.ndarray]) -> Any:
    """An int8 copy of an OpenVINO model: symmetric int8 weights and activations (NNCF's performance preset)."""
    from dogclf.extras import require

    # NNCF imports torch's C++-extension helper, which warns that a CPU-only machine has no CUDA runtime.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    nncf = require("nncf", "openvino", "int8 OpenVINO export needs NNCF")
    images = sum(len(b) for b in batches)
    # NNCF's progress bars are logs, not the command's output: to stderr, and only when INFO logs are shown.
    with contextlib.ExitStack() as stack:
        sink = sys.stderr if log.isEnabledFor(logging.INFO) else stack.enter_context(open(os.devnull, "w"))
        stack.enter_context(contextlib.redirect_stdout(sink))
        return nncf.quantize(
            model,
            nncf.Dataset(batches),
            preset=nncf.QuantizationPreset.PERFORMANCE,
            subset_size=images,
            fast_bias_correction=True,
        )


def quantize_onnx(source: Path, output: Path, batches: list[np.ndarray], work: Path) -> None:
    """Write an int8 QDQ copy of the ONNX model `source` to `output`; `work` holds the pre-processed model."""
    require_onnxruntime()
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        """Feeds the calibration batches to onnxruntime's calibrator, once."""

        def __init__(self) -> None:
            self._items: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._items, None)
            return None if batch is None else {INPUT_NAME: batch}

    prepared = work / "prepared.onnx"
    # Shape inference and graph clean-up first, as onnxruntime recommends, so more ops get quantized.
    quant_pre_process(str(source), str(prepared))
    quantize_static(
        str(prepared),
        str(output),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
