"""The source folder a job ships: entry scripts, a copy of dogclf, requirements and the resolved config."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dogclf.errors import ConfigError
from dogclf.sagemaker.training import CONFIG_FILE

if TYPE_CHECKING:
    from dogclf.config import RunConfig

ENTRY_SCRIPTS = {"train": "train.py", "hpo": "hpo.py", "inference": "inference.py"}
CODE_DIR = "/opt/ml/model/code"  # where the serving container finds code/ of model.tar.gz


def stage_source_dir(
    scripts: Sequence[str],
    cfg: RunConfig | None = None,
    entry_dir: str | Path | None = None,
    extras: Sequence[str] = (),
) -> Path:
    """A temp folder with the entry scripts, a copy of the dogclf package, requirements.txt and the config.

    requirements.txt (installed by the training toolkit before the script runs) adds the dependencies of
    `extras`; serving-requirements.txt, without them, becomes code/requirements.txt of the job's model.
    """
    from dogclf.config import config_to_yaml
    from dogclf.sagemaker.bundle import SERVING_REQUIREMENTS_FILE, requirements, write_code

    staged = Path(tempfile.mkdtemp(prefix="dogclf-source-"))
    try:
        write_code(staged, scripts, entry_dir, extras=extras)
        (staged / SERVING_REQUIREMENTS_FILE).write_text(requirements(), encoding="utf-8")
    except ConfigError:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    if cfg is not None:
        shipped = cfg.model_copy(deep=True)
        shipped.data.root = None  # the channels decide where the data is
        (staged / CONFIG_FILE).write_text(config_to_yaml(shipped), encoding="utf-8")
    return staged
