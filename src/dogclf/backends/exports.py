"""Exported models beside an artifact: MODEL_DIR/exports/<format>-<precision>/ with export.json (torch-free).

export.json records what the engine needs to load the file, the sha256 of every file, and what `dogclf export`
measured on it, so a server can pick a gated export without re-measuring, and a stale export (the weights
changed) is refused. Nothing in an export folder is taken on trust: links are refused, the folder name must
match the metadata, the gate's verdict must agree with its figures, and the files must match their digests.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dogclf.errors import ArtifactError
from dogclf.fsutil import file_sha256, open_bounded, stream_sha256

EXPORTS_DIR = "exports"
EXPORT_FILE = "export.json"
ExportFormat = Literal["onnx", "openvino"]
FORMATS: tuple[str, ...] = ("onnx", "openvino")
# The only files an export folder holds (beside export.json): what the writers make and packaging ships.
MODEL_FILES = ("model.xml", "model.bin", "model.onnx")
FORMAT_FILES = {"openvino": ["model.xml", "model.bin"], "onnx": ["model.onnx"]}
# A model file beyond this is refused unread (protobuf, hence ONNX, stops at 2 GiB; a ResNet50 is ~100 MB).
MAX_MODEL_FILE_BYTES = 2 * 1024**3
MAX_METADATA_BYTES = 1024**2


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

    @model_validator(mode="after")
    def _consistent(self) -> AccuracyCheck:
        """The verdict must follow from the figures: an edited `passed` or `forced` is refused, not believed."""
        if abs((self.top1_reference - self.top1) * 100 - self.drop_points) > 1e-3:
            raise ValueError(f"drop_points {self.drop_points} does not match top1_reference - top1")
        judged = self._judged_drop()
        if self.passed != (judged <= self.max_drop_points) or (self.forced and self.passed):
            raise ValueError(
                f"passed={self.passed} forced={self.forced} disagrees with drop {judged} "
                f"and max_drop_points {self.max_drop_points}"
            )
        return self

    def _judged_drop(self) -> float:
        """The figure the gate judged: the paired upper bound, recomputed from lost/gained; drop_points for old ones."""
        if self.drop_upper_points is None:
            return self.drop_points
        if self.lost is None or self.gained is None:
            raise ValueError("drop_upper_points needs the lost and gained counts it comes from")
        from dogclf.stats import paired_drop_upper

        if abs(round(paired_drop_upper(self.lost, self.gained, self.n), 4) - self.drop_upper_points) > 1e-3:
            raise ValueError(f"drop_upper_points {self.drop_upper_points} does not follow from lost and gained")
        return self.drop_upper_points


class ExportMetadata(BaseModel):
    """What an exported model is, what it was made from, and how accurate it measured."""

    model_config = ConfigDict(extra="forbid")

    format: ExportFormat
    precision: Literal["fp32", "bf16", "int8"]
    files: list[str] = Field(description="Files of the model in this folder; the first is the one to load.")
    digests: dict[str, str] = Field(description="sha256 of each file in `files`, checked before it is used.")
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

    @model_validator(mode="after")
    def _files_of_format(self) -> ExportMetadata:
        """The files its format makes, each with a sha256."""
        if self.files != FORMAT_FILES[self.format]:
            raise ValueError(f"a {self.format} export holds {', '.join(FORMAT_FILES[self.format])}, got {self.files}")
        if set(self.digests) != set(self.files) or not all(_is_sha256(d) for d in self.digests.values()):
            raise ValueError(f"digests must give a sha256 for each of {', '.join(self.files)}")
        return self

    @property
    def name(self) -> str:
        """The export's folder name, e.g. openvino-int8."""
        return export_name(self.format, self.precision)

    @property
    def distrust(self) -> str | None:
        """Why `auto` may not pick it (None when it may): int8 must have passed its gate, none may have failed one."""
        if self.accuracy is None:
            return "an int8 export that was never checked for accuracy" if self.precision == "int8" else None
        if not self.accuracy.passed:
            return "it failed its accuracy gate" + (" and was kept with --force" if self.accuracy.forced else "")
        return None

    @property
    def trusted(self) -> bool:
        """Whether `auto` may pick it (see distrust)."""
        return self.distrust is None


def _is_sha256(text: str) -> bool:
    """Whether `text` is 64 lowercase hex digits."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def export_name(fmt: str, precision: str) -> str:
    """Folder name of an export: FORMAT-PRECISION."""
    return f"{fmt}-{precision}"


def weights_digest(model_dir: Path) -> str:
    """sha256 of MODEL_DIR/model.pth, to tie an export to the weights it came from."""
    from dogclf.artifact import WEIGHTS_FILE

    return file_sha256(model_dir / WEIGHTS_FILE)


def open_regular(path: Path, limit: int) -> IO[bytes]:
    """Open an export's file for reading without following a link, refused beyond `limit` bytes."""
    return open_bounded(path, limit, "export file", follow_links=False, error=ArtifactError)


