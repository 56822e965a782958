"""The entry scripts SageMaker runs, shipped inside the package so a wheel install can submit jobs.

`train.py` and `hpo.py` are the training-container scripts (`dogclf.sagemaker.jobs` copies them into each
job's source_dir); `inference.py` is `code/inference.py` of every model.tar.gz. They are plain files as well
as modules: `python -m dogclf.entrypoints.train ...` runs one locally. The repo's top-level `entrypoints/`
holds thin wrappers around these, for running from a clone.
"""

from __future__ import annotations

from pathlib import Path

from dogclf.errors import ConfigError

SCRIPTS = ("train.py", "hpo.py", "inference.py")


def script_path(name: str) -> Path:
    """The file of one entry script (e.g. 'train.py'); the error lists the valid names."""
    if name not in SCRIPTS:
        raise ConfigError(f"unknown entry script {name!r}; dogclf ships {', '.join(SCRIPTS)}")
    return Path(__file__).resolve().parent / name
