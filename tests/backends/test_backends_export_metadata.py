"""export.json: only known file names, hidden (in-progress) folders ignored, and which exports `auto` trusts."""

from __future__ import annotations

import json

import pytest

from dogclf.backends.exports import AccuracyCheck, ExportMetadata, list_exports, read_export
from dogclf.errors import ArtifactError


def _meta(precision: str = "int8", files: list[str] | None = None, **accuracy) -> ExportMetadata:
    check = None
    if accuracy:
        top1 = 0.9 if accuracy.get("passed") else 0.8  # a failed gate: 10 points lost, over its 1-point limit
        check = AccuracyCheck(
            split="test", n=10, top1_reference=0.9, top1=top1, drop_points=round((0.9 - top1) * 100, 4),
            agreement=1.0, max_drop_points=1.0, **accuracy,
        )  # fmt: skip
    files = files or ["model.xml", "model.bin"]
    return ExportMetadata(
        format="openvino", precision=precision, files=files, digests={f: "0" * 64 for f in files}, image_size=32,
        weights_sha256="0" * 64, accuracy=check,
    )  # fmt: skip


@pytest.mark.parametrize("files", [["../../model.pth"], ["/etc/passwd"], ["model.xml", "notes.txt"], []])
def test_export_json_cannot_name_files_outside_its_folder(tmp_path, files):
    doc = {**_meta().model_dump(), "files": files}
    (tmp_path / "export.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="invalid export metadata: files: Value error, files must be among model"):
        read_export(tmp_path)


def test_trusted_needs_a_passed_unforced_gate_for_int8_and_no_failed_one_for_fp32():
    assert _meta("int8", passed=True).trusted
    assert not _meta("int8").trusted  # int8 never measured
    assert not _meta("int8", passed=False, forced=True).trusted
    assert _meta("fp32").trusted  # a plain conversion needs no gate
    assert not _meta("fp32", passed=False, forced=True).trusted


def test_hidden_folders_are_exports_in_progress_and_not_listed(tmp_path):
    for name in ("openvino-int8", ".openvino-int8.tmp-abc"):
        folder = tmp_path / "exports" / name
        folder.mkdir(parents=True)
        (folder / "export.json").write_text(_meta(passed=True).model_dump_json())
        for f in ("model.xml", "model.bin"):
            (folder / f).write_bytes(b"x")
    assert list_exports(tmp_path) == ({"openvino-int8": read_export(tmp_path / "exports" / "openvino-int8")}, {})
