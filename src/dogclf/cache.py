"""The user's private dogclf cache folder: extracted model archives, compiled engine models (torch-free)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dogclf.errors import ArtifactError

CACHE_ENV = "DOGCLF_MODEL_CACHE"


def cache_root() -> Path:
    """$DOGCLF_MODEL_CACHE, else TMPDIR/dogclf-models-UID; created private to the user, refused if it is not."""
    override = os.environ.get(CACHE_ENV)
    root = Path(override) if override else Path(tempfile.gettempdir()) / f"dogclf-models-{os.getuid()}"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = root.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise ArtifactError(f"{root} is not a private folder of this user; remove it or set {CACHE_ENV}")
    return root
