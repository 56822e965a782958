"""Safe, fast image decoding shared by training, evaluation and serving."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from dogclf.config import DEFAULT_MAX_PIXELS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
# Pillow plugins allowed to parse an image; Pillow would otherwise try ~40 (EPS even calls Ghostscript).
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM")  # dataset files: IMAGE_EXTENSIONS' formats
# First bytes of common formats, to name what a refused body really is.
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG", "PNG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\0", "TIFF"),
    (b"MM\0*", "TIFF"),
    (b"%!PS", "EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"%PDF", "PDF"),
    (b"\0\0\1\0", "ICO"),
    (b"8BPS", "PSD"),
    (b"P6", "PPM"),
    (b"P3", "PPM"),
    (b"\x00\x00\x00\x0cjP", "JPEG2000"),
)

ImageSource = str | Path | bytes


class ImageDecodeError(ValueError):
    """An image could not be decoded; the message names the source and the reason."""


class ImageFormatError(ImageDecodeError):
    """An image is in a format the caller does not accept; `found` names it."""

    def __init__(self, message: str, found: str) -> None:
        super().__init__(message)
        self.found = found


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode: the smallest size the caller needs (enables JPEG draft mode) and the pixel cap."""

    min_side: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    formats: tuple[str, ...] = IMAGE_FORMATS


def sniff_format(head: bytes) -> str:
    """The format the first bytes of an image announce ('unknown' when none matches)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in _MAGIC if head.startswith(magic)), "unknown")


def _unidentified(source: ImageSource, formats: tuple[str, ...]) -> ImageDecodeError:
    """Why Pillow found no allowed format: a known but refused format, or an unknown one."""
    if isinstance(source, bytes):
        head = source[:16]
    else:
        with open(source, "rb") as f:
            head = f.read(16)
    found = sniff_format(head)
    name = _describe(source)
    if found != "unknown" and found not in formats:
        return ImageFormatError(f"{name}: {found} images are not accepted (allowed: {', '.join(formats)})", found)
    return ImageDecodeError(f"{name}: not a recognised image format")


def _describe(source: ImageSource) -> str:
    return f"{len(source)}-byte image" if isinstance(source, bytes) else str(source)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to RGB; transparent pixels become white rather than black."""
    if img.mode == "RGB":
        return img
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def decode_image(source: ImageSource, options: DecodeOptions = DecodeOptions()) -> Image.Image:
    """Open, bound-check, draft-decode, EXIF-rotate and RGB-convert an image, fully loaded."""
    name = _describe(source)
    if isinstance(source, bytes) and not source:
        raise ImageDecodeError(f"{name}: empty input")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source, formats=options.formats)
            width, height = img.size
            if width * height > options.max_pixels:
                raise ImageDecodeError(
                    f"{name}: {width}x{height} = {width * height} pixels exceeds the limit of {options.max_pixels}"
                )
            if options.min_side and img.format == "JPEG" and min(width, height) > 2 * options.min_side:
                # DCT-domain downscale: decodes at 1/2, 1/4 or 1/8 while both sides stay >= min_side.
                img.draft("RGB", (options.min_side, options.min_side))
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except ImageDecodeError:
        raise
    except FileNotFoundError as exc:
        raise ImageDecodeError(f"{name}: file not found") from exc
    except UnidentifiedImageError as exc:
        raise _unidentified(source, options.formats) from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"{name}: cannot decode ({exc})") from exc


def image_size(data: bytes, formats: tuple[str, ...] = IMAGE_FORMATS) -> tuple[int, int]:
    """(width, height) from an encoded image's header, without decoding its pixels."""
    try:
        with Image.open(io.BytesIO(data), formats=formats) as img:
            return img.size
    except UnidentifiedImageError as exc:
        raise _unidentified(data, formats) from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"{_describe(data)}: cannot decode ({exc})") from exc


def check_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """Return why `path` is not a usable image, or None when it decodes fully."""
    try:
        if path.stat().st_size == 0:
            return "zero-byte file"
        decode_image(path, DecodeOptions(max_pixels=max_pixels))
    except ImageDecodeError as exc:
        return str(exc).removeprefix(f"{path}: ")
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    return None


def is_image_file(path: Path) -> bool:
    """True for files whose extension is a supported image type."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")
