"""`export_model`: MODEL_DIR/exports/FORMAT-PRECISION/, written atomically and only once it passed its checks.

The export is built in a hidden folder beside its final place, evaluated there through its own backend, and
renamed into place last: a failed or refused export leaves nothing behind and never touches a good one.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from dogclf.artifact import Artifact, load_artifact, resolve_artifact_dir
from dogclf.backends.exports import (
    EXPORT_FILE,
    EXPORTS_DIR,
    FORMATS,
    ExportMetadata,
    export_name,
    weights_digest,
)
from dogclf.backends.select import Choice
from dogclf.errors import ArtifactError, ConfigError
from dogclf.export.calibration import calibration_batches, held_out_split, run_layout
from dogclf.export.gate import enforce, measure
from dogclf.export.settings import DEFAULT_CALIBRATION_IMAGES, DEFAULT_MAX_DROP
from dogclf.fsutil import atomic_write_text, file_sha256

log = logging.getLogger(__name__)

# Packages whose versions decide what an export contains and how it runs.
_VERSIONED = {"openvino": ("openvino", "nncf"), "onnx": ("onnx", "onnxruntime")}


@dataclass(frozen=True)
class ExportResult:
    """Where an export was written, what it is, and how long it took."""

    folder: Path
    metadata: ExportMetadata
    seconds: float

    @property
    def size_bytes(self) -> int:
        """Bytes of the model files (export.json aside)."""
        return sum((self.folder / f).stat().st_size for f in self.metadata.files)


@dataclass(frozen=True)
class Calibration:
    """Where int8 calibration images come from."""

    data: Path
    split: str = "train"
    images: int = DEFAULT_CALIBRATION_IMAGES


def _versions(fmt: str) -> dict[str, str]:
    """Versions of dogclf, torch and the export's engine packages."""
    out = {}
    for package in ("dogclf", "torch", *_VERSIONED[fmt]):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out


def _write_openvino(artifact: Artifact, folder: Path, batches: list | None) -> list[str]:
    """model.xml + model.bin: OpenVINO IR in fp32 (no fp16 compression), NNCF-quantized when `batches` are given."""
    from dogclf.backends.openvino import convert_torch, require_openvino

    ov = require_openvino()
    model = convert_torch(artifact.model, artifact.preprocess.image_size)
    if batches is not None:
        from dogclf.export.quantize import quantize_openvino

        model = quantize_openvino(model, batches)
    ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)
    return ["model.xml", "model.bin"]


def _write_onnx(artifact: Artifact, folder: Path, batches: list | None) -> list[str]:
    """model.onnx: fp32, or int8 QDQ quantized by onnxruntime when `batches` are given."""
    from dogclf.backends.onnx import export_onnx

    size = artifact.preprocess.image_size
    if batches is None:
        export_onnx(artifact.model, size, folder / "model.onnx")
        return ["model.onnx"]
    from dogclf.export.quantize import quantize_onnx

    work = folder / ".work"
    work.mkdir()
    export_onnx(artifact.model, size, work / "fp32.onnx")
    quantize_onnx(work / "fp32.onnx", folder / "model.onnx", batches, work)
    shutil.rmtree(work)
    return ["model.onnx"]


def _build(artifact: Artifact, fmt: str, folder: Path, calibration: Calibration | None) -> ExportMetadata:
    """Write the model files of the export into `folder` and describe them (no accuracy yet)."""
    batches, calibration_info = None, None
    if calibration is not None:
        from dogclf.export.quantize import ONNX_METHOD, OPENVINO_METHOD

        batches = calibration_batches(artifact, calibration.data, calibration.split, calibration.images)
        images = sum(len(b) for b in batches)
        log.info("quantizing to int8, calibrated on %d images of %s/%s", images, calibration.data, calibration.split)
        method = OPENVINO_METHOD if fmt == "openvino" else ONNX_METHOD
        calibration_info = {"data": str(calibration.data), "split": calibration.split, "images": images}
        calibration_info["method"] = method
    write = _write_openvino if fmt == "openvino" else _write_onnx
    files = write(artifact, folder, batches)
    return ExportMetadata(
        format=fmt,
        precision="int8" if calibration is not None else "fp32",
        files=files,
        digests={f: file_sha256(folder / f) for f in files},
        image_size=artifact.preprocess.image_size,
        weights_sha256=weights_digest(artifact.path),
        calibration=calibration_info,
        versions=_versions(fmt),
    )


