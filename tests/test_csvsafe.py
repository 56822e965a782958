"""CSV injection: every CSV dogclf writes escapes string cells that a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from conftest import run_cli
from dogclf.csvsafe import csv_text, escape_cell
from dogclf.prediction_table import PredictionRow, predictions_csv
from dogclf.tune.results import write_csv

HOSTILE = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
PLAIN = ["beagle", "a=b", "x-1", "", "'quoted", " =spaced"]


@pytest.mark.parametrize("value", HOSTILE)
def test_formula_starts_get_an_apostrophe(value):
    assert escape_cell(value) == "'" + value


@pytest.mark.parametrize("value", [*PLAIN, -0.25, -3, 0.5, None, True])
def test_other_cells_and_numbers_are_left_alone(value):
    assert escape_cell(value) == value


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_text_escapes_header_and_strings_but_keeps_negative_numbers():
    rows = _read(csv_text(["=h", "n"], [["-bad", -0.5], ["ok", -2]], float_format=".3f"))
    assert rows == [["'=h", "n"], ["'-bad", "-0.500"], ["ok", "-2"]]
    assert float(rows[1][1]) == -0.5  # still a number


def test_predictions_csv_escapes_labels_paths_and_errors():
    rows = [
        PredictionRow("=x.jpg", ["@cls", "beagle"], [0.75, 0.25]),
        PredictionRow("dogs/b.jpg", error="-not an image"),
    ]
    header, first, second = _read(predictions_csv(rows, topk=2))
    assert header == ["path", "label_1", "probability_1", "label_2", "probability_2", "error"]
    assert first == ["'=x.jpg", "'@cls", "0.750000", "beagle", "0.250000", ""]
    assert second == ["dogs/b.jpg", "", "", "", "", "'-not an image"]


def test_tune_results_csv_is_escaped(tmp_path):
    write_csv([{"trial": 0, "=param": "+cmd", "valid_loss": -1.5}], tmp_path / "results.csv")
    assert _read((tmp_path / "results.csv").read_text()) == [["trial", "'=param", "valid_loss"], ["0", "'+cmd", "-1.5"]]


def test_predict_output_escapes_class_names_and_file_names(tiny_run, tiny_data, tmp_path):
    model = shutil.copytree(tiny_run / "model", tmp_path / "model")
    meta = json.loads((model / "metadata.json").read_text())
    classes = HOSTILE[: meta["num_classes"]]
    (model / "metadata.json").write_text(json.dumps({**meta, "class_names": classes}))
    shutil.copy(sorted((tiny_data / "test").rglob("*.jpg"))[0], tmp_path / "=1+2.jpg")
    topk = str(len(classes))
    r = run_cli("predict", "model", "=1+2.jpg", "--topk", topk, "--output", "p.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (row,) = csv.DictReader(io.StringIO((tmp_path / "p.csv").read_text()))
    assert row["path"] == "'=1+2.jpg"
    assert sorted(row[f"label_{i}"] for i in range(1, len(classes) + 1)) == sorted("'" + c for c in classes)
    assert abs(sum(float(row[f"probability_{i}"]) for i in range(1, len(classes) + 1)) - 1) < 1e-5
