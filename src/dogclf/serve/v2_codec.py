"""Open Inference Protocol (KServe v2) bodies: the infer request's inputs and the response's outputs.

JSON tensors, and the binary tensor data extension (a JSON head of `Inference-Header-Content-Length` bytes
followed by each binary tensor in order; BYTES elements carry a 4-byte little-endian length each).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field

import numpy as np

from dogclf.serve.codecs import PayloadTooLarge, RequestError, decode_base64, parse_json

IMAGES, PIXELS = "images", "pixels"
PROBABILITIES, LABELS = "probabilities", "labels"
OUTPUTS = (PROBABILITIES, LABELS)
DATATYPES = {IMAGES: "BYTES", PIXELS: "FP32"}
HEADER_LENGTH = "Inference-Header-Content-Length"
LENGTH = struct.Struct("<I")


@dataclass
class InferRequest:
    """A parsed infer request: one input (encoded images or an FP32 NCHW tensor) and the outputs wanted."""

    input_name: str
    images: list[bytes] = field(default_factory=list)
    pixels: np.ndarray | None = None
    outputs: dict[str, bool] = field(default_factory=dict)  # output name -> binary
    request_id: str | None = None


def split_body(body: bytes, header_length: str | None) -> tuple[dict, bytes]:
    """(JSON head, binary tail) of an infer body; the head is the whole body without the header."""
    size = len(body)
    if header_length is not None:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise RequestError(
                f"{HEADER_LENGTH} {header_length[:32]!r} is not a length within the body of {len(body)} bytes"
            )
        size = int(header_length)
    doc = parse_json(body[:size])
    if not isinstance(doc, dict):
        raise RequestError('the infer request must be a JSON object with "inputs"')
    return doc, body[size:]


def parse_infer(
    doc: dict, binary: bytes, max_images: int, image_size: int, known_outputs: tuple[str, ...] = OUTPUTS
) -> InferRequest:
    """Validate the request's single input against the model (names, datatype, shape, data) and its outputs."""
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError('"inputs" must be a non-empty list with one input: "images" (BYTES) or "pixels" (FP32)')
    if len(inputs) > 1:
        raise RequestError(f'{len(inputs)} inputs; send one: "images" (BYTES) or "pixels" (FP32)')
    spec = inputs[0]
    if not isinstance(spec, dict):
        raise RequestError("inputs[0] must be an object")
    name, shape = _name_and_shape(spec)
    data = _binary_data(spec, binary)
    request_id = doc.get("id")
    out = InferRequest(
        name, outputs=_outputs(doc, known_outputs), request_id=request_id if isinstance(request_id, str) else None
    )
    if name == IMAGES:
        out.images = _images(spec, shape, data, max_images)
    else:
        out.pixels = _pixels(spec, shape, data, max_images, image_size)
    return out


def _name_and_shape(spec: dict) -> tuple[str, list[int]]:
    name, datatype, shape = spec.get("name"), spec.get("datatype"), spec.get("shape")
    if name not in DATATYPES:
        raise RequestError(f'unknown input {str(name)[:64]!r}; inputs: "images" (BYTES) or "pixels" (FP32)')
    if datatype != DATATYPES[name]:
        raise RequestError(f"input {name!r} must have datatype {DATATYPES[name]}, got {str(datatype)[:32]!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise RequestError(f"input {name!r}: shape must be a list of non-negative integers")
    return name, shape


def _binary_data(spec: dict, binary: bytes) -> bytes | None:
    """The input's binary tensor, which must be the whole binary tail; None for JSON data."""
    params = spec.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is None:
        if binary:
            raise RequestError(f"{len(binary)} bytes of binary data follow the JSON head but no input declares them")
        if "data" not in spec:
            raise RequestError(f"input {spec['name']!r} has neither data nor parameters.binary_data_size")
        return None
    if not isinstance(size, int) or size != len(binary):
        raise RequestError(
            f"input {spec['name']!r}: binary_data_size {size!r} but {len(binary)} bytes follow the JSON head"
        )
    return binary


def _count(name: str, shape: list[int], max_images: int) -> int:
    count = shape[0] if shape else 0
    if count < 1:
        raise RequestError(f"input {name!r}: shape {shape} holds no image")
    if count > max_images:
        raise PayloadTooLarge(f"{count} images in one request; the limit is {max_images}")
    return count


def _images(spec: dict, shape: list[int], data: bytes | None, max_images: int) -> list[bytes]:
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise RequestError(f"input 'images' must have shape [N] or [N, 1], got {shape}")
    count = _count(IMAGES, shape, max_images)
    if data is not None:
        images = _split_bytes(data, count)
    else:
        values = spec["data"]
        if not isinstance(values, list):
            raise RequestError("input 'images': data must be a list of base64 strings")
        values = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]
        if len(values) != count:
            raise RequestError(f"input 'images': shape {shape} declares {count} images, data holds {len(values)}")
        images = [decode_base64(v, f"images[{i}]") for i, v in enumerate(values)]
    if not all(images):
        raise RequestError("input 'images': an image of 0 bytes")
    return images


