"""Up-front validation of every image in a dataset, and the dataset fingerprint."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dogclf.config import DEFAULT_MAX_PIXELS
from dogclf.data.discovery import DatasetLayout
from dogclf.data.images import check_image
from dogclf.fsutil import file_sha256
from dogclf.system import cpu_count


@dataclass(frozen=True)
class BadImage:
    """An image that cannot be used, and why."""

    path: Path
    reason: str


@dataclass
class ScanReport:
    """Result of scanning a dataset: bad files and a content fingerprint of the good ones."""

    bad: list[BadImage]
    fingerprint: str
    counts: dict[str, list[int]]

    def format_bad(self, limit: int | None = None) -> str:
        """Indented `path: reason` lines for error messages, the first `limit` of them when given."""
        shown = self.bad if limit is None else self.bad[:limit]
        lines = [f"  {b.path}: {b.reason}" for b in shown]
        if limit is not None and len(self.bad) > limit:
            lines.append(f"  ... and {len(self.bad) - limit} more")
        return "\n".join(lines)


def _inspect(path: Path, max_pixels: int) -> tuple[str | None, str]:
    reason = check_image(path, max_pixels)
    digest = "" if reason else file_sha256(path)
    return reason, digest


def scan_dataset(layout: DatasetLayout, max_pixels: int = DEFAULT_MAX_PIXELS, workers: int | None = None) -> ScanReport:
    """Decode every image once (in threads) and fingerprint split, path, label and content."""
    entries = [(split, s) for split, samples in layout.splits.items() for s in samples]
    workers = workers or min(8, 2 * cpu_count())
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda e: _inspect(e[1].path, max_pixels), entries))
    bad = []
    h = hashlib.sha256()
    h.update("\n".join(layout.class_folders).encode())
    for (split, sample), (reason, digest) in zip(entries, results, strict=True):
        if reason:
            bad.append(BadImage(sample.path, reason))
            continue
        rel = sample.path.relative_to(layout.root).as_posix()
        h.update(f"\n{split}\t{rel}\t{sample.label}\t{digest}".encode())
    good = layout.without({b.path for b in bad})
    return ScanReport(bad=bad, fingerprint=h.hexdigest()[:16], counts=good.counts())
