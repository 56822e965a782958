"""The model artifact: model.pth (state_dict) + metadata.json, loadable with nothing else."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from dogclf.data.preprocess import Preprocess
from dogclf.errors import ArtifactError
from dogclf.fsutil import atomic_write_text

WEIGHTS_FILE = "model.pth"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1


class ArtifactMetadata(BaseModel):
    """Everything needed to rebuild, preprocess for and label a trained model."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    arch: str
    num_classes: int
    class_names: list[str]
    class_folders: list[str]
    dropout: float = 0.0
    preprocess: Preprocess
    metrics: dict[str, float] = Field(default_factory=dict)
    temperature: float = Field(1.0, gt=0, description="Softmax temperature fitted on the valid split (1: none).")
    temperature_note: str | None = Field(None, description="How the temperature was decided (fitted, or why not).")
    dataset_fingerprint: str | None = None
    run_name: str | None = None
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    versions: dict[str, str] = Field(default_factory=dict)

    @property
    def version(self) -> str:
        """A short model version for responses and logs."""
        return f"{self.run_name or self.arch}@{self.created}"


def runtime_versions() -> dict[str, str]:
    """Versions that affect numerics and loading."""
    import torchvision

    from dogclf import __version__

    return {
        "dogclf": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
    }


class Artifact:
    """A loaded model (eval mode, CPU) with its metadata."""

    def __init__(self, model: nn.Module, metadata: ArtifactMetadata, path: Path | None = None) -> None:
        self.model = model
        self.metadata = metadata
        self.path = path

    @property
    def class_names(self) -> list[str]:
        """Display names in label order: index i of the model's output is class_names[i]."""
        return self.metadata.class_names

    @property
    def preprocess(self) -> Preprocess:
        """The preprocessing the model was trained with, so inference matches it."""
        return self.metadata.preprocess


def _backup(directory: Path) -> Path:
    """Where the previous artifact waits while a new one is swapped in."""
    return directory.parent / f".{directory.name}.old"


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's entries to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _recover(directory: Path) -> None:
    """Finish a swap a killed process left half done: restore the backup, or drop a stale one."""
    backup = _backup(directory)
    if not backup.exists():
        return
    if (directory / METADATA_FILE).is_file():
        shutil.rmtree(backup, ignore_errors=True)
    elif (backup / METADATA_FILE).is_file():
        os.replace(backup, directory)
        _fsync(directory.parent)


def save_artifact(
    directory: str | Path, model: nn.Module, metadata: ArtifactMetadata, extra: dict[str, str] | None = None
) -> Path:
    """Write model.pth + metadata.json (+ `extra` text files by name) into `directory` atomically and durably.

    The new folder is written and fsynced beside the old one; then old -> .NAME.old, new -> NAME, so at
    every instant a complete artifact exists (load_artifact restores the backup after a kill in between).
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _recover(directory)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    backup = _backup(directory)
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        with (tmp / WEIGHTS_FILE).open("wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        atomic_write_text(tmp / METADATA_FILE, metadata.model_dump_json(indent=2))
        for name, text in (extra or {}).items():
            atomic_write_text(tmp / name, text)
        _fsync(tmp)
        if directory.exists():
            os.replace(directory, backup)
        os.replace(tmp, directory)
        _fsync(directory.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)
    return directory


def resolve_artifact_dir(path: str | Path) -> Path:
    """Accept a model folder or a run folder (whose model/ holds the artifact)."""
    path = Path(path)
    for candidate in (path, path / "model"):
        if not (candidate / METADATA_FILE).is_file() and (_backup(candidate) / METADATA_FILE).is_file():
            try:
                _recover(candidate)
            except OSError:
                return _backup(candidate)  # read-only place: load the backup as it is
        if (candidate / METADATA_FILE).is_file():
            return candidate
    if not path.exists():
        raise ArtifactError(f"model not found: {path}")
    raise ArtifactError(f"{path} holds no {METADATA_FILE} (expected a model folder or a run folder with model/)")


def read_metadata(directory: Path) -> ArtifactMetadata:
    """Parse and validate metadata.json; errors name the file and field."""
    file = directory / METADATA_FILE
    try:
        raw: Any = json.loads(file.read_text(encoding="utf-8"))
        meta = ArtifactMetadata.model_validate(raw)
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read {file}: {exc}") from None
    except ValidationError as exc:
        from dogclf.config import format_validation_error

        raise ArtifactError(format_validation_error(exc, str(file))) from None
    if meta.format_version > FORMAT_VERSION:
        raise ArtifactError(f"{file}: format_version {meta.format_version} is newer than this dogclf supports")
    if len(meta.class_names) != meta.num_classes:
        raise ArtifactError(f"{file}: {len(meta.class_names)} class_names but num_classes={meta.num_classes}")
    return meta


def load_artifact(path: str | Path) -> Artifact:
    """Rebuild the model from metadata and load model.pth with weights_only=True."""
    from dogclf.models import create_model

    directory = resolve_artifact_dir(path)
    meta = read_metadata(directory)
    weights_file = directory / WEIGHTS_FILE
    if not weights_file.is_file():
        raise ArtifactError(f"{weights_file} is missing")
    try:
        state = torch.load(weights_file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ArtifactError(f"cannot load {weights_file} (weights_only=True): {exc}") from None
    model = create_model(meta.arch, meta.num_classes, weights=None, freeze="nothing", dropout=meta.dropout)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(
            f"{weights_file} does not match {meta.arch} with {meta.num_classes} classes: {exc}"
        ) from None
    model.eval()
    return Artifact(model, meta, directory)
