"""predict() and evaluate() on a saved artifact."""

import pytest

from dogclf.artifact import load_artifact
from dogclf.evaluation import evaluate
from dogclf.prediction import collect_images, predict


def test_predict_returns_breed_names_and_sorted_probabilities(tiny_run, tiny_data):
    files = collect_images([tiny_data / "test"])
    preds = predict(tiny_run, files, topk=3)
    names = load_artifact(tiny_run).class_names
    assert len(preds) == len(files) == 12
    for p in preds:
        assert len(p.labels) == 3 and set(p.labels) <= set(names)
        assert p.probabilities == sorted(p.probabilities, reverse=True)
        assert 0.99 <= sum(p.probabilities) <= 1.000001  # 3 classes: top-3 is everything
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
