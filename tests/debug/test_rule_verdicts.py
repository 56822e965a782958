"""Each loss and class rule on held-out synthetic runs written as real smdebug trials: fires on its failure,
silent on the healthy shapes that fooled the earlier rules, NotEvaluated (with the reason) on too little data."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest
from synthetic_runs import Run, write_trial
from synthetic_suite import FAMILIES, make_run

from dogclf.debug import compat

HELD_OUT = {f.name: f.held_out for f in FAMILIES}
SEED = 100  # a held-out seed


@pytest.fixture(scope="module", autouse=True)
def _smdebug():
    compat.load()


def verdicts(run: Run, folder: Path, names=None) -> dict:
    """{rule: RuleResult} of the rules over `run` written under `folder`."""
    from dogclf.debug.engine import evaluate_rules

    write_trial(run, folder)
    names = names or ["ExplodingTensor", "LossNotDecreasing", "Overfit", "Overtraining", "ClassImbalance"]
    return {r.rule: r for r in evaluate_rules(folder, names=names)}


def held_out(family: str, variant: int, seed: int = SEED) -> Run:
    return make_run(family, HELD_OUT[family][variant], seed)


@pytest.mark.parametrize("variant", [0, 1])  # 120 classes, 4.79 -> 3.3 over 600 steps, noise 0.1 and 0.3
def test_slow_noisy_120_class_run_is_healthy(tmp_path, variant):
    rows = verdicts(held_out("slow-healthy", variant), tmp_path)
    assert [r.rule for r in rows.values() if r.triggered] == []
    assert rows["LossNotDecreasing"].status == "NoIssuesFound"  # decided, not skipped
    # 6 valid images per class: too few to judge mispredictions, and the verdict says so
    assert rows["ClassImbalance"].status == "NotEvaluated" and "10 valid images" in rows["ClassImbalance"].finding


def test_early_bump_that_recovers_never_fires_not_even_live(tmp_path):
    run = held_out("early-bump", 0)  # x2.5 over steps 10-30
    e = run.steps_per_epoch
    for epochs in range(1, len(run.valid) + 1):  # what live rules see at each epoch's end
        prefix = Run(run.train[: epochs * e], e, run.valid[:epochs], counts=run.counts)
        row = verdicts(prefix, tmp_path / str(epochs), ["LossNotDecreasing"])["LossNotDecreasing"]
        assert not row.triggered, (epochs, row.finding)


@pytest.mark.parametrize(("family", "variant"), [("partial-stall", 0), ("stuck", 0),
                                                 ("diverging", 0), ("diverging", 1)])  # fmt: skip
def test_loss_not_decreasing_catches_stalls_and_sustained_rises(tmp_path, family, variant):
    row = verdicts(held_out(family, variant), tmp_path, ["LossNotDecreasing"])["LossNotDecreasing"]
    assert row.triggered, row.finding


@pytest.mark.parametrize(
    ("family", "variant", "seed"), [("stuck", 1, 100), ("stuck", 2, 100), ("partial-stall", 1, 101)]
)
def test_low_noise_stalls_of_few_classes_are_caught(tmp_path, family, variant, seed):
    # 3-5 classes, noise 0.05, 300 steps: a flat loss near ln(C) or at 45% of it, judged on every loss of the
    # compared steps (least squares), not on two block means
    row = verdicts(held_out(family, variant, seed), tmp_path, ["LossNotDecreasing"])["LossNotDecreasing"]
    assert row.triggered, (row.status, row.finding)


def test_a_loss_flat_from_the_start_is_caught_once_the_run_is_as_long_as_its_noise_needs(tmp_path):
    # lr 0 on 3 classes at batch noise 0.09 (the labelled suite's lr-zero): the last two blocks alone are too
    # short to show a stall; every loss since the start in one fit shows it, from the length the verdict names
    import re

    from synthetic_suite import stuck

    def flat(steps: int) -> Run:
        return stuck(np.random.default_rng(SEED), {"classes": 3, "steps": steps, "epoch": 15, "sd": 0.09})

    short = verdicts(flat(150), tmp_path / "150", ["LossNotDecreasing"])["LossNotDecreasing"]
    assert short.status == "NotEvaluated", short.finding
    needed = int(re.search(r"needs at least about (\d+) losses", short.finding).group(1))
    assert 150 < needed < 300, short.finding
    long = verdicts(flat(300), tmp_path / "300", ["LossNotDecreasing"])["LossNotDecreasing"]
    assert long.triggered and "since the start" in long.finding, (long.status, long.finding)


@pytest.mark.parametrize("seed", [100, 101, 102])
def test_a_bump_after_early_progress_is_not_a_loss_flat_from_the_start(tmp_path, seed):
    # 20 classes, x2.5 over steps 40-60 after 40 steps of progress: at step 50 a straight line through every loss
    # rises, but the loss had already been clearly below its start (each window end is checked, as live rules do)
    row = verdicts(held_out("early-bump", 1, seed), tmp_path, ["LossNotDecreasing"])["LossNotDecreasing"]
    assert row.status == "NoIssuesFound", row.finding


def test_a_stall_test_that_straddles_its_threshold_is_not_evaluated_never_a_silent_pass(tmp_path):
    # Progress early, then at the last window the fall's confidence interval contains the least drop that
    # counts: neither progress nor a stall was shown
    row = verdicts(held_out("partial-stall", 1, 100), tmp_path, ["LossNotDecreasing"])["LossNotDecreasing"]
    assert row.status == "NotEvaluated" and "cannot tell a stall from the" in row.finding, (row.status, row.finding)


def test_short_runs_are_not_evaluated_and_nan_is_flagged(tmp_path):
    short = verdicts(held_out("short", 0), tmp_path / "short")
    assert short["LossNotDecreasing"].status == "NotEvaluated"
    assert "only 15 losses saved; comparing windows needs 40" in short["LossNotDecreasing"].finding
    assert (
        short["Overtraining"].status == "NotEvaluated" and "3 validation(s); needs 6" in short["Overtraining"].finding
    )
    all_nan = verdicts(held_out("nan", 0), tmp_path / "nan")  # 15 steps, every loss NaN
    assert all_nan["LossNotDecreasing"].triggered and "nan" in all_nan["LossNotDecreasing"].finding
    assert all_nan["ExplodingTensor"].triggered


def test_overfit_fires_on_a_growing_gap_over_two_validations_not_on_a_flat_one(tmp_path):
    two = verdicts(held_out("overfit", 0), tmp_path / "two", ["Overfit"])["Overfit"]
    assert two.triggered and "grew" in two.finding
    flat = verdicts(held_out("converged-gap", 0), tmp_path / "flat", ["Overfit"])["Overfit"]  # 0.30 vs 0.42
    assert flat.status == "NoIssuesFound", flat.finding


def test_overfit_compares_like_with_like(tmp_path):
    # Label smoothing keeps the per-step objective (2.0) above the valid loss; the plain CE saved with each
    # validation (0.3 -> 0.1 -> 0.05) shows the growing gap.
    run = Run(np.full(30, 2.0), 10, [0.6, 0.9, 1.2], [0.3, 0.1, 0.05])
    row = verdicts(run, tmp_path, ["Overfit"])["Overfit"]
    assert row.triggered and "train loss 0.1:" in row.finding


def test_overfit_is_silent_on_a_valid_spike_that_later_validations_undo(tmp_path):
    # The default quickstart's final run (ResNet50 from scratch; epoch 2 validated with stale BatchNorm
    # statistics): valid 2.21 -> 21.5 -> 2.33 -> 0.125 -> 0.0003 while the train CE falls. Seen whole, the gap passed.
    train = [1.804, 0.550, 0.137, 0.234, 0.067, 0.083]
    valid = [2.209, 21.48, 2.326, 0.125, 0.00028, 0.00039]
    spike = verdicts(Run(np.repeat(train, 10), 10, valid, train), tmp_path / "spike", ["Overfit"])["Overfit"]
    assert spike.status == "NoIssuesFound", spike.finding
    # Live, at epoch 2, the later validations are not there yet: the same gap fires
    live = verdicts(Run(np.repeat(train[:2], 10), 10, valid[:2], train[:2]), tmp_path / "live", ["Overfit"])["Overfit"]
    assert live.triggered and "gap 20.9" in live.finding, live.finding
    # A valid loss that never gets back below epoch 1's while the train CE falls is memorizing
    stays = valid[:3] + [2.4, 2.5, 2.6]
    kept = verdicts(Run(np.repeat(train, 10), 10, stays, train), tmp_path / "stays", ["Overfit"])["Overfit"]
    assert kept.triggered, kept.finding
    # nor does one noisy dip below it in between: the run ends with the gap
    dips = valid[:3] + [2.0, 2.5, 2.6]
    dipped = verdicts(Run(np.repeat(train, 10), 10, dips, train), tmp_path / "dips", ["Overfit"])["Overfit"]
    assert dipped.triggered, dipped.finding


def test_overtraining_patience_fits_the_run(tmp_path):
    textbook = verdicts(held_out("overtraining", 0), tmp_path / "t", ["Overtraining"])["Overtraining"]
    assert textbook.triggered, textbook.finding
    healthy = verdicts(held_out("fast-healthy", 0), tmp_path / "h", ["Overtraining"])["Overtraining"]
    assert healthy.status == "NoIssuesFound", healthy.finding


def test_class_imbalance_needs_enough_images_and_catches_a_zero_accuracy_run(tmp_path):
    zero = verdicts(held_out("zero-accuracy", 0), tmp_path / "zero", ["ClassImbalance"])["ClassImbalance"]
    assert zero.triggered and "below chance" in zero.finding
    healthy = verdicts(held_out("fast-healthy", 1), tmp_path / "ok", ["ClassImbalance"])["ClassImbalance"]
    assert healthy.status == "NoIssuesFound", healthy.finding
    counts = verdicts(held_out("imbalanced", 1), tmp_path / "counts", ["ClassImbalance"])["ClassImbalance"]
    assert counts.triggered and "class counts" in counts.finding


def test_a_loss_that_explodes_then_settles_is_caught_in_its_first_window(tmp_path):
    # x1000 at step 1, back to 1.3 x its start by step 40 (AdamW at lr 10 on digits): never a sustained doubling
    run = held_out("explode-settle", 0)
    row = verdicts(run, tmp_path / "full", ["LossNotDecreasing"])["LossNotDecreasing"]
    assert row.triggered and "exploded" in row.finding and row.step < 10, (row.step, row.finding)
    first = Run(run.train[: run.steps_per_epoch], run.steps_per_epoch, run.valid[:1])  # what live rules see first
    assert verdicts(first, tmp_path / "live", ["LossNotDecreasing"])["LossNotDecreasing"].triggered


def _confusion(right: list[int], per_class: int = 20) -> np.ndarray:
    """A confusion matrix with `right[c]` of class c's `per_class` images right, the rest on the next class."""
    m = np.zeros((len(right), len(right)))
    for c, k in enumerate(right):
        m[c, c], m[c, (c + 1) % len(right)] = k, per_class - k
    return m


