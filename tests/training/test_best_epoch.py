"""Best-epoch selection: NaN or infinite validation values are never the best epoch."""

from __future__ import annotations

import math

import pytest

from dogclf.training.best import BestEpoch


def _run(monitor: str, values: list[float], patience: int | None = None) -> BestEpoch:
    best = BestEpoch(monitor, patience=patience)
    for epoch, value in enumerate(values, start=1):
        best.update(epoch, {"loss": value, "top1": value})
        if best.exhausted:
            break
    return best


def test_a_nan_first_epoch_does_not_freeze_the_best_epoch():
    best = _run("valid_loss", [math.nan, 1.2, 0.8, 0.5], patience=2)
    assert best.best_epoch == 4 and best.best_value == 0.5 and not best.exhausted


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_never_best_and_count_as_no_improvement(bad):
    best = _run("valid_loss", [1.0, bad, bad], patience=3)
    assert best.best_epoch == 1 and best.bad_epochs == 2
    assert _run("valid_top1", [0.5, bad, 0.7]).best_epoch == 3


def test_healthy_sequences_pick_the_minimum_loss_and_maximum_top1():
    assert _run("valid_loss", [1.0, 0.5, 0.7]).best_epoch == 2
    assert _run("valid_top1", [0.2, 0.9, 0.7]).best_epoch == 2