def _split_bytes(data: bytes, count: int) -> list[bytes]:
    """BYTES elements from binary data: each a 4-byte little-endian length, then that many bytes."""
    out, offset = [], 0
    while offset < len(data) and len(out) < count:
        if offset + LENGTH.size > len(data):
            raise RequestError("input 'images': binary data ends inside an element's length prefix")
        (size,) = LENGTH.unpack_from(data, offset)
        offset += LENGTH.size
        if offset + size > len(data):
            raise RequestError(f"input 'images': element {len(out) + 1} declares {size} bytes past the end of the data")
        out.append(data[offset : offset + size])
        offset += size
    if len(out) != count or offset != len(data):
        raise RequestError(
            f"input 'images': binary data holds {len(out)} elements and {len(data) - offset} bytes more; "
            f"shape says {count} elements"
        )
    return out


def _pixels(spec: dict, shape: list[int], data: bytes | None, max_images: int, image_size: int) -> np.ndarray:
    expected = [3, image_size, image_size]
    if len(shape) != 4 or shape[1:] != expected:
        raise RequestError(
            f"input 'pixels' must have shape [N, 3, {image_size}, {image_size}] (the model's input), got {shape}"
        )
    count = _count(PIXELS, shape, max_images)
    size = math.prod(shape)
    if data is not None:
        if len(data) != size * 4:
            raise RequestError(f"input 'pixels': shape {shape} needs {size * 4} bytes of FP32, got {len(data)}")
        array = np.frombuffer(data, dtype="<f4").astype(np.float32)
    else:
        try:
            array = np.asarray(spec["data"], dtype=np.float32).reshape(-1)
        except (TypeError, ValueError):
            raise RequestError("input 'pixels': data must be a flat (or nested) list of numbers") from None
        if array.size != size:
            raise RequestError(f"input 'pixels': shape {shape} declares {size} values, data holds {array.size}")
    if not np.isfinite(array).all():
        raise RequestError("input 'pixels': data holds NaN or infinite values")
    return array.reshape(count, *expected)


def _outputs(doc: dict, known: tuple[str, ...]) -> dict[str, bool]:
    """Output name -> whether to send it as binary; every output when none is asked for."""
    params = doc.get("parameters") or {}
    binary_all = bool(params.get("binary_data_output")) if isinstance(params, dict) else False
    wanted = doc.get("outputs")
    if wanted is None:
        return dict.fromkeys(known, binary_all)
    if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
        raise RequestError('"outputs" must be a list of {"name": ...} objects')
    out = {}
    for spec in wanted:
        name = spec.get("name")
        if name not in known:
            raise RequestError(f"unknown output {str(name)[:64]!r}; outputs: {', '.join(known)}")
        params = spec.get("parameters") or {}
        out[name] = bool(params.get("binary_data", binary_all)) if isinstance(params, dict) else binary_all
    return out


def encode_response(head: dict, tensors: dict[str, np.ndarray], binary: dict[str, bool]) -> tuple[bytes, int | None]:
    """(body, JSON head length or None): the outputs asked for, as JSON data or binary tensor data."""
    outputs, blobs = [], []
    for name, array in tensors.items():
        datatype = "BYTES" if array.dtype == object else "FP32"
        out: dict = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary[name]:
            blob = _bytes_blob(array) if datatype == "BYTES" else array.astype("<f4").tobytes()
            out["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            out["data"] = [str(v) for v in array.reshape(-1)] if datatype == "BYTES" else array.reshape(-1).tolist()
        outputs.append(out)
    text = json.dumps({**head, "outputs": outputs}).encode("utf-8")
    return (text + b"".join(blobs), len(text)) if blobs else (text, None)


def _bytes_blob(array: np.ndarray) -> bytes:
    parts = []
    for value in array.reshape(-1):
        data = str(value).encode("utf-8")
        parts += [LENGTH.pack(len(data)), data]
    return b"".join(parts)