def _with_confusions(tmp_path, confusions: list[np.ndarray]) -> dict:
    epochs = len(confusions)
    run = Run(np.full(20 * epochs, 0.5), 20, [0.6] * epochs, counts=[100] * len(confusions[0]), confusions=confusions)
    return verdicts(run, tmp_path, ["ClassImbalance"])["ClassImbalance"]


def test_class_imbalance_judges_a_class_against_the_learned_ones(tmp_path):
    learned = [19, 19, 18, 19, 1]  # class 4 mostly wrong, at both latest validations, in a model that levelled off
    row = _with_confusions(tmp_path / "one", [_confusion(learned), _confusion(learned)])
    assert row.triggered and "class 4: 19/20" in row.finding, row.finding
    # a different class wrong at each validation is no class the model fails on
    moving = _with_confusions(tmp_path / "moving", [_confusion([19, 19, 18, 19, 1]), _confusion([1, 19, 18, 19, 19])])
    assert moving.status == "NoIssuesFound", moving.finding
    # still learning: top-1 0.63 -> 0.79 over the two validations, class 4 not learned yet
    early, later = _confusion([32, 30, 32, 30, 2], 40), _confusion([39, 39, 38, 39, 3], 40)
    rising = _with_confusions(tmp_path / "rising", [early, later])
    assert rising.status == "NotEvaluated" and "still learning" in rising.finding, rising.finding


