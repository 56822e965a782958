"""choose_backend's judgments: which engine and export `auto`, an engine name or an export name resolve to."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dogclf.backends.exports import EXPORT_FILE, FORMAT_FILES, AccuracyCheck, ExportMetadata, weights_digest
from dogclf.backends.select import AUTO_ORDER, CHOICES, EXPORT_CHOICES, choose_backend
from dogclf.errors import ArtifactError, ConfigError
from dogclf.extras import MissingExtraError
from dogclf.fsutil import file_sha256


def _everything(engine: str) -> bool:
    return True


def _torch_only(engine: str) -> bool:
    return engine in ("eager", "compile")


def _accuracy(drop: float, forced: bool = False) -> AccuracyCheck:
    return AccuracyCheck(
        split="test", n=100, top1_reference=0.9, top1=round(0.9 - drop / 100, 6), drop_points=drop, agreement=0.98,
        max_drop_points=1.0, passed=drop <= 1.0, forced=forced,
    )  # fmt: skip


def add_export(model_dir: Path, fmt: str, precision: str, accuracy: AccuracyCheck | None = None, digest=None) -> Path:
    """An export folder as `dogclf export` lays it out (the model files' content is not read by selection)."""
    folder = model_dir / "exports" / f"{fmt}-{precision}"
    folder.mkdir(parents=True)
    files = FORMAT_FILES[fmt]
    for name in files:
        (folder / name).write_bytes(b"\0")
    meta = ExportMetadata(
        format=fmt, precision=precision, files=files, digests={f: file_sha256(folder / f) for f in files},
        image_size=32, weights_sha256=digest or weights_digest(model_dir), accuracy=accuracy,
    )  # fmt: skip
    (folder / EXPORT_FILE).write_text(meta.model_dump_json())
    return folder


@pytest.fixture()
def model_dir(tiny_run, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_run / "model", tmp_path / "model"))


def test_choices_are_engines_and_exports():
    assert set(CHOICES) == {"auto", "eager", "compile", "openvino", "onnx", *EXPORT_CHOICES}
    assert set(AUTO_ORDER) == set(EXPORT_CHOICES)


def test_auto_without_exports_is_eager(model_dir):
    assert choose_backend(model_dir, "auto", _everything).engine == "eager"
    assert choose_backend(None, "auto", _everything).engine == "eager"


def test_auto_prefers_gated_int8_then_fp32(model_dir):
    add_export(model_dir, "onnx", "fp32")
    assert choose_backend(model_dir, "auto", _everything).describe() == "onnx (export onnx-fp32)"
    add_export(model_dir, "openvino", "fp32")
    assert choose_backend(model_dir, "auto", _everything).export.name == "openvino-fp32"
    add_export(model_dir, "onnx", "int8", _accuracy(0.4))
    assert choose_backend(model_dir, "auto", _everything).export.name == "onnx-int8"


def test_auto_skips_int8_that_failed_or_was_forced_or_never_gated(model_dir):
    add_export(model_dir, "openvino", "fp32")
    add_export(model_dir, "openvino", "int8", _accuracy(3.0, forced=True))
    add_export(model_dir, "onnx", "int8", None)
    assert choose_backend(model_dir, "auto", _everything).export.name == "openvino-fp32"
    # Asked for by name, the forced export is still served: the user took the decision.
    assert choose_backend(model_dir, "openvino-int8", _everything).export.accuracy.forced


def test_auto_falls_back_to_eager_when_the_engine_is_missing(model_dir, caplog):
    add_export(model_dir, "openvino", "int8", _accuracy(0.2))
    assert choose_backend(model_dir, "auto", _torch_only).engine == "eager"
    assert "openvino is not installed" in caplog.text


def test_engine_by_name_uses_its_best_export_or_converts(model_dir):
    assert choose_backend(model_dir, "openvino", _everything).export is None  # converted in memory
    add_export(model_dir, "openvino", "fp32")
    add_export(model_dir, "openvino", "int8", _accuracy(0.5))
    add_export(model_dir, "onnx", "int8", _accuracy(0.1))
    choice = choose_backend(model_dir, "openvino", _everything)
    assert (choice.engine, choice.export.name) == ("openvino", "openvino-int8")
    assert choice.folder == model_dir / "exports" / "openvino-int8"


def test_missing_engine_asked_by_name_names_the_extra(model_dir):
    with pytest.raises(MissingExtraError, match=r"pip install 'dogclf\[onnx\]'"):
        choose_backend(model_dir, "onnx", _torch_only)


def test_missing_export_asked_by_name_says_how_to_make_it(model_dir):
    with pytest.raises(
        ArtifactError, match="exports/openvino-int8 does not exist; run: dogclf export MODEL --format openvino --int8"
    ):
        choose_backend(model_dir, "openvino-int8", _everything)


def test_stale_export_is_skipped_by_auto_and_refused_by_name(model_dir, caplog):
    add_export(model_dir, "openvino", "fp32", digest="0" * 64)
    assert choose_backend(model_dir, "auto", _everything).engine == "eager"
    assert "exported from other weights" in caplog.text
    with pytest.raises(ArtifactError, match="exports/openvino-fp32 was exported from other weights"):
        choose_backend(model_dir, "openvino-fp32", _everything)


def test_unreadable_export_metadata_is_skipped(model_dir):
    folder = add_export(model_dir, "onnx", "fp32")
    (folder / EXPORT_FILE).write_text("{not json")
    assert choose_backend(model_dir, "auto", _everything).engine == "eager"


def test_off_the_cpu_auto_is_eager_and_cpu_engines_are_refused(model_dir):
    add_export(model_dir, "openvino", "fp32")
    assert choose_backend(model_dir, "auto", _everything, cpu=False).engine == "eager"
    with pytest.raises(ConfigError, match="CPU only"):
        choose_backend(model_dir, "openvino", _everything, cpu=False)


def test_unknown_backend_is_refused(model_dir):
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'"):
        choose_backend(model_dir, "tensorrt", _everything)
