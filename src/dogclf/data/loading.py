"""Load a run's dataset: discover the splits and scan the images, failing on bad ones unless told to skip."""

from __future__ import annotations

import logging

from dogclf.config import RunConfig
from dogclf.data.check import BadImage, scan_dataset
from dogclf.data.discovery import DatasetLayout, discover
from dogclf.errors import ConfigError, DatasetError

log = logging.getLogger("dogclf")


def load_dataset(cfg: RunConfig) -> tuple[DatasetLayout, list[BadImage], str]:
    """Discover and scan the dataset; bad images fail the run unless skip_bad_images is set."""
    if cfg.data.root is None:
        raise ConfigError("data.root is not set (pass --data DIR)")
    layout = discover(cfg.data.root, cfg.data.valid_fraction, cfg.data.test_fraction, cfg.runtime.seed)
    report = scan_dataset(layout, cfg.data.max_image_pixels)
    if report.bad and not cfg.data.skip_bad_images:
        raise DatasetError(
            f"{len(report.bad)} bad image(s) in {layout.root} (fix or remove them, or pass --skip-bad-images):\n"
            + report.format_bad()
        )
    if report.bad:
        log.warning("skipping %d bad image(s):\n%s", len(report.bad), report.format_bad(limit=20))
        layout = layout.without({b.path for b in report.bad})
    if not layout.splits.get("valid"):
        raise DatasetError(f"{layout.root}: the valid split has no usable images")
    return layout, report.bad, report.fingerprint
