"""export_model: gated int8 exports, refused ones leave nothing, forced ones are never auto, stale ones are skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from conftest import blank_dataset
from dogclf.artifact import WEIGHTS_FILE
from dogclf.backends.exports import list_exports, read_export, weights_digest
from dogclf.backends.select import choose_backend
from dogclf.errors import ArtifactError, ConfigError, DatasetError
from dogclf.evaluation import evaluate
from dogclf.export import AccuracyGateError, export_model

pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOGCLF_MODEL_CACHE", str(tmp_path / "cache"))


def copy_model(source: Path, dest: Path, exports: bool = False) -> Path:
    """A model folder to change freely; with or without the source's exports."""
    shutil.copytree(source, dest, ignore=None if exports else shutil.ignore_patterns("exports"))
    return dest


def test_healthy_int8_export_passes_its_gate_with_the_figures_evaluate_measures(exported_model, tiny_data):
    meta = read_export(exported_model / "exports" / "openvino-int8")
    check = meta.accuracy
    assert meta.precision == "int8" and meta.files == ["model.xml", "model.bin"] and meta.trusted
    assert meta.weights_sha256 == weights_digest(exported_model)
    assert meta.calibration["split"] == "train" and meta.calibration["images"] == 36  # all of tiny_data's train
    assert {"torch", "openvino", "nncf"} <= set(meta.versions)
    assert check.split == "test" and check.passed and not check.forced
    assert check.drop_points <= check.max_drop_points == 1.0
    reference = evaluate(exported_model, tiny_data, "test", precision="fp32", backend="eager")
    published = evaluate(exported_model, tiny_data, "test", precision=check.precision, backend="openvino-int8")
    assert (check.top1_reference, check.top1, check.n) == (reference.top1, published.top1, published.n)
    assert check.drop_points == pytest.approx((reference.top1 - published.top1) * 100)
    assert check.ece == pytest.approx(published.calibration()["after"]["ece"])
    assert choose_backend(exported_model, "auto").export.name == "openvino-int8"


def test_fp32_export_records_its_parity_with_eager(exported_model):
    check = read_export(exported_model / "exports" / "onnx-fp32").accuracy
    assert check.precision == "fp32" and check.agreement == 1.0 and check.drop_points == 0.0
    assert check.max_logit_diff < 1e-3  # the parity tolerance of tests/backends (fp32 kernels, other order)
    assert read_export(exported_model / "exports" / "openvino-fp32").accuracy is None  # no data given: none


def test_unrepresentative_calibration_is_refused_and_the_good_export_stays(tiny_run, tiny_data, tmp_path):
    model = copy_model(tiny_run / "model", tmp_path / "model")
    good = export_model(model, "onnx", int8=True, calibration_data=tiny_data)
    assert good.metadata.accuracy.passed
    before = {p.name: p.read_bytes() for p in good.folder.iterdir()}
    blank = blank_dataset(tmp_path / "grey")
    with pytest.raises(AccuracyGateError, match=r"onnx-int8 export refused: top-1 dropped [\d.]+ points on test") as e:
        export_model(model, "onnx", int8=True, calibration_data=blank, eval_data=tiny_data)
    assert "more than --max-drop 1" in str(e.value) and "nothing was written" in str(e.value)
    assert {p.name: p.read_bytes() for p in good.folder.iterdir()} == before
    assert sorted(p.name for p in (model / "exports").iterdir()) == ["onnx-int8"]  # no staging folder left


def test_refused_export_leaves_no_folder_and_force_keeps_it_out_of_auto(tiny_run, tiny_data, tmp_path):
    model = copy_model(tiny_run / "model", tmp_path / "model")
    blank = blank_dataset(tmp_path / "grey")
    with pytest.raises(AccuracyGateError):
        export_model(model, "onnx", int8=True, calibration_data=blank, eval_data=tiny_data)
    assert list((model / "exports").iterdir()) == []
    forced = export_model(model, "onnx", int8=True, calibration_data=blank, eval_data=tiny_data, force=True)
    check = read_export(forced.folder).accuracy
    assert check.forced and not check.passed and check.drop_points > check.max_drop_points
    assert not read_export(forced.folder).trusted
    assert choose_backend(model, "auto").engine == "eager"
    assert choose_backend(model, "onnx").folder is None  # the engine, but on the model converted in memory
    assert choose_backend(model, "onnx-int8").folder == forced.folder  # asked for by name: it is used


def test_stale_export_is_skipped_by_auto_and_refused_by_name(exported_model, tmp_path, caplog):
    model = copy_model(exported_model, tmp_path / "model", exports=True)
    assert choose_backend(model, "auto").export.name == "openvino-int8"
    state = torch.load(model / WEIGHTS_FILE, weights_only=True)
    state["fc.bias"] = state["fc.bias"] + 1.0
    torch.save(state, model / WEIGHTS_FILE)
    assert choose_backend(model, "auto").engine == "eager"
    assert "exported from other weights" in caplog.text
    with pytest.raises(ArtifactError, match="openvino-int8 was exported from other weights"):
        choose_backend(model, "openvino-int8")
    assert set(list_exports(model)[0]) == {"openvino-int8", "onnx-fp32", "openvino-fp32"}  # kept, just not used


def test_impossible_requests_fail_before_any_work(tiny_run, tiny_data, tmp_path):
    model = copy_model(tiny_run / "model", tmp_path / "model")
    with pytest.raises(ConfigError, match="int8 export needs real images to calibrate on"):
        export_model(model, "openvino", int8=True)
    with pytest.raises(ConfigError, match="unknown export format 'tflite'; choose one of onnx, openvino"):
        export_model(model, "tflite")
    with pytest.raises(ConfigError, match="max_drop must be >= 0"):
        export_model(model, "onnx", eval_data=tiny_data, max_drop=-1)
    assert not (model / "exports").exists()
    empty = tmp_path / "no-test"
    shutil.copytree(tiny_data, empty, ignore=shutil.ignore_patterns("test"))
    with pytest.raises(DatasetError, match="--eval-split test has no images"):
        export_model(model, "onnx", eval_data=empty, eval_split="test")
    assert not (model / "exports").exists()
