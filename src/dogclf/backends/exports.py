"""Exported models beside an artifact: MODEL_DIR/exports/<format>-<precision>/ with export.json (torch-free).

export.json records what the engine needs to load the file and what `dogclf export` measured on it, so a
server can pick a gated export without re-measuring, and a stale export (the weights changed) is refused.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dogclf.errors import ArtifactError

EXPORTS_DIR = "exports"
EXPORT_FILE = "export.json"
ExportFormat = Literal["onnx", "openvino"]
FORMATS: tuple[str, ...] = ("onnx", "openvino")
# The only files an export folder holds (beside export.json): what the writers make and packaging ships.
MODEL_FILES = ("model.xml", "model.bin", "model.onnx")


class AccuracyCheck(BaseModel):
    """The exported model against eager fp32 on one split, measured by `dogclf.evaluation.evaluate`."""

    model_config = ConfigDict(extra="forbid")

    split: str
    n: int
    top1_reference: float = Field(description="Eager fp32 top-1 of the artifact on the same images.")
    top1: float
    drop_points: float = Field(description="(top1_reference - top1) * 100; positive means worse.")
    agreement: float = Field(description="Share of images whose top-1 class equals the reference's.")
    ece: float | None = Field(None, description="Expected calibration error at the artifact's temperature.")
    ece_reference: float | None = None
    max_logit_diff: float | None = Field(None, description="Largest |logit - reference logit| over the split.")
    precision: str = Field("fp32", description="The runtime precision the export ran at (the engine's hint).")
    max_drop_points: float
    lost: int | None = Field(None, description="Images the reference got right and the export got wrong.")
    gained: int | None = Field(None, description="Images the reference got wrong and the export got right.")
    drop_upper_points: float | None = Field(
        None, description="95% upper bound of the drop from the images whose answer changed (exact, paired)."
    )
    min_n: int | None = Field(None, description="Images needed for one image to weigh less than max_drop_points.")
    passed: bool = Field(description="drop_upper_points (drop_points for old exports) <= max_drop_points.")
    forced: bool = Field(False, description="Kept by --force although it failed the gate; `auto` never picks it.")


class ExportMetadata(BaseModel):
    """What an exported model is, what it was made from, and how accurate it measured."""

    model_config = ConfigDict(extra="forbid")

    format: ExportFormat
    precision: Literal["fp32", "bf16", "int8"]
    files: list[str] = Field(description="Files of the model in this folder; the first is the one to load.")
    input_name: str = "input"
    image_size: int
    weights_sha256: str = Field(description="sha256 of the artifact's model.pth this was exported from.")
    calibration: dict[str, str | int] | None = None
    accuracy: AccuracyCheck | None = None
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    versions: dict[str, str] = Field(default_factory=dict)

    @field_validator("files")
    @classmethod
    def _known_files(cls, files: list[str]) -> list[str]:
        """Only the known model file names, so export.json cannot point outside its folder."""
        if not files or any(f not in MODEL_FILES for f in files):
            raise ValueError(f"files must be among {', '.join(MODEL_FILES)}, got {files}")
        return files

    @property
    def name(self) -> str:
        """The export's folder name, e.g. openvino-int8."""
        return export_name(self.format, self.precision)

    @property
    def trusted(self) -> bool:
        """Whether `auto` may pick it: int8 must have passed its accuracy gate, and no export may have failed one."""
        if self.accuracy is None:
            return self.precision != "int8"
        return self.accuracy.passed and not self.accuracy.forced


def export_name(fmt: str, precision: str) -> str:
    """Folder name of an export: FORMAT-PRECISION."""
    return f"{fmt}-{precision}"


def weights_digest(model_dir: Path) -> str:
    """sha256 of MODEL_DIR/model.pth, to tie an export to the weights it came from."""
    from dogclf.artifact import WEIGHTS_FILE
    from dogclf.fsutil import file_sha256

    return file_sha256(model_dir / WEIGHTS_FILE)


def read_export(folder: Path) -> ExportMetadata:
    """Load and check FOLDER/export.json and that its files exist."""
    path = folder / EXPORT_FILE
    try:
        meta = ExportMetadata.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{folder}: no {EXPORT_FILE}; not an exported model") from None
    except ValidationError as exc:
        raise ArtifactError(f"{path}: invalid export metadata: {exc.errors()[0]['msg']}") from None
    missing = [f for f in meta.files if not (folder / f).is_file()]
    if missing:
        raise ArtifactError(f"{folder}: export is missing {', '.join(missing)}")
    return meta


def list_exports(model_dir: Path) -> dict[str, ExportMetadata]:
    """The readable exports of an artifact, by folder name (unreadable ones are skipped, not fatal)."""
    root = Path(model_dir) / EXPORTS_DIR
    found: dict[str, ExportMetadata] = {}
    if root.is_dir():
        # Hidden folders are exports being written or replaced by `dogclf export`, never served.
        for folder in sorted(p for p in root.iterdir() if not p.name.startswith(".") and (p / EXPORT_FILE).is_file()):
            try:
                found[folder.name] = read_export(folder)
            except ArtifactError:
                continue
    return found
