"""Calibration math on labelled synthetic cases: calibrated, over-confident and under-confident logits."""

from __future__ import annotations

import math

import pytest
import torch

from dogclf.calibration import (
    calibration_report,
    confidence_and_correct,
    decide_temperature,
    ece_interval,
    expected_calibration_error,
    fit_temperature,
    nll,
    probabilities,
    selective_accuracy,
    separable,
)


def calibrated_set(n: int = 20_000, classes: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose softmax is the true label distribution: targets are drawn from softmax(logits)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=g) * 2.0
    targets = torch.multinomial(logits.softmax(1), 1, generator=g).squeeze(1)
    return logits, targets


def ece_of(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> float:
    return expected_calibration_error(*confidence_and_correct(probabilities(logits, temperature), targets))


def test_calibrated_set_has_ece_near_zero_and_temperature_near_one():
    logits, targets = calibrated_set()
    assert ece_of(logits, targets) < 0.02
    assert fit_temperature(logits, targets) == pytest.approx(1.0, abs=0.05)


def test_over_confident_set_has_high_ece_then_t_near_3_and_low_ece():
    logits, targets = calibrated_set()
    over = logits * 3
    assert ece_of(over, targets) > 0.1
    t = fit_temperature(over, targets)
    assert t == pytest.approx(3.0, rel=0.05)
    assert ece_of(over, targets, t) < 0.02
    assert nll(over, targets, t) < nll(over, targets)


def test_under_confident_set_gets_a_temperature_below_one():
    logits, targets = calibrated_set()
    t = fit_temperature(logits / 2, targets)
    assert t == pytest.approx(0.5, rel=0.05)
    assert ece_of(logits / 2, targets) > 0.05 > ece_of(logits / 2, targets, t)


def test_ece_of_hand_made_bins():
    confidence = torch.tensor([0.95, 0.95, 0.55, 0.55])
    correct = torch.tensor([True, True, True, False])
    # bin 14: conf .95 acc 1 -> .05; bin 8: conf .55 acc .5 -> .05; weighted mean .05
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.05)
    assert math.isnan(expected_calibration_error(torch.zeros(0), torch.zeros(0, dtype=torch.bool)))


def test_selective_accuracy_keeps_the_most_confident_share():
    confidence = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    correct = torch.tensor([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=torch.bool)
    rows = {r["coverage"]: r for r in selective_accuracy(confidence, correct)}
    assert rows[1.0]["accuracy"] == pytest.approx(0.5) and rows[1.0]["n"] == 10
    assert rows[0.5]["accuracy"] == pytest.approx(1.0) and rows[0.5]["threshold"] == pytest.approx(0.5)
    assert rows[0.6]["accuracy"] == pytest.approx(5 / 6)


def test_report_has_before_and_after_with_reliability_bins():
    logits, targets = calibrated_set(2000)
    report = calibration_report(logits * 3, targets, 3.0)
    assert report["before"]["ece"] > report["after"]["ece"]
    assert len(report["after"]["reliability"]) == 15
    assert sum(b["n"] for b in report["before"]["reliability"]) == 2000
    assert [r["coverage"] for r in report["selective"]] == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]


def test_a_perfectly_separated_split_keeps_the_temperature_at_one():
    # All correct: NLL falls as T -> 0, and the fit would make every answer a certainty (T at its 0.05 bound).
    targets = torch.arange(5).repeat(20)
    logits = torch.nn.functional.one_hot(targets, 5).float() * 6.0
    assert separable(logits, targets) and fit_temperature(logits, targets) == 1.0
    flipped = targets.clone()
    flipped[0] = 1  # one error makes the temperature identifiable again, and over-confidence is then cooled
    assert not separable(logits, flipped) and fit_temperature(logits, flipped) > 1.0


def test_a_temperature_is_fitted_only_with_enough_images_and_errors():
    logits, targets = calibrated_set(2000)
    over = logits * 3  # over-confident: a real fit cools it
    t, note = decide_temperature(over[:400], targets[:400])
    assert t > 1.5 and note.startswith("temperature fitted on 400 valid images")
    t, note = decide_temperature(over[:6], targets[:6])
    assert t == 1.0 and note == "temperature kept at 1: 6 valid images, fewer than the 50 a fit needs"
    right = over.argmax(1).eq(targets)
    few_errors = torch.cat([torch.nonzero(right).squeeze(1)[:100], torch.nonzero(~right).squeeze(1)[:3]])
    t, note = decide_temperature(over[few_errors], targets[few_errors])
    assert t == 1.0 and "3 misclassified valid images, fewer than the 10" in note


def test_a_temperature_on_its_bound_is_said_so():
    logits, targets = calibrated_set(500)
    t, note = decide_temperature(logits * 1000, targets)  # absurdly over-confident: T wants more than 20
    assert t == pytest.approx(20.0, rel=0.02) and "hit the bound" in note


def test_ece_interval_covers_the_point_and_narrows_with_more_images():
    logits, targets = calibrated_set(5000)
    confidence, correct = confidence_and_correct(probabilities(logits), targets)
    small = ece_interval(confidence[:60], correct[:60])
    large = ece_interval(confidence, correct)
    assert small[0] <= expected_calibration_error(confidence[:60], correct[:60]) <= small[1]
    assert large[1] - large[0] < (small[1] - small[0]) / 3
    assert calibration_report(logits[:60], targets[:60], 1.0)["warning"].startswith("ECE on 60 images")
    assert calibration_report(logits[:1000], targets[:1000], 1.0)["warning"] is None
