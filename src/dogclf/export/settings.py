"""Defaults of `export_model` shared with the CLI, which must build its parser without torch."""

from __future__ import annotations

DEFAULT_MAX_DROP = 1.0  # top-1 points an export may lose against eager fp32 on the held-out split
# A few hundred images pin activation ranges well; more only slows the export (NNCF's default is 300 too).
DEFAULT_CALIBRATION_IMAGES = 300
