"""The backend contract and the extra each engine needs (torch-free; names and choices: backends.select)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch

# The extra that installs each engine, for error messages and code/requirements.txt.
EXTRAS = {"openvino": "openvino", "onnx": "onnx"}


class Backend(Protocol):
    """Runs the network: `logits(batch)` maps a float32 NCHW CPU batch to float32 CPU logits."""

    name: str
    precision: str

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Float32 logits, shape (N, classes), on the CPU."""
        ...

    def describe(self) -> str:
        """One line for logs: engine, precision, where the model came from."""
        ...


@runtime_checkable
class PixelBackend(Protocol):
    """A backend that also takes uint8 NHWC crops and normalizes them inside its compiled model."""

    def logits_pixels(self, batch: np.ndarray) -> torch.Tensor:
        """Float32 logits, shape (N, classes), of uint8 NxHxWx3 crops (before normalization)."""
        ...
