"""Atomic file writes (a reader sees the old file or the new one, never half of one), hashes and bounded reads."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call write(f) on a temp file in the same folder, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def stream_sha256(f: IO[bytes]) -> str:
    """Hex sha256 of the rest of an open binary file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    with Path(path).open("rb") as f:
        return stream_sha256(f)


def _size_text(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


def open_bounded(
    path: str | Path, limit: int, what: str, *, follow_links: bool = True, error: type[Exception] | None = None
) -> IO[bytes]:
    """Open a regular file of at most `limit` bytes for reading; else a one-line `error` naming `what` and the path.

    With follow_links False a symbolic link is refused (O_NOFOLLOW), so a folder's files cannot point out of it.
    Devices and pipes are refused without blocking. `error` defaults to ConfigError.
    """
    from dogclf.errors import ConfigError

    error = error or ConfigError
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_links:
            raise error(f"{what} {path} is a symbolic link; dogclf does not follow links here") from None
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    f = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        f.close()
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is not a regular file")
        raise error(f"{what} {path} is larger than {_size_text(limit)}, the most dogclf reads of it")
    return f


def read_bounded(
    path: str | Path, limit: int, what: str, *, follow_links: bool = True, error: type[Exception] | None = None
) -> bytes:
    """A regular file's bytes, at most `limit` of them (`open_bounded`); the size is checked again while reading."""
    with open_bounded(path, limit, what, follow_links=follow_links, error=error) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        from dogclf.errors import ConfigError

        raise (error or ConfigError)(f"{what} {path} is larger than {_size_text(limit)}, the most dogclf reads of it")
    return data
