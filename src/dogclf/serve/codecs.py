"""Request decoders and response encoders keyed by content type; nothing is ever unpickled."""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dogclf.errors import DogclfError
from dogclf.prediction_format import MAX_TOPK

JSON = "application/json"
NPY = "application/x-npy"
IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
# Pillow plugins a request may reach: common photo formats only (no EPS/PDF/TIFF...); JSON carries x-image bodies.
SERVE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
FORMATS_BY_TYPE = {"image/jpeg": ("JPEG",), "image/png": ("PNG",)}
NPY_VERSIONS = ((1, 0), (2, 0))
MAX_JSON_DIGITS = 100  # no field of a request body is a number; a longer one is refused before int() parses it

# An item is one image: encoded bytes (JPEG, PNG...) or an HxWx3 uint8 RGB pixel array.
Item = bytes | np.ndarray


class RequestError(DogclfError):
    """A request the client must fix; `status` is the HTTP status to answer with."""

    status = 400


class UnsupportedContentType(RequestError):
    """The request's Content-Type has no decoder."""

    status = 415

    def __init__(self, content_type: str) -> None:
        super().__init__(f"unsupported Content-Type {content_type!r}; supported: {', '.join(SUPPORTED_CONTENT_TYPES)}")
        self.content_type = content_type


class NotAcceptable(RequestError):
    """The request's Accept names no type we can produce."""

    status = 406

    def __init__(self, accept: str) -> None:
        super().__init__(f"cannot produce Accept {accept!r}; supported: {', '.join(SUPPORTED_ACCEPTS)}")
        self.accept = accept


class PayloadTooLarge(RequestError):
    """The body exceeds the size limit."""

    status = 413


class UnsupportedImageFormat(RequestError):
    """An image's real format is not one its Content-Type allows."""

    status = 415


def image_formats(content_type: str | None) -> tuple[str, ...]:
    """The image formats a request's Content-Type allows Pillow to open."""
    return FORMATS_BY_TYPE.get(media_type(content_type)[0], SERVE_FORMATS)


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """'Application/JSON; topk=3' -> ('application/json', {'topk': '3'})."""
    main, *params = (header or "").split(";")
    parsed = {}
    for param in params:
        key, _, value = param.partition("=")
        if key.strip():
            parsed[key.strip().lower()] = value.strip().strip('"')
    return main.strip().lower(), parsed


def _decode_image(body: bytes) -> list[Item]:
    if not body:
        raise RequestError("empty request body: send the image bytes")
    return [body]


