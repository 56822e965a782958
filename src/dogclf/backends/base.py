"""The backend contract, its names and precisions (torch-free, so the CLI can list them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, get_args

if TYPE_CHECKING:
    import torch

BackendName = Literal["auto", "eager", "compile", "openvino", "onnx"]
Precision = Literal["auto", "fp32", "bf16", "fp16", "int8"]
BACKENDS: tuple[str, ...] = get_args(BackendName)
PRECISIONS: tuple[str, ...] = get_args(Precision)

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
