"""The accuracy gate's numbers: a paired upper bound from changed answers, a minimum n, disjoint splits."""

from __future__ import annotations

import logging

import pytest
import torch

from dogclf.errors import ConfigError
from dogclf.evaluation import EvalResult
from dogclf.export.gate import compare, min_images
from dogclf.stats import binomial_upper, paired_drop_upper, wilson_interval


def _result(right: list[bool]) -> EvalResult:
    """An EvalResult of two classes whose answer is right where `right` says (target 0 always)."""
    n = len(right)
    logits = torch.tensor([[2.0, 0.0] if r else [0.0, 2.0] for r in right])
    targets = torch.zeros(n, dtype=torch.int64)
    top1 = sum(right) / n
    return EvalResult(0.0, top1, None, n, [[sum(right), n - sum(right)], [0, 0]], ["a", "b"], logits, targets)


def test_binomial_upper_bound_matches_the_exact_clopper_pearson_values():
    assert binomial_upper(0, 10) == pytest.approx(1 - 0.05 ** (1 / 10), abs=1e-6)  # 0.2589
    assert binomial_upper(5, 10) == pytest.approx(0.7775, abs=1e-3)
    assert binomial_upper(10, 10) == 1.0


def test_wilson_interval_is_wide_for_few_images_and_narrow_for_many():
    low, high = wilson_interval(5, 6)
    assert low < 0.45 and high > 0.95
    low, high = wilson_interval(833, 1000)
    assert high - low < 0.05


@pytest.mark.parametrize(("lost", "gained", "n", "passes"), [(0, 0, 200, True), (1, 1, 2000, True), (1, 0, 6, False)])
def test_paired_bound_against_one_point(lost, gained, n, passes):
    assert (paired_drop_upper(lost, gained, n) <= 1.0) is passes


def test_gate_refuses_changed_answers_that_the_point_drop_would_let_through():
    reference = _result([True] * 5 + [False])
    result = _result([False, False, True, True, True, True])  # two lost, one gained: net one image
    check = compare(reference, result, "test", max_drop=20.0, precision="fp32")
    assert check.drop_points == pytest.approx(100 / 6, abs=1e-3)  # within max_drop 20 by the point estimate
    assert check.lost == 2 and check.gained == 1 and check.drop_upper_points > 20 and not check.passed


def test_gate_passes_a_large_sample_with_balanced_changes():
    right = [True] * 900 + [False] * 100
    changed = right.copy()
    changed[0], changed[950] = False, True  # one lost, one gained
    check = compare(_result(right), _result(changed), "test", max_drop=1.0, precision="fp32")
    assert check.passed and check.drop_points == 0 and check.drop_upper_points < 1


def test_too_few_images_for_the_promised_drop_are_warned_about_and_enough_are_not(caplog):
    assert min_images(1.0) == 100 and min_images(5.0) == 20
    with caplog.at_level(logging.WARNING):
        compare(_result([True] * 30), _result([True] * 30), "test", 1.0, "fp32")
    assert "measured 30 images of test" in caplog.text and "needs 100 images" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        check = compare(_result([True] * 120), _result([True] * 120), "test", 1.0, "fp32")
    assert check.passed and check.min_n == 100 and caplog.text == ""


def test_gate_measured_on_the_calibration_split_is_refused(tiny_run, tiny_data):
    from dogclf.export import export_model

    with pytest.raises(ConfigError, match="--eval-split train is the calibration split"):
        export_model(tiny_run, "onnx", int8=True, calibration_data=tiny_data, eval_split="train")