def _sync(folder: Path) -> None:
    """Flush the export's files to disk before the rename publishes them."""
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _publish(staging: Path, final: Path) -> Path:
    """Rename the finished export into place; a previous one is moved aside first and removed after."""
    _sync(staging)
    old = final.parent / f".{final.name}.old-{os.getpid()}" if final.exists() else None
    if old is not None:
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _staging(model_dir: Path, name: str) -> Path:
    """A hidden folder in MODEL_DIR/exports/ (same file system as the final place) to build the export in."""
    root = model_dir / EXPORTS_DIR
    try:
        root.mkdir(exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
    except OSError as exc:
        raise ArtifactError(f"cannot write exports into {root}: {exc}") from None


def _check_request(fmt: str, int8: bool, calibration_data: str | Path | None, max_drop: float) -> None:
    """Refuse impossible requests before any work, naming the parameter."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if int8 and calibration_data is None:
        raise ConfigError(
            "int8 export needs real images to calibrate on: give calibration_data=DIR "
            "(dogclf export --int8 --calibration-data DIR), an ImageFolder dataset of the model's classes"
        )
    if max_drop < 0:
        raise ConfigError(f"max_drop must be >= 0 top-1 points, got {max_drop}")


def export_model(
    model: str | Path,
    format: str,
    int8: bool = False,
    calibration_data: str | Path | None = None,
    eval_data: str | Path | None = None,
    eval_split: str | None = None,
    max_drop: float = DEFAULT_MAX_DROP,
    force: bool = False,
    calibration_split: str = "train",
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES,
    precision: str = "auto",
) -> ExportResult:
    """Export a run's or model folder's model to MODEL_DIR/exports/FORMAT-PRECISION/ for the CPU engines.

    int8 is post-training static quantization calibrated on `calibration_images` images of
    `calibration_split` of `calibration_data`. With a dataset (`eval_data`, default the calibration data) the
    export is evaluated against eager fp32 on `eval_split` (default test, else valid) with `evaluate` and
    refused (AccuracyGateError, nothing written) when its top-1 drops more than `max_drop` points, unless
    `force`. `precision` is the runtime precision the export is checked at (auto: what serving here uses).
    """
    start = time.perf_counter()
    _check_request(format, int8, calibration_data, max_drop)
    artifact = load_artifact(resolve_artifact_dir(model))
    name = export_name(format, "int8" if int8 else "fp32")
    calibration = Calibration(Path(calibration_data), calibration_split, calibration_images) if int8 else None
    data = eval_data if eval_data is not None else calibration_data
    split = held_out_split(run_layout(artifact, data), data, eval_split) if data is not None else None
    if calibration is not None and split is not None:
        _check_disjoint(calibration, Path(data), split)  # type: ignore[arg-type]
    staging = _staging(artifact.path, name)
    try:
        meta = _build(artifact, format, staging, calibration)
        if data is not None and split is not None:
            log.info("checking %s against eager fp32 on %s/%s", name, data, split)
            check = measure(artifact, Choice(format, staging, meta), data, split, max_drop, precision)
            meta = meta.model_copy(update={"accuracy": enforce(check, name, force)})
        atomic_write_text(staging / EXPORT_FILE, meta.model_dump_json(indent=2))
        folder = _publish(staging, artifact.path / EXPORTS_DIR / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    log.info("exported %s to %s in %.1f s", name, folder, seconds)
    return ExportResult(folder, meta, seconds)


def _check_disjoint(calibration: Calibration, data: Path, split: str) -> None:
    """Refuse an accuracy gate measured on the images int8 was calibrated on."""
    if split == calibration.split and data.resolve() == calibration.data.resolve():
        raise ConfigError(
            f"--eval-split {split} is the calibration split of {data}: the gate would measure int8 on the images it "
            "was calibrated on; choose another --eval-split or --calibration-split"
        )
