"""`dogclf export` as users run it: a process, its summary, its exit codes."""

from __future__ import annotations

import shutil

import pytest

from conftest import blank_dataset, run_cli
from dogclf.backends.exports import read_export
from dogclf.cli.main import main

pytest.importorskip("onnxruntime")


def test_export_cli_writes_a_gated_int8_export_and_prints_its_accuracy(tiny_run, tiny_data, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_run / "model", model)
    r = run_cli("export", str(model), "--format", "onnx", "--int8", "--calibration-data", str(tiny_data))
    assert r.returncode == 0, r.stderr
    folder = model / "exports" / "onnx-int8"
    check = read_export(folder).accuracy
    assert f"exported onnx-int8: {folder} (" in r.stdout
    assert f"calibration: 36 images of {tiny_data}/train" in r.stdout
    assert f"accuracy on test (n={check.n})" in r.stdout
    out = " ".join(r.stdout.split())
    bound = f"drop {check.drop_points:.2f} points, 95% upper bound {check.drop_upper_points:.2f}"
    assert f"top-1 {check.top1_reference:.4f} {check.top1:.4f} {bound}" in out
    assert f"agreement {check.agreement:.1%}" in out
    assert f"answers changed {check.lost} lost, {check.gained} gained" in out
    # 12 test images cannot promise a 1-point drop: the printout says so
    assert check.n == 12 and check.min_n == 100
    assert "WARNING: 12 images: one image is 8.3 points; promising a drop of at most 1 points needs 100" in out


def test_export_cli_refuses_int8_without_calibration_data(tiny_run, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_run / "model", model)
    assert main(["export", str(model), "--format", "openvino", "--int8"]) == 2
    assert "--int8 needs --calibration-data DIR" in capsys.readouterr().err
    assert not (model / "exports").exists()


def test_export_cli_exits_2_naming_the_drop_when_the_gate_refuses(tiny_run, tiny_data, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_run / "model", model)
    grey = blank_dataset(tmp_path / "grey")
    args = ["export", str(model), "--format", "onnx", "--int8", "--calibration-data", str(grey)]
    assert main([*args, "--eval-data", str(tiny_data), "--max-drop", "5"]) == 2
    err = capsys.readouterr().err
    assert "dogclf: error: onnx-int8 export refused: top-1 dropped" in err and "more than --max-drop 5" in err
    assert list((model / "exports").iterdir()) == []
