"""predict() and evaluate() on a saved artifact."""

import pytest
import torch

from dogclf.artifact import load_artifact
from dogclf.data.images import ImageDecodeError
from dogclf.errors import ConfigError
from dogclf.evaluation import evaluate
from dogclf.prediction import collect_images, predict, predict_files


def test_predict_returns_breed_names_and_sorted_probabilities(tiny_run, tiny_data):
    files = collect_images([tiny_data / "test"])
    preds = predict(tiny_run, files, topk=3)
    names = load_artifact(tiny_run).class_names
    assert len(preds) == len(files) == 12
    for p in preds:
        assert len(p.labels) == 3 and set(p.labels) <= set(names)
        assert p.probabilities == sorted(p.probabilities, reverse=True)
        assert sum(p.probabilities) == pytest.approx(1.0, abs=2e-6)  # 3 classes, each rounded to 6 digits
    by_bytes = predict(tiny_run, [files[0].read_bytes()], topk=1)[0]
    assert by_bytes.labels[0] == preds[0].labels[0]


def test_evaluate_matches_training_summary_and_counts(tiny_run, tiny_data):
    import json

    result = evaluate(tiny_run, tiny_data, split="test")
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert result.n == 12
    assert result.top1 == pytest.approx(summary["metrics"]["test_top1"])
    assert sum(map(sum, result.confusion)) == 12
    correct = sum(result.confusion[i][i] for i in range(3))
    assert result.top1 == pytest.approx(correct / 12)
    assert set(result.per_class_accuracy) == {"Affenpinscher", "Afghan_hound", "Airedale_terrier"}


def test_too_few_valid_images_keep_the_temperature_at_1_and_say_why(tiny_run, tiny_data, tmp_path):
    import json

    from conftest import run_cli

    meta = load_artifact(tiny_run).metadata
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert meta.temperature == 1.0  # 12 valid images: a fit would be mostly noise
    assert meta.temperature_note == summary["temperature_note"]
    assert summary["temperature_note"] == "temperature kept at 1: 12 valid images, fewer than the 50 a fit needs"
    assert summary["evaluation"]["valid"]["calibration"]["temperature"] == 1.0
    assert (tiny_run / "plots" / "reliability_test.png").is_file()

    plot = tmp_path / "rel.png"
    r = run_cli("evaluate", str(tiny_run), "--data", str(tiny_data), "--json", "--plot", str(plot))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    cal = out["calibration"]
    assert cal["temperature"] == meta.temperature and cal["n"] == 12 and not cal["in_sample"]
    assert {"nll", "ece", "ece_interval"} <= set(cal["before"]) and {"nll", "ece"} <= set(cal["after"])
    low, high = cal["after"]["ece_interval"]
    assert low <= cal["after"]["ece"] <= high and "biased upward" in cal["warning"]
    assert [row["coverage"] for row in cal["selective"]] == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
    assert cal["selective"][0]["accuracy"] == pytest.approx(out["top1"])
    assert out["top5"] is None  # 3 classes: top-5 is not applicable
    assert 0 <= out["balanced_accuracy"] <= 1 and 0 <= out["macro_f1"] <= 1
    assert plot.read_bytes()[:4] == b"\x89PNG"

    raw = run_cli("evaluate", str(tiny_run), "--data", str(tiny_data), "--raw-scores", "--plot", str(plot))
    assert raw.returncode == 0, raw.stderr
    assert "calibration (temperature 1, n=12)" in raw.stdout and "top5=n/a" in raw.stdout
    assert "coverage 50%" in raw.stdout and "warning: ECE on 12 images is biased upward" in raw.stdout


def test_valid_calibration_figures_are_labelled_in_sample_when_the_temperature_was_fitted_there(
    tiny_run, tiny_data, tmp_path
):
    import json
    import shutil

    from conftest import run_cli

    model = tmp_path / "model"
    shutil.copytree(tiny_run / "model", model)
    meta = json.loads((model / "metadata.json").read_text())
    (model / "metadata.json").write_text(json.dumps({**meta, "temperature": 2.0}))
    plot = str(tmp_path / "rel.png")
    valid = run_cli("evaluate", str(model), "--data", str(tiny_data), "--split", "valid", "--plot", plot)
    test = run_cli("evaluate", str(model), "--data", str(tiny_data), "--split", "test", "--plot", plot)
    assert valid.returncode == test.returncode == 0, valid.stderr + test.stderr
    assert "in-sample: the temperature was fitted on these images" in valid.stdout
    assert "in-sample" not in test.stdout


