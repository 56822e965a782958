"""The entry scripts SageMaker runs, found as package files of `dogclf.entrypoints` without importing them."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from dogclf.errors import ConfigError

SCRIPTS = ("train.py", "hpo.py", "inference.py")


def script_path(name: str) -> Path:
    """The file of one entry script (e.g. 'train.py'); the error lists the valid names."""
    if name not in SCRIPTS:
        raise ConfigError(f"unknown entry script {name!r}; dogclf ships {', '.join(SCRIPTS)}")
    return Path(str(files("dogclf.entrypoints").joinpath(name))).resolve()


def package_dir() -> Path:
    """The folder of the running dogclf package (copied into training jobs' source_dir)."""
    return Path(str(files("dogclf"))).resolve()
