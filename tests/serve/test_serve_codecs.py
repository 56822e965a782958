"""Content-type decoders, Accept/top-k negotiation and their error messages."""

import base64
import io
import json

import numpy as np
import pytest

from dogclf.serve.codecs import (
    NotAcceptable,
    RequestError,
    UnsupportedContentType,
    custom_attributes,
    decode_body,
    encode_npy,
    response_format,
)


def test_image_types_pass_bytes_through():
    for kind in ("image/jpeg", "image/png", "application/x-image", "Image/JPEG; charset=binary"):
        assert decode_body(b"\xff\xd8abc", kind) == [b"\xff\xd8abc"]


def test_unsupported_content_type_is_415_and_lists_the_supported_ones():
    with pytest.raises(UnsupportedContentType) as err:
        decode_body(b"hello", "text/plain")
    assert err.value.status == 415
    assert "'text/plain'" in str(err.value) and "image/jpeg" in str(err.value) and "application/x-npy" in str(err.value)
    with pytest.raises(UnsupportedContentType):
        decode_body(b"x", None)


def test_json_carries_several_base64_images():
    a, b = b"first-image", b"second-image"
    body = json.dumps({"instances": [base64.b64encode(a).decode(), {"b64": base64.b64encode(b).decode()}]})
    assert decode_body(body, "application/json") == [a, b]
    assert decode_body(json.dumps({"images": [base64.b64encode(a).decode()]}).encode(), "application/json") == [a]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "invalid JSON body"),
        ('{"instances": []}', "non-empty list"),
        ('{"other": 1}', '{"instances": [...]}'),
        ('{"instances": ["%%%"]}', "instances[0]: not valid base64"),
        ('{"images": [3]}', "images[0]: expected a base64 string"),
    ],
)
def test_bad_json_bodies_name_the_problem(body, message):
    with pytest.raises(RequestError) as err:
        decode_body(body, "application/json")
    assert err.value.status == 400 and message in str(err.value)


def test_npy_is_uint8_pixels_and_never_unpickled():
    batch = np.random.default_rng(0).integers(0, 255, (2, 8, 9, 3), dtype=np.uint8)
    items = decode_body(encode_npy(batch), "application/x-npy")
    assert len(items) == 2 and np.array_equal(items[1], batch[1])
    assert len(decode_body(encode_npy(batch[0]), "application/x-npy")) == 1

    pickled = io.BytesIO()
    np.save(pickled, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(RequestError, match="must be uint8 RGB pixels.*got object"):  # refused from the header
        decode_body(pickled.getvalue(), "application/x-npy")
    with pytest.raises(RequestError, match="uint8 RGB pixels"):
        decode_body(encode_npy(np.zeros((4, 4), np.float32)), "application/x-npy")


def _npy_header_only(shape: tuple[int, ...]) -> bytes:
    from numpy.lib import format as npy_format

    out = io.BytesIO()
    npy_format.write_array_header_1_0(out, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return out.getvalue()


def test_npy_declared_shape_must_match_the_body_before_any_allocation():
    bomb = _npy_header_only((1, 100_000, 100_000, 3))  # asks for 28 GiB in ~128 bytes
    with pytest.raises(RequestError, match="declares .* bytes but the body holds 0"):
        decode_body(bomb, "application/x-npy")
    with pytest.raises(RequestError, match="declares"):
        decode_body(_npy_header_only((2, 2, 3)) + b"\0" * 11, "application/x-npy")
    good = decode_body(_npy_header_only((2, 2, 3)) + bytes(range(12)), "application/x-npy")
    assert good[0].shape == (2, 2, 3) and good[0][1, 1, 2] == 11
    with pytest.raises(RequestError, match="invalid .npy body"):
        decode_body(b"\x93NUMPY\x09\x00" + bomb[8:], "application/x-npy")  # unknown format version


def test_deeply_nested_json_is_a_400_not_a_recursion_crash():
    with pytest.raises(RequestError, match="nested too deeply") as err:
        decode_body(b"[" * 200_000, "application/json")
    assert err.value.status == 400
    shallow = decode_body(b'{"images": ["AAAA"]}', "application/json")
    assert shallow == [b"\0\0\0"]


def test_image_count_is_checked_before_any_image_is_copied():
    batch = np.zeros((40, 1, 1, 3), np.uint8)
    with pytest.raises(RequestError) as err:
        decode_body(encode_npy(batch), "application/x-npy", max_images=32)
    assert err.value.status == 413 and "40 images in one request; the limit is 32" in str(err.value)
    assert len(decode_body(encode_npy(batch), "application/x-npy", max_images=40)) == 40


def test_empty_image_body_is_a_400():
    with pytest.raises(RequestError, match="empty request body"):
        decode_body(b"", "image/jpeg")


def test_topk_from_accept_then_query_then_custom_attributes():
    assert response_format(None, 5) == response_format("*/*", 5)
    assert response_format(None, 5).topk == 5 and response_format(None, 5).media_type == "application/json"
    assert response_format("application/json; topk=2", 5, "3", "topk=4").topk == 2
    assert response_format("application/json", 5, "3", "topk=4").topk == 3
    assert response_format("application/json", 5, None, "trace=abc,topk=4").topk == 4
    assert response_format("text/csv, application/x-npy", 5).media_type == "application/x-npy"
    assert custom_attributes("a=1; topk=7") == {"a": "1", "topk": "7"}


def test_bad_accept_and_topk_are_client_errors():
    with pytest.raises(NotAcceptable) as err:
        response_format("text/csv", 5)
    assert err.value.status == 406 and "application/json" in str(err.value)
    with pytest.raises(RequestError, match="query: topk must be between 1 and 100, got 0"):
        response_format(None, 5, "0")
    with pytest.raises(RequestError, match="CustomAttributes: topk must be an integer"):
        response_format(None, 5, None, "topk=lots")