def test_temperature_and_raw_scores_in_predict(tiny_run, tiny_data):
    from dogclf.config import RuntimeConfig
    from dogclf.inference import InferenceEngine
    from dogclf.runtime import resolve_runtime

    art = load_artifact(tiny_run)
    files = collect_images([tiny_data / "test"])[:4]
    runtime = resolve_runtime(RuntimeConfig(device="cpu", precision="fp32"))
    scaled, raw = InferenceEngine(art, runtime), InferenceEngine(art, runtime, raw_scores=True)
    logits = scaled.logits(torch.stack([scaled.preprocess(f) for f in files]))
    t = art.metadata.temperature
    for pred, row in zip(scaled.topk(logits, 1), logits, strict=True):
        assert pred.probabilities[0] == pytest.approx(float((row / t).softmax(0).max()), abs=1e-6)
    for pred, row in zip(raw.topk(logits, 1), logits, strict=True):
        assert pred.probabilities[0] == pytest.approx(float(row.softmax(0).max()), abs=1e-6)


def test_old_artifact_without_temperature_loads_with_1(tiny_run, tmp_path):
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_run / "model", model)
    meta = json.loads((model / "metadata.json").read_text())
    del meta["temperature"]
    (model / "metadata.json").write_text(json.dumps(meta))
    assert load_artifact(model).metadata.temperature == 1.0


@pytest.mark.slow
def test_min_confidence_answers_unknown_below_the_threshold_only(tiny_run, tiny_data, tmp_path):
    import json

    from conftest import run_cli

    files = collect_images([tiny_data / "test"])
    answered = predict(tiny_run, files, topk=2)
    assert not any(p.unknown for p in answered)
    tops = sorted(p.probabilities[0] for p in answered)
    threshold = (tops[5] + tops[6]) / 2
    marked = predict(tiny_run, files, topk=2, min_confidence=threshold)
    for p in marked:
        assert p.unknown == (p.probabilities[0] < threshold)
        assert p.answer == ("unknown" if p.unknown else p.labels[0]) and len(p.labels) == 2
    assert any(p.unknown for p in marked) and not all(p.unknown for p in marked)

    r = run_cli("predict", str(tiny_run), str(tiny_data / "test"), "--json", "--min-confidence", "1")
    assert r.returncode == 0, r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert all(d["unknown"] and d["label"] == "unknown" and d["predictions"] for d in docs)
    out = tmp_path / "p.csv"
    r = run_cli("predict", str(tiny_run), str(tiny_data / "test"), "--output", str(out), "--min-confidence", "1")
    assert r.returncode == 0 and out.read_text().splitlines()[0].startswith("path,answer,label_1")
    bad = run_cli("predict", str(tiny_run), str(files[0]), "--min-confidence", "2")
    assert bad.returncode == 2 and "--min-confidence must be between 0 and 1" in bad.stderr


def test_reliability_plot_defaults_next_to_the_run(tiny_run, tmp_path):
    import shutil

    from dogclf.cli.commands.evaluate import default_plot_path

    expected = tiny_run / "plots" / "reliability_valid.png"
    assert default_plot_path(str(tiny_run), "valid") == expected
    assert default_plot_path(str(tiny_run / "model"), "valid") == expected
    bare = shutil.copytree(tiny_run / "model", tmp_path / "bare")  # a model folder outside any run
    assert default_plot_path(str(bare), "test") == bare / "plots" / "reliability_test.png"


def test_predict_files_keeps_each_files_error_and_predicts_the_rest(tiny_run, tiny_data, tmp_path):
    files = sorted((tiny_data / "test").rglob("*.jpg"))[:5]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    paths = [files[0], bad, *files[1:]]
    seen: list[int] = []
    results = predict_files(tiny_run, paths, topk=2, batch_size=2, device="cpu", progress=seen.append)
    assert [r.path for r in results] == paths and seen == [2, 2, 2]
    assert results[1].prediction is None and "not a recognised image format" in results[1].error
    assert [r.prediction for r in results if r.error is None] == predict(tiny_run, files, topk=2, batch_size=2)
    with pytest.raises(ImageDecodeError, match="not a recognised image format"):
        predict(tiny_run, paths, topk=2)


def test_predict_runs_on_the_backend_and_precision_asked_for(tiny_run, tiny_data):
    files = sorted((tiny_data / "test").rglob("*.jpg"))[:4]
    eager = predict(tiny_run, files, topk=3, backend="eager", precision="fp32")
    assert [p.labels for p in eager] == [p.labels for p in predict(tiny_run, files, topk=3)]
    with pytest.raises(ConfigError, match="unknown backend 'tpu'"):
        predict(tiny_run, files, backend="tpu")
    with pytest.raises(ConfigError, match="precision=fp16 is for GPUs"):
        predict(tiny_run, files, precision="fp16")
