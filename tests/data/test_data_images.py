"""The shared decoder: RGB conversion, EXIF orientation, draft decode, and every bad-file kind named."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dogclf.data.images import DecodeOptions, ImageDecodeError, check_image, decode_image


def _save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "LA", "I;16"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    img = Image.new("RGB", (20, 10), (200, 30, 30)).convert(mode)
    ext = "tif" if mode in ("CMYK", "I;16") else "png"
    out = decode_image(_save(img, tmp_path / f"x.{ext}"))
    assert out.mode == "RGB" and out.size == (20, 10)


def test_transparent_pixels_become_white(tmp_path):
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    out = decode_image(_save(img, tmp_path / "t.png"))
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    path = _save(img, tmp_path / "rot.jpg", exif=exif)
    assert decode_image(path).size == (20, 40)


def test_draft_mode_decodes_large_jpeg_smaller_but_never_below_target(tmp_path):
    arr = (np.random.default_rng(0).random((1200, 1600, 3)) * 255).astype("uint8")
    path = _save(Image.fromarray(arr), tmp_path / "big.jpg", quality=90)
    full = decode_image(path)
    small = decode_image(path, DecodeOptions(min_side=256))
    assert full.size == (1600, 1200)
    assert min(small.size) >= 256 and small.size[0] < 1600


BAD_FILES = {
    "zero-byte": (lambda p: p.write_bytes(b""), "zero-byte"),
    "not-an-image": (lambda p: p.write_text("hello, I am text"), "not a recognised image"),
    "truncated": (lambda p: p.write_bytes(_jpeg_bytes()[:600]), "cannot decode"),
    "too-many-pixels": (lambda p: Image.new("L", (3000, 3000)).save(p, format="PNG"), "exceeds the limit"),
}


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    arr = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype("uint8")
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_each_bad_file_kind_is_reported_with_its_reason(tmp_path, kind):
    make, expected = BAD_FILES[kind]
    path = tmp_path / f"{kind}.jpg"
    make(path)
    reason = check_image(path, max_pixels=1_000_000)
    assert reason is not None and expected in reason
    if kind != "zero-byte":
        with pytest.raises(ImageDecodeError, match=str(path).replace(".", r"\.")):
            decode_image(path, DecodeOptions(max_pixels=1_000_000))


def test_empty_bytes_are_an_error():
    with pytest.raises(ImageDecodeError, match="empty input"):
        decode_image(b"")
