"""The user's private dogclf cache folder: extracted model archives, compiled engine models (torch-free)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from dogclf.errors import ArtifactError

CACHE_ENV = "DOGCLF_MODEL_CACHE"


def cache_root() -> Path:
    """$DOGCLF_MODEL_CACHE, else TMPDIR/dogclf-models-UID; created private to the user, refused if it is not.

    The folder itself is checked (lstat): a link planted in a shared TMPDIR, a folder of another user, or one
    that others may read or write is refused, since what is cached there is loaded and run later.
    """
    override = os.environ.get(CACHE_ENV)
    root = Path(override) if override else Path(tempfile.gettempdir()) / f"dogclf-models-{os.getuid()}"
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        root.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ArtifactError(f"cannot create the model cache {root}: {exc.strerror}; set {CACHE_ENV}") from None
    info = os.lstat(root)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a folder"
        raise ArtifactError(f"model cache {root} is {what}; refusing it: remove it or set {CACHE_ENV}")
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ArtifactError(
            f"model cache {root} is not a private folder of this user (owner uid {info.st_uid}, mode "
            f"{stat.S_IMODE(info.st_mode):o}); refusing it: chmod 700 it, remove it or set {CACHE_ENV}"
        )
    return root
