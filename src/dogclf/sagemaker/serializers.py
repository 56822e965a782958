"""Client-side serializers for `sagemaker.predictor.Predictor`: image bytes in, top-k JSON or logits out.

They follow the SDK's serializer protocol (CONTENT_TYPE + serialize, ACCEPT + deserialize) without importing
the SDK, so `import dogclf.sagemaker.serializers` stays light; `make_predictor` imports it when called.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import IO, Any

import numpy as np


class ImageSerializer:
    """Sends one image as raw bytes: pass bytes, a path, or a binary file object."""

    CONTENT_TYPE = "application/x-image"

    def serialize(self, data: bytes | str | Path | IO[bytes]) -> bytes:
        """The image's bytes, read from the path or file object when not given as bytes."""
        if isinstance(data, (bytes, bytearray)):
            return bytes(data)
        if isinstance(data, (str, Path)):
            return Path(data).read_bytes()
        if hasattr(data, "read"):
            return data.read()
        raise TypeError(f"ImageSerializer expects bytes, a path or a binary file, got {type(data).__name__}")


class TopKDeserializer:
    """Reads the endpoint's JSON answer: {"model_version", "predictions": [[{"label", "probability"}...]]}."""

    ACCEPT = ("application/json",)

    def deserialize(self, stream: Any, content_type: str) -> dict:
        """Parse the JSON body and close the stream."""
        try:
            return json.loads(stream.read())
        finally:
            stream.close()


class LogitsDeserializer:
    """Reads .npy logits (requested with Accept: application/x-npy); never unpickles."""

    ACCEPT = ("application/x-npy",)

    def deserialize(self, stream: Any, content_type: str) -> np.ndarray:
        """Load the .npy body (pickles refused) and close the stream."""
        try:
            return np.load(io.BytesIO(stream.read()), allow_pickle=False)
        finally:
            stream.close()


def make_predictor(endpoint_name: str, sagemaker_session: Any = None, logits: bool = False) -> Any:
    """The SDK line's predictor for a dogclf endpoint (2.x: `sagemaker.predictor.Predictor`), with the codecs above."""
    from dogclf.sagemaker.sdk_line import require

    deserializer = LogitsDeserializer() if logits else TopKDeserializer()
    return require("predictor").predictor(endpoint_name, sagemaker_session, ImageSerializer(), deserializer)
