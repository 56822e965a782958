"""`dogclf predict` offline and through a live endpoint, and the quickstart's query_local_endpoint."""

import csv
import json
import shutil

from conftest import run_cli
from dogclf.cli.main import main
from dogclf.prediction import predict
from dogclf.serve.demo import query_local_endpoint
from dogclf.serve.local import LocalEndpoint


def _images_with_one_bad(tiny_data, tmp_path):
    folder = tmp_path / "imgs"
    shutil.copytree(tiny_data / "test", folder)
    bad = folder / "001.Affenpinscher" / "broken.jpg"
    bad.write_bytes(b"not an image at all")
    return folder, bad


def test_offline_predict_writes_csv_and_jsonl_and_flags_bad_files(tiny_run, tiny_data, tmp_path):
    folder, bad = _images_with_one_bad(tiny_data, tmp_path)
    out_csv = tmp_path / "preds.csv"
    r = run_cli("predict", str(tiny_run), str(folder), "--topk", "2", "--output", str(out_csv), "--precision", "fp32")
    assert r.returncode == 1, r.stderr  # one image failed
    assert "1 of 13 images could not be predicted" in r.stderr
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 13
    assert list(rows[0]) == ["path", "label_1", "probability_1", "label_2", "probability_2", "error"]
    (broken,) = [row for row in rows if row["error"]]
    assert broken["path"] == str(bad) and "not a recognised image format" in broken["error"]
    good = sorted(p for p in folder.rglob("*.jpg") if p != bad)
    expected = predict(tiny_run, good, topk=2)
    by_path = {row["path"]: row for row in rows}
    assert [by_path[str(p)]["label_1"] for p in good] == [e.labels[0] for e in expected]

    out_jsonl = tmp_path / "preds.jsonl"
    r = run_cli("predict", str(tiny_run), str(good[0]), str(good[1]), "--output", str(out_jsonl))
    assert r.returncode == 0, r.stderr
    docs = [json.loads(line) for line in out_jsonl.read_text().splitlines()]
    assert [d["path"] for d in docs] == [str(good[0]), str(good[1])] and len(docs[0]["predictions"]) == 3


def test_predict_through_the_endpoint_matches_offline(tiny_run, tiny_data, tmp_path):
    folder, bad = _images_with_one_bad(tiny_data, tmp_path)
    offline = run_cli("predict", str(tiny_run), str(folder), "--json", "--topk", "2")
    with LocalEndpoint(tiny_run) as endpoint:
        online = run_cli("predict", "--endpoint", endpoint.url, str(folder), "--json", "--topk", "2")
    assert offline.returncode == online.returncode == 1, online.stderr
    off = [json.loads(line) for line in offline.stdout.splitlines()]
    on = [json.loads(line) for line in online.stdout.splitlines()]
    assert [d["path"] for d in on] == [d["path"] for d in off]
    assert [[c["label"] for c in d.get("predictions", [])] for d in on] == [
        [c["label"] for c in d.get("predictions", [])] for d in off
    ]
    (failed,) = [d for d in on if "error" in d]
    assert failed["path"] == str(bad) and "HTTP 400" in failed["error"] and "not a recognised" in failed["error"]


def test_predict_cli_errors_are_one_line(tiny_run, tmp_path, capsys):
    image = tmp_path / "x.jpg"
    image.write_bytes(b"x")
    cases = [
        (["--endpoint", "http://127.0.0.1:9", str(image)], "cannot reach http://127.0.0.1:9/invocations"),
        (["--endpoint", "ftp://host", str(image)], "endpoint URL must look like http://127.0.0.1:8080"),
        ([str(tiny_run)], "give the images to predict"),
        (
            [str(tiny_run), str(image), "--output", str(tmp_path / "p.txt")],
            "--output must end in .csv or .jsonl",
        ),
        ([str(tiny_run), str(tmp_path / "missing.jpg")], "image not found"),
    ]
    for args, message in cases:
        assert main(["predict", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_query_local_endpoint_returns_the_top3_of_dogclf_predict(tiny_run, tiny_data):
    image = sorted((tiny_data / "test").rglob("*.jpg"))[0]
    top = query_local_endpoint(tiny_run / "model", image, topk=3)
    expected = predict(tiny_run, [image], topk=3)[0]
    assert [label for label, _ in top] == expected.labels
    assert [p for _, p in top] == expected.probabilities