def _check_folder(folder: Path) -> None:
    """An export folder must be a real folder in exports/, not a link to one elsewhere."""
    if folder.is_symlink():
        raise ArtifactError(f"{folder} is a symbolic link; an export folder must be a real folder")
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: not an export folder")


def read_export(folder: Path) -> ExportMetadata:
    """Load and check FOLDER/export.json, that it describes this folder, and that its files are regular files."""
    _check_folder(folder)
    path = folder / EXPORT_FILE
    if not os.path.lexists(path):
        raise ArtifactError(f"{folder}: no {EXPORT_FILE}; not an exported model")
    with open_regular(path, MAX_METADATA_BYTES) as f:
        text = f.read()
    try:
        meta = ExportMetadata.model_validate_json(text)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ArtifactError(f"{path}: invalid export metadata: {where + ': ' if where else ''}{error['msg']}") from None
    if meta.name != folder.name:
        raise ArtifactError(f"{path} describes export {meta.name}, not {folder.name}; refusing the folder")
    for name in meta.files:
        open_regular(folder / name, MAX_MODEL_FILE_BYTES).close()
    return meta


def list_exports(model_dir: Path) -> tuple[dict[str, ExportMetadata], dict[str, str]]:
    """The readable exports of an artifact by folder name, and why each other entry of exports/ is not one.

    Hidden folders are exports being written or replaced by `dogclf export`: neither listed nor reported.
    """
    root = Path(model_dir) / EXPORTS_DIR
    found: dict[str, ExportMetadata] = {}
    skipped: dict[str, str] = {}
    if root.is_symlink():
        return found, {EXPORTS_DIR: f"{root} is a symbolic link; exports must be a real folder"}
    if not root.is_dir():
        return found, skipped
    for folder in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        try:
            found[folder.name] = read_export(folder)
        except ArtifactError as exc:
            skipped[folder.name] = str(exc)
    return found, skipped


def _check_digest(path: Path, expected: str, actual: str) -> None:
    """A model file must be the one `dogclf export` wrote."""
    if actual != expected:
        raise ArtifactError(
            f"{path} is not the file that was exported (its sha256 differs from {EXPORT_FILE}); export again"
        )


def _external_tensors(message: Any) -> Iterator[str]:
    """Names of the tensors anywhere in an ONNX message (graphs, subgraphs, functions) kept as external data."""
    from google.protobuf.message import Message
    from onnx import TensorProto

    if isinstance(message, TensorProto):
        if message.data_location == TensorProto.EXTERNAL or len(message.external_data):
            yield message.name or "(unnamed)"
        return
    for field, value in message.ListFields():
        if field.message_type is not None:
            for item in [value] if isinstance(value, Message) else value:
                yield from _external_tensors(item)


def check_onnx_model(data: bytes, path: Path) -> None:
    """Refuse ONNX bytes that do not parse or keep any tensor as external data (a file the engine would open)."""
    from google.protobuf.message import DecodeError

    from dogclf.extras import require

    onnx = require("onnx", "onnx", "checking an ONNX export needs onnx")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a valid ONNX model ({exc})") from None
    external = next(_external_tensors(model), None)
    if external is not None:
        raise ArtifactError(
            f"{path}: tensor {external!r} is stored as external data (a file outside the model); "
            "refusing it: dogclf exports keep every weight inside model.onnx"
        )


def read_onnx(folder: Path, meta: ExportMetadata) -> bytes:
    """The bytes of an ONNX export's model file, checked (digest, no external data); give these to the engine."""
    path = folder / meta.files[0]
    with open_regular(path, MAX_MODEL_FILE_BYTES) as f:
        data = f.read()
    _check_digest(path, meta.digests[meta.files[0]], hashlib.sha256(data).hexdigest())
    check_onnx_model(data, path)
    return data


def verify_export(folder: Path, meta: ExportMetadata) -> None:
    """Check an export's files before they are served or packaged: regular files, as exported, no external data."""
    _check_folder(folder)
    if meta.format == "onnx":
        read_onnx(folder, meta)
        return
    for name in meta.files:
        with open_regular(folder / name, MAX_MODEL_FILE_BYTES) as f:
            _check_digest(folder / name, meta.digests[name], stream_sha256(f))