def test_class_imbalance_is_silent_on_an_under_trained_model(tmp_path):
    # the digits run at lr 1e-4: top-1 0.1 -> 0.45 in 4 epochs, the last classes not learned yet
    row = verdicts(held_out("slow-healthy", 3), tmp_path, ["ClassImbalance"])["ClassImbalance"]
    assert row.status == "NotEvaluated" and "not learned most classes" in row.finding, row.finding


@pytest.mark.parametrize("seed", [100, 101, 102])
def test_overtraining_needs_a_real_fall_of_the_train_loss(tmp_path, seed):
    # lr 0 with BatchNorm: the valid loss drifts up 0.11 while the train loss only wanders around ln(3)
    row = verdicts(held_out("stuck", 2, seed), tmp_path, ["Overtraining"])["Overtraining"]
    assert row.status == "NoIssuesFound", row.finding


def test_the_bundled_rules_file_is_the_package(tmp_path):
    """SageMaker runs one file: the joined package defines the same rules and reaches the same verdicts."""
    from smdebug.exceptions import RuleEvaluationConditionMet
    from smdebug.rules import invoke_rule

    from dogclf.debug.config import DOGCLF_PARAMETERS
    from dogclf.debug.engine import load_trial
    from dogclf.debug.rules import RULES
    from dogclf.debug.rules_bundle import bundle_file
    from dogclf.sagemaker.debugger import custom_rule_classes, rule_signatures, rules_source

    path = bundle_file(tmp_path)
    assert rules_source().read_text() == path.read_text()
    assert sorted(custom_rule_classes(path)) == sorted(RULES)
    spec = importlib.util.spec_from_file_location("dogclf_rules_bundled", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, cls in module.RULES.items():
        assert rule_signatures(path)[name] == [p for p in inspect.signature(cls).parameters if p != "base_trial"]
    trial = load_trial(write_trial(held_out("partial-stall", 0), tmp_path / "stall"))
    fired = {}
    for source, rules in (("package", RULES), ("bundle", module.RULES)):
        rule = rules["LossNotDecreasing"](trial, **DOGCLF_PARAMETERS["LossNotDecreasing"])
        try:
            invoke_rule(rule, start_step=0, end_step=trial.steps()[-1] + 1, raise_eval_cond=True)
        except RuleEvaluationConditionMet as met:
            fired[source] = (met.step, rule.finding)
    assert fired["package"] == fired["bundle"] and fired["package"][1]
