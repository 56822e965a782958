"""The code folder that travels with a job or a model: entry scripts, a copy of dogclf, requirements.txt.

SDK-free, so it runs on the submitting machine (a job's source_dir) and inside the training container (the
`code/` folder a training job adds to its model, which makes the job's model.tar.gz deployable as is).
The entry scripts are package files of `dogclf.entrypoints` (found by `dogclf.entry_scripts`), so wheel
installs work too.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dogclf.entry_scripts import package_dir, script_path
from dogclf.errors import ConfigError

if TYPE_CHECKING:
    from dogclf.config import RunConfig

REQUIREMENTS_FILE = "requirements.txt"
# Next to a job's entry script: the requirements of the serving code the job adds to its model. The job's own
# requirements.txt may carry extras (smdebug) that serving does not need, and the container has no dogclf
# metadata to tell them apart.
SERVING_REQUIREMENTS_FILE = "serving-requirements.txt"
# The PyTorch containers ship these; reinstalling them from PyPI could swap the image's CUDA build.
PREINSTALLED = ("torch", "torchvision")
_EXTRA = re.compile(r"""^\s*extra\s*==\s*["']([\w.-]+)["']\s*$""")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _declared() -> list[tuple[str, str, str | None]]:
    """(name, requirement, extra or None) for each dependency in the installed dogclf's metadata."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        reqs = requires("dogclf") or []
    except PackageNotFoundError:
        raise ConfigError(
            "dogclf's package metadata is missing, so the job's requirements.txt cannot be written; "
            "install dogclf (pip install -e . in a clone) rather than running it from the source tree"
        ) from None
    out = []
    for req in reqs:
        spec, _, marker = req.partition(";")
        extra = _EXTRA.match(marker)
        name = _NAME.match(spec)
        out.append((name.group(1).lower() if name else spec, (spec if extra else req).strip(), extra and extra[1]))
    return out


def requirements(extras: Sequence[str] = ()) -> str:
    """The dependencies of dogclf and of its `extras` (e.g. 'debug': smdebug), minus what the PyTorch images have."""
    declared = _declared()
    known = sorted({extra for _, _, extra in declared if extra})
    unknown = sorted(set(extras) - set(known))
    if unknown:
        raise ConfigError(f"unknown dogclf extra(s) {unknown}; valid: {', '.join(known)}")
    keep = [
        req
        for name, req, extra in declared
        if name not in (*PREINSTALLED, "dogclf") and (extra is None or extra in extras)
    ]
    return "".join(f"{r}\n" for r in keep)


def job_extras(cfg: RunConfig, mode: str = "train") -> tuple[str, ...]:
    """The extras a training job running `cfg` imports: 'debug' (smdebug) for tensors or rules, 'mlflow' when set.

    Tuning trials ('hpo') never run hooks. Profiling needs psutil and torch only, which every install has, and
    TensorBoard is a core dependency. MLflow counts only when `tracking.mlflow` is true in the config itself:
    the submitting shell's MLFLOW_TRACKING_URI does not reach the container.
    """
    debugging = cfg.debug.enabled or cfg.debug.live_rules
    wanted = {"debug": mode == "train" and debugging, "mlflow": cfg.tracking.mlflow is True}
    return tuple(extra for extra, on in wanted.items() if on)


def write_code(
    dest: str | Path,
    scripts: Sequence[str],
    entry_dir: str | Path | None = None,
    requirements_text: str | None = None,
    extras: Sequence[str] = (),
) -> Path:
    """Fill `dest` with the entry scripts, a copy of the running dogclf package and requirements.txt.

    requirements.txt is `requirements_text` when given, else dogclf's dependencies with those of `extras`.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in scripts:
        src = Path(entry_dir) / name if entry_dir else script_path(name)
        if not src.is_file():
            raise ConfigError(f"entry script {src} not found")
        shutil.copy2(src, dest / name)
    package = package_dir()
    shutil.copytree(package, dest / "dogclf", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    text = requirements(extras) if requirements_text is None else requirements_text
    (dest / REQUIREMENTS_FILE).write_text(text, encoding="utf-8")
    return dest