def decode_base64(value: object, where: str) -> bytes:
    """One base64 image (a string or {"b64": ...}) -> bytes; 400 naming `where` otherwise."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        value = value["b64"]
    if not isinstance(value, str):
        raise RequestError(f'{where}: expected a base64 string or {{"b64": ...}}, got {type(value).__name__}')
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"{where}: not valid base64") from None


def _json_int(text: str) -> int:
    """A JSON integer, refused beyond MAX_JSON_DIGITS digits (Python's own limit ends in a ValueError)."""
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise RequestError(f"invalid JSON body: a number of {len(text.lstrip('-'))} digits (at most {MAX_JSON_DIGITS})")
    return int(text)


def parse_json(body: bytes) -> object:
    """A JSON request body, refused (400) when invalid, nested too deeply or holding an over-long integer."""
    try:
        return json.loads(body, parse_int=_json_int)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise RequestError(f"invalid JSON body: {exc}") from None
    except RecursionError:
        raise RequestError("invalid JSON body: nested too deeply") from None


def _decode_json(body: bytes) -> list[Item]:
    doc = parse_json(body)
    if isinstance(doc, dict) and len(doc.keys() & {"instances", "images"}) == 1:
        key = "instances" if "instances" in doc else "images"
        images = doc[key]
    else:
        raise RequestError('JSON body must be {"instances": [...]} or {"images": [...]} of base64 images')
    if not isinstance(images, list) or not images:
        raise RequestError(f'"{key}" must be a non-empty list of base64 images')
    return [decode_base64(value, f"{key}[{i}]") for i, value in enumerate(images)]


def _npy_header(body: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, data offset) from a .npy header, checked before any array exists."""
    from numpy.lib import format as npy_format

    stream = io.BytesIO(body)
    try:
        version = npy_format.read_magic(stream)
        if version not in NPY_VERSIONS:
            raise ValueError(f"unsupported .npy format version {version}")
        read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, fortran, dtype = read(stream, max_header_size=10_000)
    except (ValueError, TypeError, OSError, EOFError, SyntaxError, RecursionError) as exc:
        raise RequestError(f"invalid .npy body: {exc}") from None
    return shape, fortran, dtype, stream.tell()


def _decode_npy(body: bytes) -> np.ndarray:
    shape, fortran, dtype, offset = _npy_header(body)
    if dtype != np.uint8 or len(shape) not in (3, 4) or shape[-1] != 3:
        raise RequestError(
            f"an application/x-npy body must be uint8 RGB pixels shaped HxWx3 or NxHxWx3, got {dtype} {shape}"
        )
    declared = math.prod(shape) * dtype.itemsize
    if declared != len(body) - offset:
        raise RequestError(f".npy header declares {shape} = {declared} bytes but the body holds {len(body) - offset}")
    array = np.frombuffer(body, dtype=np.uint8, count=declared, offset=offset).reshape(
        shape, order="F" if fortran else "C"
    )
    batch = array[None] if array.ndim == 3 else array
    if batch.shape[0] == 0 or 0 in batch.shape[1:3]:
        raise RequestError(f"empty .npy image batch {tuple(array.shape)}")
    return batch  # indexing yields HxWx3 views; no per-image copies before the count check


DECODERS: dict[str, Callable[[bytes], Sequence[Item]]] = {
    **{t: _decode_image for t in IMAGE_TYPES},
    JSON: _decode_json,
    NPY: _decode_npy,
}
SUPPORTED_CONTENT_TYPES = tuple(DECODERS)
SUPPORTED_ACCEPTS = (JSON, NPY)


def decode_body(body: bytes | str, content_type: str | None, max_images: int | None = None) -> Sequence[Item]:
    """Split a request body into images using the decoder registered for its Content-Type."""
    kind, _ = media_type(content_type)
    decoder = DECODERS.get(kind)
    if decoder is None:
        raise UnsupportedContentType(content_type or "")
    items = decoder(body.encode("utf-8") if isinstance(body, str) else body)
    if max_images is not None and len(items) > max_images:
        raise PayloadTooLarge(f"{len(items)} images in one request; the limit is {max_images}")
    return items


def parse_topk(value: str | int | None, where: str) -> int | None:
    """Validate a top-k request value (1..MAX_TOPK)."""
    if value is None or value == "":
        return None
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise RequestError(f"{where}: topk must be an integer, got {value!r}") from None
    if not 1 <= k <= MAX_TOPK:
        raise RequestError(f"{where}: topk must be between 1 and {MAX_TOPK}, got {k}")
    return k


# SageMaker forwards the caller's CustomAttributes in this header (HTTP header names are case-insensitive).
ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"


def custom_attributes(header: str | None) -> dict[str, str]:
    """'topk=3,trace=1' or 'topk=3;x=y' (SageMaker CustomAttributes) -> dict."""
    out = {}
    for part in (header or "").replace(";", ",").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[key.strip().lower()] = value.strip()
    return out


@dataclass(frozen=True)
class ResponseFormat:
    """What to send back: the media type and how many classes per image."""

    media_type: str
    topk: int


def response_format(
    accept: str | None, default_topk: int, query_topk: str | None = None, attributes: str | None = None
) -> ResponseFormat:
    """Pick the output type from Accept and k from the Accept parameter, the query or CustomAttributes."""
    chosen, params = None, {}
    for candidate in (accept or JSON).split(","):
        kind, candidate_params = media_type(candidate)
        if kind in ("", "*/*", "application/*"):
            kind = JSON
        if kind in SUPPORTED_ACCEPTS:
            chosen, params = kind, candidate_params
            break
    if chosen is None:
        raise NotAcceptable(accept or "")
    k = (
        parse_topk(params.get("topk"), "Accept")
        or parse_topk(query_topk, "query")
        or parse_topk(custom_attributes(attributes).get("topk"), "CustomAttributes")
        or default_topk
    )
    return ResponseFormat(chosen, k)


def encode_npy(array: np.ndarray) -> bytes:
    """Serialize an array as .npy bytes (no pickle)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def error_body(status: int, message: str) -> bytes:
    """The JSON body of every error response."""
    return json.dumps({"error": {"status": status, "message": message}}).encode("utf-8")
